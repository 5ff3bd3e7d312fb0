"""runtime.cgroups against the real kernel.

The v1 driver is tested on this host's v1 hierarchies. The v2 driver is tested on the
cgroup2 mount (``/sys/fs/cgroup/unified`` on a hybrid host, ``/sys/fs/cgroup`` on a pure
one) for what works there without controllers: directories, processes, freeze, kill,
device programs. Each test makes cgroups named ``test-<hex>`` and destroys them, and
kills and reaps every process it started.
"""

from __future__ import annotations

import errno
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.cgroups import DEFAULT_DEVICE_RULES, Cgroup, DeviceRule, Resources, v1, v2
from runtime.errors import CleanupError, Conflict, InvalidSpec, KernelError, MissingFeature

pytestmark = pytest.mark.kernel
MiB = 1 << 20


def _new_name() -> str:
    return f"test-{secrets.token_hex(6)}"


def _cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if after.split()[:1] == ["cgroup2"]:
            return Path(before.split()[4])
    return None


def _probe(cgroup: Cgroup) -> None:
    """Skip unless making and removing a cgroup of this kind works here."""
    try:
        cgroup.create(Resources())
    except (KernelError, CleanupError) as e:
        pytest.skip(f"cannot create a cgroup with {type(cgroup).__name__}: {e}")
    cgroup.destroy()


@pytest.fixture
def cg1() -> Iterator[v1.V1Cgroup]:
    if not {"memory", "cpu", "freezer", "pids"} <= v1.mounts().keys():
        pytest.skip("this host has no cgroup v1 hierarchies")
    cgroup = v1.V1Cgroup(_new_name())
    _probe(cgroup)
    try:
        yield cgroup
    finally:
        cgroup.destroy()


@pytest.fixture
def cg2() -> Iterator[v2.V2Cgroup]:
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("this host has no cgroup2 mount")
    cgroup = v2.V2Cgroup(_new_name(), mount=mount)
    _probe(cgroup)
    try:
        yield cgroup
    finally:
        cgroup.destroy()


@contextmanager
def child_in(cgroup: Cgroup, code: str) -> Iterator[subprocess.Popen[str]]:
    """A python child that runs ``code`` only once it is inside ``cgroup``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()\n" + code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    try:
        cgroup.add_process(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        yield proc
    finally:
        if cgroup.exists() and cgroup.is_frozen():
            cgroup.thaw()  # a frozen v1 task would not act on SIGKILL
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _files(cgroup: v1.V1Cgroup, controller: str, name: str) -> str:
    return (cgroup._dir(controller) / name).read_text().strip()


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


BUSY = "while True: pass"
SLEEP = "import time; time.sleep(60)"

# ---------------------------------------------------------------- v1: limits written


def test_memory_64m_sets_the_limit_in_bytes_and_twice_that_for_memory_plus_swap(cg1):
    cg1.create(Resources(memory=64 * MiB))
    assert _files(cg1, "memory", "memory.limit_in_bytes") == "67108864"
    if (cg1._dir("memory") / "memory.memsw.limit_in_bytes").exists():
        assert _files(cg1, "memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)


def test_memory_swap_minus_one_leaves_memory_plus_swap_unlimited(cg1):
    cg1.create(Resources(memory=64 * MiB, memory_swap=-1))
    memsw = cg1._dir("memory") / "memory.memsw.limit_in_bytes"
    if not memsw.exists():
        pytest.skip("no swap accounting on this host")
    assert int(memsw.read_text()) >= 1 << 62


def test_cpu_shares_512_are_written_to_cpu_shares(cg1):
    cg1.create(Resources(cpu_shares=512))
    assert _files(cg1, "cpu", "cpu.shares") == "512"


def test_cpus_1_5_become_a_quota_of_150000_per_100000_period(cg1):
    cg1.create(Resources(cpu_period=100000, cpu_quota=150000))
    assert _files(cg1, "cpu", "cpu.cfs_period_us") == "100000"
    assert _files(cg1, "cpu", "cpu.cfs_quota_us") == "150000"


def test_a_new_cpuset_inherits_the_hosts_cpus_and_mems(cg1):
    cg1.create(Resources())
    root = v1.mounts()["cpuset"]
    assert _files(cg1, "cpuset", "cpuset.cpus") == (root / "cpuset.cpus").read_text().strip()
    assert _files(cg1, "cpuset", "cpuset.mems") == (root / "cpuset.mems").read_text().strip()


def test_cpuset_cpus_and_pids_limit_are_written(cg1):
    cg1.create(Resources(cpuset_cpus="0", cpuset_mems="0", pids_limit=10))
    assert _files(cg1, "cpuset", "cpuset.cpus") == "0"
    assert _files(cg1, "pids", "pids.max") == "10"


def test_update_raises_then_lowers_memory_in_the_order_the_kernel_accepts(cg1):
    cg1.create(Resources(memory=64 * MiB))
    cg1.update(Resources(memory=256 * MiB, memory_swap=512 * MiB))
    assert _files(cg1, "memory", "memory.limit_in_bytes") == str(256 * MiB)
    cg1.update(Resources(memory=32 * MiB))
    assert _files(cg1, "memory", "memory.limit_in_bytes") == str(32 * MiB)
    if (cg1._dir("memory") / "memory.memsw.limit_in_bytes").exists():
        assert _files(cg1, "memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)


def test_update_with_pids_limit_zero_removes_the_limit(cg1):
    cg1.create(Resources(pids_limit=10))
    cg1.update(Resources(pids_limit=0))
    assert _files(cg1, "pids", "pids.max") == "max"


# ---------------------------------------------------------------- v1: limits enforced


def test_pids_limit_of_10_stops_a_fork_bomb_at_9_children(cg1):
    cg1.create(Resources(pids_limit=10))
    bomb = """
import os, time
kids = []
try:
    while len(kids) < 50:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
except OSError as e:
    print(len(kids), e.errno)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""
    with child_in(cg1, bomb) as proc:
        out, _ = proc.communicate(timeout=60)
    assert out.split() == ["9", str(errno.EAGAIN)]


def test_a_process_over_its_16m_limit_is_oom_killed(cg1):
    cg1.create(Resources(memory=16 * MiB))
    hog = "chunks = [b'x' * (1 << 20) for _ in range(100)]\nprint('survived')"
    with child_in(cg1, hog) as proc:
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert "survived" not in out
    assert cg1.oom_kill_count() >= 1


def test_devices_outside_the_allow_list_cannot_be_opened(cg1):
    cg1.create(Resources(devices=DEFAULT_DEVICE_RULES))
    assert "c 1:3 rwm" in _files(cg1, "devices", "devices.list").splitlines()
    probe = """
import os
for path in ('/dev/null', '/dev/kmsg'):
    try:
        os.close(os.open(path, os.O_RDONLY))
        print(path, 'ok')
    except OSError as e:
        print(path, e.errno)
"""
    with child_in(cg1, probe) as proc:
        out, _ = proc.communicate(timeout=30)
    assert out.splitlines() == ["/dev/null ok", f"/dev/kmsg {errno.EPERM}"]


# ---------------------------------------------------------------- v1: processes


def test_add_process_puts_the_pid_in_every_hierarchy(cg1):
    cg1.create(Resources())
    with child_in(cg1, SLEEP) as proc:
        assert cg1.pids() == [proc.pid]
        for directory in cg1._dirs():
            assert (directory / "cgroup.procs").read_text().split() == [str(proc.pid)]


def test_freeze_stops_a_busy_process_and_thaw_resumes_it(cg1):
    cg1.create(Resources())
    with child_in(cg1, BUSY) as proc:
        time.sleep(0.2)
        cg1.freeze()
        assert cg1.is_frozen()
        assert _files(cg1, "freezer", "freezer.state") == "FROZEN"
        before = _cpu_ticks(proc.pid)
        time.sleep(0.3)
        assert _cpu_ticks(proc.pid) == before
        cg1.thaw()
        assert not cg1.is_frozen()
        assert _wait_until(lambda: _cpu_ticks(proc.pid) > before)


def test_stats_count_the_cpu_time_of_a_busy_process(cg1):
    cg1.create(Resources(memory=64 * MiB, pids_limit=20))
    with child_in(cg1, BUSY):
        assert _wait_until(lambda: cg1.stats().cpu_total_ns > 100_000_000)
        stats = cg1.stats()
    assert sum(stats.cpu_percpu_ns) > 0
    assert stats.cpu_user_ns + stats.cpu_system_ns > 0
    assert stats.memory_limit == 64 * MiB
    assert stats.pids_limit == 20
    assert stats.pids_current >= 1


def test_kill_all_sigkills_a_process_and_its_child(cg1):
    cg1.create(Resources())
    parent = "import subprocess, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)"
    with child_in(cg1, parent) as proc:
        assert _wait_until(lambda: len(cg1.pids()) == 2)
        cg1.kill_all(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_until(lambda: cg1.pids() == [])
    assert proc.returncode == -signal.SIGKILL
    assert not cg1.is_frozen()


# ---------------------------------------------------------------- v1: create and destroy


def test_destroy_removes_every_directory_and_a_second_destroy_is_fine(cg1):
    cg1.create(Resources(memory=64 * MiB))
    assert all(d.is_dir() for d in cg1._dirs())
    cg1.destroy()
    assert not any(d.exists() for d in cg1._dirs())
    cg1.destroy()


def test_destroy_of_a_frozen_empty_cgroup_thaws_and_removes_it(cg1):
    cg1.create(Resources())
    cg1.freeze()
    cg1.destroy()
    assert not cg1.exists()


def test_destroy_raises_cleanup_error_while_a_process_remains(cg1):
    cg1.create(Resources())
    with child_in(cg1, SLEEP):
        with pytest.raises(CleanupError, match="still in use"):
            cg1.destroy()
    cg1.destroy()
    assert not cg1.exists()


def test_creating_an_existing_cgroup_is_a_conflict(cg1):
    cg1.create(Resources())
    with pytest.raises(Conflict):
        cg1.create(Resources())


def test_list_names_includes_a_created_cgroup(cg1):
    cg1.create(Resources())
    assert cg1.name in v1.list_names()
    cg1.destroy()
    assert cg1.name not in v1.list_names()


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(memory=64 * MiB, memory_swap=32 * MiB), r"memory\+swap limit"),
        (Resources(cpuset_cpus="0-63"), "CPUs are not available"),
        (Resources(cpuset_mems="7"), "memory nodes are not available"),
        (Resources(cpu_period=100000, cpu_quota=100), "CPU quota must be at least 1000"),
        (Resources(cpu_period=500), "CPU period"),
    ],
)
def test_a_value_the_kernel_refuses_is_invalid_and_leaves_no_directory(cg1, resources, message):
    with pytest.raises(InvalidSpec, match=message):
        cg1.create(resources)
    assert not any(d.exists() for d in cg1._dirs())


def test_a_refused_cpuset_names_the_cpus_that_are_available(cg1):
    available = (v1.mounts()["cpuset"] / "cpuset.effective_cpus").read_text().strip()
    with pytest.raises(InvalidSpec, match=f"available: {available}"):
        cg1.create(Resources(cpuset_cpus="0-63"))


def test_lowering_memory_below_what_the_container_uses_is_invalid(cg1):
    cg1.create(Resources(memory=128 * MiB))
    hog = """
import time
chunks = [b'x' * (1 << 20) for _ in range(40)]
print('ready', flush=True)
time.sleep(60)
"""
    with child_in(cg1, hog) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(InvalidSpec, match="already uses more memory"):
            cg1.update(Resources(memory=8 * MiB))
        assert _files(cg1, "memory", "memory.limit_in_bytes") == str(128 * MiB)


# ---------------------------------------------------------------- v2, without controllers


def test_v2_create_makes_one_directory_and_destroy_removes_it(cg2):
    cg2.create(Resources())
    assert cg2.path.is_dir()
    assert cg2.name in v2.list_names(cg2.mount)
    cg2.destroy()
    assert not cg2.path.exists()
    cg2.destroy()


def test_v2_add_process_moves_the_pid_into_cgroup_procs(cg2):
    cg2.create(Resources())
    with child_in(cg2, SLEEP) as proc:
        assert cg2.pids() == [proc.pid]
        assert (
            f"0::/{cg2.path.relative_to(cg2.mount)}" in Path(f"/proc/{proc.pid}/cgroup").read_text()
        )


def test_v2_freeze_waits_for_frozen_and_thaw_resumes(cg2):
    cg2.create(Resources())
    with child_in(cg2, BUSY) as proc:
        time.sleep(0.2)
        cg2.freeze()
        assert "frozen 1" in (cg2.path / "cgroup.events").read_text()
        before = _cpu_ticks(proc.pid)
        time.sleep(0.3)
        assert _cpu_ticks(proc.pid) == before
        cg2.thaw()
        assert not cg2.is_frozen()
        assert _wait_until(lambda: _cpu_ticks(proc.pid) > before)


def test_v2_kill_all_with_sigkill_kills_a_process_and_its_child(cg2):
    cg2.create(Resources())
    parent = "import subprocess, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)"
    with child_in(cg2, parent) as proc:
        assert _wait_until(lambda: len(cg2.pids()) == 2)
        cg2.kill_all(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_until(lambda: cg2.pids() == [])
    assert proc.returncode == -signal.SIGKILL


def test_v2_kill_all_delivers_other_signals_to_each_process(cg2):
    cg2.create(Resources())
    with child_in(cg2, SLEEP) as proc:
        cg2.kill_all(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGTERM


def test_v2_stats_count_cpu_time_from_cpu_stat(cg2):
    cg2.create(Resources())
    with child_in(cg2, BUSY):
        assert _wait_until(lambda: cg2.stats().cpu_total_ns > 100_000_000)


def test_v2_device_program_denies_devices_outside_the_rules_and_can_be_replaced(cg2):
    cg2.create(Resources(devices=DEFAULT_DEVICE_RULES))
    probe = """
import os, sys
for line in sys.stdin:
    for path in ('/dev/null', '/dev/kmsg'):
        try:
            os.close(os.open(path, os.O_RDONLY))
            print(path, 'ok', flush=True)
        except OSError as e:
            print(path, e.errno, flush=True)
"""
    with child_in(cg2, probe) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        def opens() -> list[str]:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("again\n")
            proc.stdin.flush()
            return [proc.stdout.readline().strip(), proc.stdout.readline().strip()]

        assert opens() == ["/dev/null ok", f"/dev/kmsg {errno.EPERM}"]
        cg2.update(Resources(devices=(*DEFAULT_DEVICE_RULES, DeviceRule("c", 1, 11, "r"))))
        assert opens() == ["/dev/null ok", "/dev/kmsg ok"]
        cg2.update(Resources(devices=(DeviceRule("c", 1, 11, "w"),)))
        assert opens() == [f"/dev/null {errno.EPERM}", f"/dev/kmsg {errno.EPERM}"]


def test_v2_a_limit_without_its_controller_is_a_missing_feature_and_leaves_nothing(cg2):
    available = (cg2.mount / "cgroup.controllers").read_text().split()
    if "memory" in available:
        pytest.skip("this cgroup2 mount has the memory controller")
    with pytest.raises(MissingFeature, match="memory"):
        cg2.create(Resources(memory=64 * MiB))
    assert not cg2.exists()
