"""The values runtime.cgroups writes, checked without root or a cgroup mount.

The drivers turn ``Resources`` into (control file, value) pairs with pure ``plan``
functions; the v2 driver's update is also run against a temporary directory laid out
like a cgroup2 directory, since on this host v2 has no controllers to test it for real.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from runtime import paths
from runtime.cgroups import DEFAULT_DEVICE_RULES, DeviceRule, Resources, devices_bpf, probe, v1, v2
from runtime.errors import InvalidSpec, NotFound

MiB = 1 << 20
UNLIMITED_V1 = 9223372036854771712


def test_memory_64m_is_memory_max_with_as_much_again_of_swap():
    assert v2.plan(Resources(memory=64 * MiB), None) == [
        ("memory.max", "67108864"),
        ("memory.swap.max", "67108864"),
    ]


def test_memory_swap_is_the_total_so_swap_max_is_the_difference():
    writes = dict(v2.plan(Resources(memory=64 * MiB, memory_swap=100 * MiB), None))
    assert writes["memory.swap.max"] == str(36 * MiB)


def test_memory_swap_equal_to_memory_means_no_swap():
    writes = dict(v2.plan(Resources(memory=64 * MiB, memory_swap=64 * MiB), None))
    assert writes["memory.swap.max"] == "0"


def test_memory_swap_minus_one_is_unlimited_swap():
    writes = dict(v2.plan(Resources(memory=64 * MiB, memory_swap=-1), None))
    assert writes["memory.swap.max"] == "max"


def test_memory_swap_below_memory_is_refused_before_any_write():
    with pytest.raises(InvalidSpec, match="must not be below the memory limit"):
        v2.plan(Resources(memory=64 * MiB, memory_swap=32 * MiB), None)


def test_memory_swap_alone_is_taken_against_the_memory_limit_in_force():
    assert v2.plan(Resources(memory_swap=96 * MiB), 64 * MiB) == [
        ("memory.swap.max", str(32 * MiB))
    ]
    with pytest.raises(InvalidSpec, match="needs a memory limit"):
        v2.plan(Resources(memory_swap=96 * MiB), None)


def test_cpus_1_5_is_cpu_max_150000_100000():
    assert v2.plan(Resources(cpu_period=100000, cpu_quota=150000), None) == [
        ("cpu.max", "150000 100000")
    ]


def test_a_quota_of_minus_one_is_cpu_max_max():
    assert v2.plan(Resources(cpu_quota=-1), None) == [("cpu.max", "max")]


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (512, 20), (1024, 39), (262144, 10000), (1, 1)]
)
def test_cpu_shares_convert_to_cpu_weight_as_runc_does(shares, weight):
    assert v2.cpu_weight(shares) == weight
    assert v2.plan(Resources(cpu_shares=shares), None) == [("cpu.weight", str(weight))]


def test_cpuset_and_pids_limit_are_written_as_given_and_zero_pids_is_max():
    assert v2.plan(Resources(cpuset_cpus="0-1", cpuset_mems="0", pids_limit=10), None) == [
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("pids.max", "10"),
    ]
    assert v2.plan(Resources(pids_limit=0), None) == [("pids.max", "max")]


def test_an_empty_resources_writes_nothing():
    assert v2.plan(Resources(), None) == []
    assert v1.plan(Resources(), UNLIMITED_V1) == []


# ---------------------------------------------------------------- v2 update on a temp tree


@pytest.fixture
def fake_v2(tmp_path: Path) -> v2.V2Cgroup:
    cgroup = v2.V2Cgroup("test-fake", mount=tmp_path)
    cgroup.path.mkdir(parents=True)
    for name in ("memory.max", "cpu.max", "cpu.weight", "cpuset.cpus", "pids.max"):
        (cgroup.path / name).write_text("max\n" if name == "memory.max" else "")
    return cgroup


def test_v2_update_writes_each_limit_file(fake_v2):
    fake_v2.update(
        Resources(
            memory=64 * MiB,
            cpu_period=100000,
            cpu_quota=50000,
            cpu_shares=512,
            cpuset_cpus="1",
            pids_limit=100,
        )
    )
    read = {p.name: p.read_text() for p in fake_v2.path.iterdir()}
    assert read == {
        "memory.max": "67108864",
        "cpu.max": "50000 100000",
        "cpu.weight": "20",
        "cpuset.cpus": "1",
        "pids.max": "100",
    }


def test_v2_update_skips_swap_when_the_host_has_no_swap_accounting(fake_v2):
    fake_v2.update(Resources(memory=64 * MiB, memory_swap=128 * MiB))
    assert not (fake_v2.path / "memory.swap.max").exists()
    assert (fake_v2.path / "memory.max").read_text() == "67108864"


def test_v2_update_of_a_missing_cgroup_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        v2.V2Cgroup("test-absent", mount=tmp_path).update(Resources(memory=64 * MiB))


def test_v2_list_names_lists_directories_under_the_prefix(fake_v2):
    assert v2.list_names(fake_v2.mount) == ["test-fake"]
    assert fake_v2.path.parent.name == paths.prefix()


# ---------------------------------------------------------------- v1 plan


def test_v1_new_cgroup_writes_memory_before_memory_plus_swap():
    assert v1.plan(Resources(memory=64 * MiB), UNLIMITED_V1) == [
        ("memory.limit_in_bytes", str(64 * MiB)),
        ("memory.memsw.limit_in_bytes", str(128 * MiB)),
    ]


def test_v1_raising_memory_writes_memory_plus_swap_first():
    assert v1.plan(Resources(memory=256 * MiB, memory_swap=512 * MiB), 64 * MiB) == [
        ("memory.memsw.limit_in_bytes", str(512 * MiB)),
        ("memory.limit_in_bytes", str(256 * MiB)),
    ]


def test_v1_lowering_memory_writes_memory_first():
    assert v1.plan(Resources(memory=32 * MiB), 256 * MiB) == [
        ("memory.limit_in_bytes", str(32 * MiB)),
        ("memory.memsw.limit_in_bytes", str(64 * MiB)),
    ]


def test_v1_cpu_and_pids_values():
    writes = v1.plan(
        Resources(cpu_shares=512, cpu_period=100000, cpu_quota=150000, pids_limit=-1), 0
    )
    assert writes == [
        ("cpu.shares", "512"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "150000"),
        ("pids.max", "max"),
    ]


def test_v1_devices_deny_all_then_allow_each_rule():
    writes = v1.plan(Resources(devices=DEFAULT_DEVICE_RULES), 0)
    assert writes[0] == ("devices.deny", "a")
    assert [value for _, value in writes[1:]] == [
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",
        "c 136:* rwm",
        "c 10:200 rwm",
    ]


# ---------------------------------------------------------------- mounts and probe

SEPARATE = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
COMOUNTED = """\
25 24 0:22 / /sys/fs/cgroup rw shared:9 - tmpfs tmpfs ro,mode=755
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw shared:13 - cgroup cgroup rw,net_cls,net_prio
"""
PURE_V2 = "27 22 0:24 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_separately_mounted_controllers_each_have_their_own_mount():
    mounts = v1.parse_mountinfo(SEPARATE)
    assert mounts == {
        "cpu": Path("/sys/fs/cgroup/cpu"),
        "cpuacct": Path("/sys/fs/cgroup/cpuacct"),
        "memory": Path("/sys/fs/cgroup/memory"),
    }


def test_co_mounted_cpu_and_cpuacct_share_one_directory():
    mounts = v1.parse_mountinfo(COMOUNTED)
    assert mounts == {
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"),
    }
    cgroup = v1.V1Cgroup("test-x", mount_points=mounts)
    assert cgroup._dirs() == [Path("/sys/fs/cgroup/cpu,cpuacct") / paths.prefix() / "test-x"]


def test_probe_tells_hybrid_and_pure_v2_hosts_apart():
    assert probe(SEPARATE) == 1
    assert probe(COMOUNTED) == 1
    assert probe(PURE_V2) == 2


@pytest.mark.parametrize(
    ("type_", "major", "minor", "access"),
    [("x", 1, 3, "rwm"), ("c", 1, 3, ""), ("c", 1, 3, "rwx"), ("c", -2, 3, "r")],
)
def test_a_malformed_device_rule_is_invalid(type_, major, minor, access):
    with pytest.raises(InvalidSpec, match="Invalid device rule"):
        DeviceRule(type_, major, minor, access)


def test_a_cgroup_name_with_a_slash_is_invalid():
    with pytest.raises(InvalidSpec):
        v2.V2Cgroup("../escape")


# ---------------------------------------------------------------- device program


def _instructions(code: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("<BBhi", code[i : i + 8]) for i in range(0, len(code), 8)]


def test_device_program_ends_by_denying_what_no_rule_allows():
    code = _instructions(devices_bpf.program(()))
    assert code[-2:] == [(0xB4, 0, 0, 0), (0x95, 0, 0, 0)]  # r0 = 0; exit


def test_device_program_rule_checks_jump_past_its_allow():
    rule = DeviceRule("c", 1, 3, "rwm")
    block = _instructions(devices_bpf.program((rule,)))[6:-2]
    # type, major, minor checks, then r0 = 1; exit
    assert [(op, regs, imm) for op, regs, _, imm in block] == [
        (0x55, 2, 2),
        (0x55, 4, 1),
        (0x55, 5, 3),
        (0xB4, 0, 1),
        (0x95, 0, 0),
    ]
    assert [off for _, _, off, _ in block[:3]] == [4, 3, 2]


def test_a_partial_access_rule_checks_the_requested_bits_are_a_subset():
    block = _instructions(devices_bpf.program((DeviceRule("a", -1, -1, "m"),)))[6:-2]
    assert [op for op, *_ in block] == [0xBC, 0x54, 0x5D, 0xB4, 0x95]
    assert block[1][3] == 1  # mknod bit
