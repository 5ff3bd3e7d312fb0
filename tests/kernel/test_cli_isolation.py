"""Isolation, hardening and limits, through the real ``moorage`` CLI.

Scenarios S20 (read-only root, env injection), S22 (PID namespace, top, exec), S23
(limits, capabilities, privileged), S24 (shared IPC) and the namespace checks of S04 and
S12. Each test runs busybox containers and reads the result the way a user would: from
inside the container, from ``inspect``, or from the host's cgroup files and /proc.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest

from runtime import cgroups, paths
from runtime.cgroups import v1 as cgroup_v1
from runtime.cgroups import v2 as cgroup_v2

NAMESPACES = ("pid", "net", "mnt", "ipc", "uts")
DOCKER_DEFAULT_CAPS = "00000000a80425fb"
OOM_LOOP = 'a=$(head -c 100000000 /dev/zero | tr "\\0" x); echo survived'
SUPERVISOR = "while true; do sleep 1000 & wait $!; done"


def sh(moorage, *options: str, script: str) -> str:
    """stdout of ``run --rm [options] busybox sh -c script``, which must exit 0."""
    return moorage.ok("run", "--rm", *options, "busybox", "sh", "-c", script)


def container_id(moorage, ref: str) -> str:
    return moorage.ok("inspect", "-f", "{{.Id}}", ref).strip()


def cgroup_file(cid: str, v1_file: str, v2_file: str) -> Path:
    """A control file of the container's cgroup on this host.

    ``v1_file`` is ``controller/file`` for v1 and hybrid hosts, ``v2_file`` the file's
    name in the unified hierarchy on pure v2 hosts.
    """
    if cgroups.version() == 1:
        controller, name = v1_file.split("/")
        return cgroup_v1.mounts()[controller] / paths.prefix() / cid / name
    return cgroup_v2.V2Cgroup(cid).path / v2_file


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ---------------------------------------------------------------- namespaces


def test_ps_inside_shows_only_the_command_as_pid_1(moorage):
    lines = moorage.ok("run", "--rm", "busybox", "ps").splitlines()
    assert lines[0].split() == ["PID", "USER", "COMMAND"]
    assert [line.split() for line in lines[1:]] == [["1", "root", "ps"]]


def test_hostname_is_the_first_12_characters_of_the_id(moorage):
    moorage.ok("run", "--name", "hn", "busybox", "hostname")
    cid = container_id(moorage, "hn")
    assert moorage.ok("logs", "hn") == cid[:12] + "\n"


def test_hostname_and_domainname_options_set_the_uts_namespace(moorage):
    out = sh(
        moorage,
        "-h",
        "node1",
        "--domainname",
        "example.com",
        script=("hostname; cat /etc/hostname; cat /proc/sys/kernel/domainname"),
    )
    assert out.splitlines() == ["node1", "node1", "example.com"]
    assert os.uname().nodename != "node1"


def test_every_namespace_differs_from_the_hosts(moorage):
    script = "; ".join(f"readlink /proc/self/ns/{kind}" for kind in NAMESPACES)
    inside = sh(moorage, script=script).split()
    host = [os.readlink(f"/proc/self/ns/{kind}") for kind in NAMESPACES]
    assert len(inside) == len(NAMESPACES)
    for kind, theirs, ours in zip(NAMESPACES, inside, host, strict=True):
        assert theirs.startswith(f"{kind}:["), theirs
        assert theirs != ours, f"the {kind} namespace is the host's"


def test_network_none_has_only_loopback_and_it_is_up(moorage):
    links = moorage.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert len(links.splitlines()) == 1
    name, flags = re.match(r"\d+: (\S+): <([^>]*)>", links).groups()
    assert name == "lo"
    assert "UP" in flags.split(",")
    assert "inet 127.0.0.1/8" in moorage.ok("run", "--rm", "busybox", "ip", "-o", "addr")


def test_network_host_sees_the_hosts_interfaces_and_hostname(moorage):
    out = moorage.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    names = {re.match(r"\d+: ([^:@]+)", line).group(1) for line in out.splitlines()}
    assert names == set(os.listdir("/sys/class/net"))
    host_ns = os.readlink("/proc/self/ns/net")
    assert sh(moorage, "--network", "host", script="readlink /proc/self/ns/net").strip() == host_ns
    assert (
        moorage.ok("run", "--rm", "--network", "host", "busybox", "hostname").strip()
        == os.uname().nodename
    )


def test_etc_files_are_bind_mounted_and_never_land_in_the_upper_dir(moorage):
    cid = moorage.ok("run", "-d", "busybox", "sleep", "1000").strip()
    upper = paths.container(cid) / "upper"
    listing = moorage.ok("exec", cid, "ls", "/etc")
    for name in ("hostname", "hosts", "resolv.conf"):
        assert name in listing.split()
    assert moorage.ok("exec", cid, "cat", "/etc/hostname") == cid[:12] + "\n"
    assert "localhost" in moorage.ok("exec", cid, "cat", "/etc/hosts")
    assert "nameserver" in moorage.ok("exec", cid, "cat", "/etc/resolv.conf")
    assert not (upper / "etc").exists()
    # A write goes to the container's own file, not into its writable layer.
    moorage.ok("exec", cid, "sh", "-c", "echo '10.9.8.7 extra' >> /etc/hosts")
    assert "10.9.8.7 extra" in (paths.container(cid) / "hosts").read_text()
    assert not (upper / "etc" / "hosts").exists()


# ---------------------------------------------------------------- capabilities (S23)


def test_default_capabilities_are_dockers_and_allow_chown(moorage):
    out = sh(moorage, script="grep CapEff /proc/self/status; chown nobody /tmp && echo chown-ok")
    assert out.split() == ["CapEff:", DOCKER_DEFAULT_CAPS, "chown-ok"]


def test_cap_drop_all_makes_chown_fail(moorage):
    result = moorage("run", "--rm", "--cap-drop", "all", "busybox", "chown", "nobody", "/tmp")
    assert result.code != 0
    assert "Operation not permitted" in result.err
    assert sh(moorage, "--cap-drop", "all", script="grep CapEff /proc/self/status").split() == [
        "CapEff:",
        "0000000000000000",
    ]


def test_net_admin_is_needed_to_change_a_link(moorage):
    denied = moorage("run", "--rm", "busybox", "ip", "link", "set", "lo", "mtu", "1400")
    assert denied.code != 0
    assert "Operation not permitted" in denied.err
    assert (
        sh(
            moorage,
            "--cap-add",
            "NET_ADMIN",
            script="ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu",
        )
        == "1400\n"
    )


def test_privileged_may_change_a_link_and_keeps_new_privileges(moorage):
    out = sh(
        moorage,
        "--privileged",
        script=("ip link set lo mtu 1400 && echo priv-ok; grep NoNewPrivs /proc/self/status"),
    )
    assert out.split() == ["priv-ok", "NoNewPrivs:", "0"]


def test_default_containers_have_no_new_privileges(moorage):
    assert sh(moorage, script="grep NoNewPrivs /proc/self/status").split() == ["NoNewPrivs:", "1"]


# ---------------------------------------------------------------- masked paths (S23)


def test_proc_sys_is_read_only(moorage):
    result = moorage("run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
    assert result.code != 0
    assert "Read-only file system" in result.err


def test_sensitive_proc_and_sys_paths_are_masked(moorage):
    # The host's copies have content, so an empty read proves the mask.
    assert Path("/proc/keys").read_text() or Path("/proc/timer_list").read_text()
    out = sh(
        moorage,
        script=(
            "echo keys=$(wc -c < /proc/keys); echo timers=$(wc -c < /proc/timer_list); "
            "if [ -e /proc/kcore ]; then echo kcore=$(wc -c < /proc/kcore); "
            "else echo kcore=0; fi; echo firmware=$(ls -A /sys/firmware | wc -l)"
        ),
    )
    assert out.split() == ["keys=0", "timers=0", "kcore=0", "firmware=0"]
    assert os.listdir("/sys/firmware")


# ---------------------------------------------------------------- read-only root (S20)


def test_read_only_root_refuses_writes_with_exit_1(moorage):
    result = moorage("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert result.code == 1
    assert "Read-only file system" in result.err


def test_read_only_root_leaves_dev_shm_writable_but_not_tmp(moorage):
    # Docker's behaviour: /tmp is part of the root unless a --tmpfs is given.
    out = sh(
        moorage,
        "--read-only",
        script=("touch /dev/shm/x && echo shm-ok; touch /tmp/x 2>/dev/null || echo tmp-refused"),
    )
    assert out.split() == ["shm-ok", "tmp-refused"]


def test_a_read_only_container_that_needs_tmp_exits_and_logs_why(moorage):
    moorage.ok(
        "run",
        "-d",
        "--name",
        "wp",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "echo lock > /tmp/lockfile || exit 1",
    )
    assert moorage.ok("wait", "wp") == "1\n"
    assert moorage.ok("inspect", "-f", "{{.State.Running}}", "wp") == "false\n"
    logs = moorage("logs", "wp")
    assert "Read-only file system" in logs.out + logs.err


# ---------------------------------------------------------------- devices (S23)


def test_mknod_works_but_the_device_allow_list_refuses_to_open_it(moorage):
    result = moorage(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mknod /dev/sda b 8 0 && echo made; head -c 1 /dev/sda; echo open=$?",
    )
    assert result.out.split() == ["made", "open=1"]
    assert "Operation not permitted" in result.err


def test_device_option_adds_a_character_device(moorage):
    out = sh(
        moorage,
        "--device",
        "/dev/null:/dev/mynull",
        script="ls -l /dev/mynull; echo x > /dev/mynull && echo write-ok",
    )
    listing, status = out.splitlines()
    assert re.match(r"^crw-rw-rw-\s.*\s1,\s+3\s.*/dev/mynull$", listing), listing
    assert status == "write-ok"


# ---------------------------------------------------------------- process options (S20)


def test_user_option_takes_a_name_or_uid_and_gid(moorage):
    assert moorage.ok("run", "--rm", "-u", "nobody", "busybox", "id", "-u") == "65534\n"
    assert sh(moorage, "-u", "1000:1000", script="echo $(id -u) $(id -g)") == "1000 1000\n"


def test_workdir_is_created_when_missing(moorage):
    assert moorage.ok("run", "--rm", "-w", "/some/dir", "busybox", "pwd") == "/some/dir\n"


def test_env_holds_image_defaults_and_the_users_variables(moorage, tmp_path):
    env_file = tmp_path / "env.list"
    env_file.write_text("# a comment\nFROM_FILE=yes\nSPACED=two words\n")
    moorage.ok(
        "run",
        "--name",
        "envy",
        "--env-file",
        str(env_file),
        "--env",
        "MY_ENVIRONMENT_VAR=this is a test",
        "-e",
        "SPACED=overridden",
        "busybox",
        "env",
    )
    cid = container_id(moorage, "envy")
    env = dict(line.split("=", 1) for line in moorage.ok("logs", "envy").splitlines())
    assert env["MY_ENVIRONMENT_VAR"] == "this is a test"
    assert env["FROM_FILE"] == "yes"
    assert env["SPACED"] == "overridden"
    assert env["HOSTNAME"] == cid[:12]
    assert env["HOME"] == "/root"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_entrypoint_option_replaces_the_image_command(moorage):
    assert (
        moorage.ok("run", "--rm", "--entrypoint", "echo", "busybox", "hi", "there") == "hi there\n"
    )
    # A new entrypoint resets the image's CMD ("sh"), as in Docker.
    assert moorage.ok("run", "--rm", "--entrypoint", "echo", "busybox") == "\n"


def test_init_option_runs_docker_init_as_pid_1(moorage):
    result = moorage("run", "--rm", "--init", "busybox", "ps")
    if result.code == 125 and "tini" in result.err:
        pytest.skip(f"--init is not available here: {result.err.strip()}")
    assert result.code == 0, result.err
    rows = {int(line.split()[0]): line for line in result.out.splitlines()[1:]}
    assert "/sbin/docker-init -- ps" in rows[1]
    ps_pids = [pid for pid, line in rows.items() if line.split()[2:] == ["ps"]]
    assert ps_pids and ps_pids[0] > 1


# ---------------------------------------------------------------- limits (S23)


def test_memory_and_cpu_shares_show_in_inspect_and_in_the_cgroup(moorage):
    cid = moorage.ok(
        "run",
        "-d",
        "--name",
        "limited",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "100000",
    ).strip()
    assert (
        moorage.ok(
            "inspect", "-f", "{{ .HostConfig.Memory }} {{ .HostConfig.CpuShares }}", "limited"
        )
        == "67108864 512\n"
    )
    memory = cgroup_file(cid, "memory/memory.limit_in_bytes", "memory.max")
    assert memory.read_text().strip() == "67108864"
    shares = cgroup_file(cid, "cpu/cpu.shares", "cpu.weight")
    expected = "512" if cgroups.version() == 1 else str(cgroup_v2.cpu_weight(512))
    assert shares.read_text().strip() == expected


def test_memory_limit_oom_kills_with_137(moorage):
    result = moorage("run", "--name", "oom", "-m", "32m", "busybox", "sh", "-c", OOM_LOOP)
    assert result.code == 137
    assert "survived" not in result.out
    assert (
        moorage.ok("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom")
        == "true 137\n"
    )


def test_without_a_memory_limit_the_same_allocation_survives(moorage):
    assert sh(moorage, script=OOM_LOOP) == "survived\n"


def test_pids_limit_stops_forks(moorage):
    script = "i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo all-forked"
    limited = moorage("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", script)
    assert limited.code != 0
    assert "all-forked" not in limited.out
    assert "can't fork" in limited.err
    assert sh(moorage, script=script) == "all-forked\n"


def test_cpus_sets_the_cfs_quota(moorage):
    cid = moorage.ok("run", "-d", "--cpus", "0.5", "busybox", "sleep", "1000").strip()
    assert moorage.ok("inspect", "-f", "{{.HostConfig.NanoCpus}}", cid) == "500000000\n"
    if cgroups.version() == 1:
        quota = cgroup_file(cid, "cpu/cpu.cfs_quota_us", "")
        period = cgroup_file(cid, "cpu/cpu.cfs_period_us", "")
        assert (quota.read_text().strip(), period.read_text().strip()) == ("50000", "100000")
    else:
        assert cgroup_file(cid, "", "cpu.max").read_text().split() == ["50000", "100000"]


def test_cpuset_cpus_pins_the_container(moorage):
    cid = moorage.ok("run", "-d", "--cpuset-cpus", "0", "busybox", "sleep", "1000").strip()
    assert moorage.ok("inspect", "-f", "{{.HostConfig.CpusetCpus}}", cid) == "0\n"
    assert cgroup_file(cid, "cpuset/cpuset.cpus", "cpuset.cpus").read_text().strip() == "0"
    status = moorage.ok("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status")
    assert status.split() == ["Cpus_allowed_list:", "0"]


# ---------------------------------------------------------------- top and exec (S22)


@pytest.fixture
def supervisor(moorage) -> str:
    """A running container whose shell restarts ``sleep 1000`` whenever it dies."""
    cid = moorage.ok("run", "-d", "--name", "lamp-test", "busybox", "sh", "-c", SUPERVISOR).strip()
    assert wait_until(lambda: "sleep 1000" in moorage.ok("exec", cid, "ps"))
    return cid


def test_top_lists_the_processes_with_host_pids(moorage, supervisor):
    lines = moorage.ok("top", "lamp-test").splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    rows = {int(line.split()[1]): line for line in lines[1:]}
    init_pid = int(moorage.ok("inspect", "-f", "{{.State.Pid}}", "lamp-test"))
    assert SUPERVISOR in rows[init_pid]
    sleeps = [pid for pid, line in rows.items() if line.endswith("sleep 1000")]
    assert len(sleeps) == 1
    for pid in rows:  # host pids: the host's /proc knows them by these numbers
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert cmdline.strip() in rows[pid]


def test_exec_ps_shows_small_pids_with_the_command_as_pid_1(moorage, supervisor):
    rows = [line.split(None, 2) for line in moorage.ok("exec", "lamp-test", "ps").splitlines()]
    by_command = {row[2]: int(row[0]) for row in rows[1:]}
    assert by_command[f"sh -c {SUPERVISOR}"] == 1
    assert 1 < by_command["sleep 1000"] < 10
    # Exactly the pid the kernel gave the process in the container's pid namespace
    # (the last NSpid field of the host's view of it), which is not its host pid.
    top = moorage.ok("top", "lamp-test").splitlines()[1:]
    host_pid = next(int(row.split()[1]) for row in top if row.endswith("sleep 1000"))
    status = Path(f"/proc/{host_pid}/status").read_text()
    nspids = next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:"))
    assert int(nspids[-1]) == by_command["sleep 1000"] != host_pid


def test_the_supervisor_loop_restarts_a_killed_sleep(moorage, supervisor):
    first = moorage.ok("exec", "lamp-test", "pidof", "sleep").strip()
    moorage.ok("exec", "lamp-test", "kill", first)

    def restarted() -> bool:
        now = moorage("exec", "lamp-test", "pidof", "sleep").out.strip()
        return bool(now) and now != first

    assert wait_until(restarted)
    assert moorage.ok("ps", "--filter", "name=lamp-test", "--format", "{{.Status}}").startswith(
        "Up "
    )


def test_exec_takes_user_workdir_and_env(moorage, supervisor):
    assert moorage.ok("exec", "-u", "nobody", "lamp-test", "id", "-u") == "65534\n"
    assert moorage.ok("exec", "-w", "/var/spool/x", "lamp-test", "pwd") == "/var/spool/x\n"
    assert (
        moorage.ok(
            "exec", "-e", "GREETING=hello there", "lamp-test", "sh", "-c", 'echo "$GREETING"'
        )
        == "hello there\n"
    )


def test_exec_detach_returns_at_once_and_the_command_runs_on(moorage, supervisor):
    started = time.monotonic()
    assert moorage.ok("exec", "-d", "lamp-test", "sh", "-c", "sleep 4; touch /tmp/detached") == ""
    assert time.monotonic() - started < 4
    assert moorage("exec", "lamp-test", "test", "-e", "/tmp/detached").code == 1
    assert wait_until(
        lambda: moorage("exec", "lamp-test", "test", "-e", "/tmp/detached").code == 0, timeout=10
    )


def test_exec_exit_codes_propagate(moorage, supervisor):
    assert moorage("exec", "lamp-test", "sh", "-c", "exit 7").code == 7
    missing = moorage("exec", "lamp-test", "no-such-command")
    assert missing.code == 127
    assert "executable file not found" in missing.err
    assert moorage.ok("ps", "--filter", "name=lamp-test", "--format", "{{.Status}}").startswith(
        "Up "
    )


# ---------------------------------------------------------------- IPC (S24)


def test_shareable_ipc_is_seen_by_a_joined_consumer_only(moorage):
    moorage.ok(
        "run",
        "-d",
        "--name",
        "ch6_ipc_producer",
        "--ipc",
        "shareable",
        "busybox",
        "sh",
        "-c",
        "echo msg > /dev/shm/queue; sleep 100000",
    )
    assert wait_until(
        lambda: moorage("exec", "ch6_ipc_producer", "test", "-e", "/dev/shm/queue").code == 0
    )
    joined = "container:ch6_ipc_producer"
    assert moorage.ok("run", "--rm", "--ipc", joined, "busybox", "cat", "/dev/shm/queue") == "msg\n"
    producer_ns = moorage.ok("exec", "ch6_ipc_producer", "readlink", "/proc/self/ns/ipc")
    assert sh(moorage, "--ipc", joined, script="readlink /proc/self/ns/ipc") == producer_ns
    alone = moorage("run", "--rm", "busybox", "cat", "/dev/shm/queue")
    assert alone.code != 0
    assert "No such file or directory" in alone.err


def test_ipc_host_sees_the_hosts_dev_shm(moorage):
    marker = Path("/dev/shm") / f"moorage-test-{uuid.uuid4().hex[:8]}"
    marker.touch()
    try:
        listing = moorage.ok("run", "--rm", "--ipc", "host", "busybox", "ls", "/dev/shm")
        assert marker.name in listing.split()
        assert marker.name not in moorage.ok("run", "--rm", "busybox", "ls", "/dev/shm")
    finally:
        marker.unlink()
