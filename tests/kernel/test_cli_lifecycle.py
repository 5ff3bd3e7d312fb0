"""The container lifecycle through the real ``moorage`` CLI, as Docker users expect it.

Scenarios S01 (first containers, exit codes), S02 (background container: ps, logs,
prefix lookup, kill), S03 (stop vs kill), S05-style persistence of the writable layer,
S21 (restart policies and back-off), plus restart, pause, wait, rename, create + start,
prune, inspect, ``--rm``; the monitor's robustness (the container outlives the CLI, a
killed monitor leaves nothing, ``system gc``); concurrent runs and removals; and log
rotation. Bad input lives in test_cli_bad_input.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime import attach, cgroups, paths
from tests.kernel.conftest import CLI

HEX64 = re.compile(r"^[0-9a-f]{64}$")
CLOCK = "while true; do date; sleep 1; done"
COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"
TRAPPER = 'trap "exit 0" TERM; while true; do sleep 1; done'


def wait_until(condition, timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def fmt(moorage, ref: str, template: str) -> str:
    return moorage.ok("inspect", "-f", template, ref).strip()


def state_file(cid: str) -> dict:
    return json.loads((paths.container(cid) / "state.json").read_text())


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def log_lines(moorage, ref: str, *options: str) -> list[str]:
    return moorage.ok("logs", *options, ref).splitlines()


def all_ids(moorage) -> list[str]:
    return moorage.ok("ps", "-a", "-q", "--no-trunc").split()


# ---------------------------------------------------------------- S01, S02


def test_first_containers_print_their_output_and_exit_with_their_command_status(moorage):
    assert moorage("run", "busybox", "echo", "hello", "world").out == "hello world\n"
    assert moorage("run", "busybox", "false").code == 1
    assert moorage("run", "busybox", "sh", "-c", "exit 3").code == 3
    listing = moorage.ok("ps", "-a", "--format", "{{.Image}}|{{.Status}}|{{.Names}}")
    rows = [line.split("|") for line in listing.splitlines()]
    assert [status.split(" ")[:2] for _, status, _ in rows] == [
        ["Exited", "(3)"],
        ["Exited", "(1)"],
        ["Exited", "(0)"],
    ]  # newest first
    assert {image for image, _, _ in rows} == {"busybox"}
    assert all(re.fullmatch(r"[a-z]+_[a-z]+\d?", name) for _, _, name in rows)
    assert moorage.ok("ps", "-q") == ""


def test_background_container_is_listed_logged_found_by_prefix_and_killed(moorage):
    cid = moorage.ok("run", "-d", "busybox", "sh", "-c", CLOCK).strip()
    assert HEX64.match(cid)
    short, prefix = cid[:12], cid[:4]
    row = moorage.ok("ps").splitlines()[1]
    assert row.startswith(short)
    assert "busybox" in row and '"sh -c while true' in row and " Up " in row
    assert moorage.ok("ps", "-q") == short + "\n"
    assert moorage.ok("ps", "-l", "-q") == short + "\n"
    assert moorage.ok("ps", "-q", "--no-trunc") == cid + "\n"
    assert wait_until(lambda: len(log_lines(moorage, prefix)) >= 4, timeout=8)
    tail = log_lines(moorage, prefix, "--tail", "3")
    assert len(tail) == 3 and all("UTC" in line for line in tail)
    assert moorage.ok("kill", prefix) == prefix + "\n"
    assert moorage.ok("ps", "-q") == ""
    assert "Exited (137)" in moorage.ok("ps", "-a")


def test_ps_latest_last_no_trunc_and_format_templates(moorage):
    for name in ("oldest", "middle", "newest"):
        moorage.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    moorage.ok("stop", "-t", "0", "newest")
    assert moorage.ok("ps", "--format", "{{.Names}}").split() == ["middle", "oldest"]
    assert moorage.ok("ps", "-l", "--format", "{{.Names}}").split() == ["newest"]
    assert moorage.ok("ps", "-n", "2", "--format", "{{.Names}}").split() == ["newest", "middle"]
    middle = fmt(moorage, "middle", "{{.Id}}")
    assert f"{middle[:12]} middle" in moorage.ok("ps", "--format", "{{.ID}} {{.Names}}")
    assert f"{middle} middle" in moorage.ok("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}")
    table = moorage.ok("ps", "-a", "--format", "table {{.Names}}\t{{.Status}}").splitlines()
    assert table[0].split() == ["NAMES", "STATUS"]
    assert re.match(r"newest\s+Exited \(137\)", table[1])
    assert re.match(r"middle\s+Up ", table[2])


def test_ps_filters_select_by_status_name_label_ancestor_id_and_exit_code(moorage):
    web = moorage.ok(
        "run", "-d", "--name", "web-one", "-l", "tier=web", "busybox", "sleep", "1000"
    ).strip()
    moorage.ok("run", "--name", "job-ok", "busybox", "true")
    moorage("run", "--name", "job-bad", "-l", "tier=batch", "busybox", "sh", "-c", "exit 3")

    def names(*filters: str) -> set[str]:
        args = [part for f in filters for part in ("--filter", f)]
        return set(moorage.ok("ps", "-a", *args, "--format", "{{.Names}}").split())

    assert names("status=running") == {"web-one"}
    assert names("status=exited") == {"job-ok", "job-bad"}
    assert names("name=job") == {"job-ok", "job-bad"}
    assert names("label=tier=web") == {"web-one"}
    assert names("label=tier") == {"web-one", "job-bad"}
    assert names("ancestor=busybox") == {"web-one", "job-ok", "job-bad"}
    assert names(f"id={web[:10]}") == {"web-one"}
    assert names("exited=3") == {"job-bad"}
    assert names("exited=0") == {"job-ok"}
    assert names("status=exited", "name=ok") == {"job-ok"}
    # Without -a, a status filter still finds stopped containers, as in Docker.
    assert set(moorage.ok("ps", "--filter", "status=exited", "--format", "{{.Names}}").split()) == {
        "job-ok",
        "job-bad",
    }


def test_logs_tail_timestamps_since_and_until(moorage):
    script = "for i in 1 2 3 4; do echo l$i; sleep 0.3; done"
    cid = moorage.ok("run", "-d", "busybox", "sh", "-c", script).strip()
    assert moorage.ok("wait", cid) == "0\n"
    assert log_lines(moorage, cid) == ["l1", "l2", "l3", "l4"]
    stamped = log_lines(moorage, cid, "-t")
    stamps = [line.split(" ", 1)[0] for line in stamped]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", s) for s in stamps)
    assert [line.split(" ", 1)[1] for line in stamped] == ["l1", "l2", "l3", "l4"]
    assert log_lines(moorage, cid, "--tail", "2") == ["l3", "l4"]
    assert log_lines(moorage, cid, "--tail", "0") == []
    assert log_lines(moorage, cid, "--since", stamps[2]) == ["l3", "l4"]
    assert log_lines(moorage, cid, "--until", stamps[1]) == ["l1", "l2"]
    assert log_lines(moorage, cid, "--since", "1h") == ["l1", "l2", "l3", "l4"]
    assert log_lines(moorage, cid, "--until", "1h") == []


def test_logs_follow_prints_new_lines_until_the_container_stops(moorage):
    # Three seconds for `logs -f` to start before the new lines: a loaded CI machine is slow.
    script = "echo old1; echo old2; sleep 3; for i in 1 2 3; do echo new$i; sleep 0.3; done"
    cid = moorage.ok("run", "-d", "busybox", "sh", "-c", script).strip()
    assert wait_until(lambda: "old2" in log_lines(moorage, cid), timeout=5)
    follower = moorage.popen(
        "logs", "-f", "--tail", "1", cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert out == "old2\nnew1\nnew2\nnew3\n"


# ---------------------------------------------------------------- S03


def test_stop_waits_ten_seconds_then_kills_a_pid1_that_ignores_term(moorage):
    moorage.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    began = time.monotonic()
    assert moorage.ok("stop", "sleeper") == "sleeper\n"
    took = time.monotonic() - began
    assert 9 <= took < 20, f"stop took {took:.1f} s"
    assert fmt(moorage, "sleeper", "{{.State.ExitCode}}") == "137"


def test_stop_with_a_short_timeout_kills_after_that_timeout(moorage):
    moorage.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    began = time.monotonic()
    moorage.ok("stop", "-t", "1", "sleeper")
    took = time.monotonic() - began
    assert 0.9 <= took < 5, f"stop -t 1 took {took:.1f} s"
    assert fmt(moorage, "sleeper", "{{.State.ExitCode}}") == "137"


def test_stop_returns_quickly_with_code_0_when_the_process_handles_term(moorage):
    moorage.ok("run", "-d", "--name", "trapper", "busybox", "sh", "-c", TRAPPER)
    time.sleep(0.3)  # let sh install its trap
    began = time.monotonic()
    assert moorage.ok("stop", "trapper") == "trapper\n"
    assert time.monotonic() - began < 5
    assert fmt(moorage, "trapper", "{{.State.ExitCode}}") == "0"


def test_kill_ends_even_a_term_handling_container_at_once_with_137(moorage):
    moorage.ok("run", "-d", "--name", "killme", "busybox", "sh", "-c", TRAPPER)
    time.sleep(0.3)
    began = time.monotonic()
    assert moorage.ok("kill", "killme") == "killme\n"
    assert time.monotonic() - began < 3
    assert fmt(moorage, "killme", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


# ---------------------------------------------------------------- the rest of the lifecycle


def test_files_survive_stop_and_start_but_not_rm_and_a_new_run(moorage):
    moorage.ok("run", "-d", "--name", "keeper", "busybox", "sleep", "1000")
    moorage.ok("exec", "keeper", "sh", "-c", "echo kept > /marker")
    moorage.ok("stop", "-t", "0", "keeper")
    assert moorage.ok("start", "keeper") == "keeper\n"
    assert moorage.ok("exec", "keeper", "cat", "/marker") == "kept\n"
    moorage.ok("rm", "-f", "keeper")
    fresh = moorage("run", "--rm", "busybox", "cat", "/marker")
    assert fresh.code == 1 and "No such file or directory" in fresh.err


def test_restart_runs_a_new_process_in_the_same_container(moorage):
    cid = moorage.ok("run", "-d", "--name", "again", "busybox", "sleep", "1000").strip()
    before = fmt(moorage, "again", "{{.State.Pid}} {{.State.StartedAt}}").split()
    assert moorage.ok("restart", "-t", "1", "again") == "again\n"
    after = fmt(moorage, "again", "{{.State.Pid}} {{.State.StartedAt}} {{.State.Running}}")
    pid, started, running = after.split()
    assert running == "true" and pid != before[0] and started > before[1]
    assert alive(int(pid)) and not alive(int(before[0]))
    assert fmt(moorage, "again", "{{.Id}}") == cid


def test_paused_container_really_stops_running_until_unpaused(moorage):
    moorage.ok("run", "-d", "--name", "counter", "busybox", "sh", "-c", COUNTER)
    assert wait_until(lambda: len(log_lines(moorage, "counter")) >= 3, timeout=5)
    assert moorage.ok("pause", "counter") == "counter\n"
    status = moorage.ok("ps", "--format", "{{.Status}}", "--filter", "status=paused").strip()
    assert re.fullmatch(r"Up .+ \(Paused\)", status)
    assert (
        fmt(moorage, "counter", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}")
        == "paused true true"
    )
    frozen = len(log_lines(moorage, "counter"))
    time.sleep(1.0)  # ten ticks of the counter, had it been running
    assert len(log_lines(moorage, "counter")) == frozen
    assert moorage.ok("unpause", "counter") == "counter\n"
    assert wait_until(lambda: len(log_lines(moorage, "counter")) >= frozen + 3, timeout=5)
    assert fmt(moorage, "counter", "{{.State.Status}} {{.State.Paused}}") == "running false"


def test_wait_blocks_until_the_container_exits_and_prints_its_code(moorage):
    moorage.ok("run", "-d", "--name", "waited", "busybox", "sh", "-c", "sleep 1; exit 7")
    began = time.monotonic()
    result = moorage("wait", "waited")
    assert result.out == "7\n" and result.code == 0
    assert time.monotonic() - began >= 0.5
    assert moorage.ok("wait", "waited") == "7\n"  # and again, once it has exited


def test_rename_moves_the_name_and_names_stay_unique(moorage):
    cid = moorage.ok("run", "-d", "--name", "first", "busybox", "sleep", "1000").strip()
    moorage.ok("run", "-d", "--name", "other", "busybox", "sleep", "1000")
    assert moorage("rename", "first", "second").code == 0
    assert fmt(moorage, "second", "{{.Name}} {{.Id}}") == f"/second {cid}"
    assert moorage("inspect", "first").code == 1
    clash = moorage("rename", "second", "other")
    assert clash.code != 0 and "already in use" in clash.err
    assert fmt(moorage, cid, "{{.Name}}") == "/second"
    moorage.ok("run", "-d", "--name", "first", "busybox", "sleep", "1000")  # freed


def test_create_then_start_attached_runs_the_command_and_returns_its_code(moorage):
    cid = moorage.ok("create", "--name", "made", "busybox", "sh", "-c", "echo made; exit 4")
    assert HEX64.match(cid.strip())
    assert moorage.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}") == "made Created\n"
    assert fmt(moorage, "made", "{{.State.Status}} {{.State.Pid}}") == "created 0"
    started = moorage("start", "-a", "made")
    assert started.out == "made\n" and started.code == 4
    assert "Exited (4)" in moorage.ok("ps", "-a")


def test_container_prune_removes_only_stopped_containers(moorage):
    running = moorage.ok("run", "-d", "busybox", "sleep", "1000").strip()
    exited = [moorage.ok("run", "-d", "busybox", "true").strip() for _ in range(2)]
    created = moorage.ok("create", "busybox", "true").strip()
    for cid in exited:
        moorage.ok("wait", cid)
    out = moorage.ok("container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n")
    assert set(out.split()) >= {*exited, created}
    assert running not in out
    assert all_ids(moorage) == [running]


def test_inspect_is_shaped_like_docker_and_templates_read_it(moorage):
    cid = moorage.ok(
        "run", "-d", "--name", "shape", "--restart", "on-failure:3", "busybox", "sleep", "1000"
    ).strip()
    documents = json.loads(moorage.ok("inspect", "shape"))
    assert isinstance(documents, list) and len(documents) == 1
    doc = documents[0]
    assert doc["Id"] == cid and doc["Name"] == "/shape" and doc["RestartCount"] == 0
    assert doc["State"]["Status"] == "running" and doc["State"]["Running"] is True
    assert doc["State"]["ExitCode"] == 0 and alive(doc["State"]["Pid"])
    assert doc["Config"]["Cmd"] == ["sleep", "1000"] and doc["Config"]["Image"] == "busybox"
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (
        fmt(moorage, cid[:8], "{{.State.Status}} {{.State.Running}} {{.Name}}")
        == "running true /shape"
    )
    assert fmt(moorage, "shape", "{{json .Config.Cmd}}") == '["sleep","1000"]'
    assert (
        fmt(moorage, "shape", "{{.HostConfig.RestartPolicy.Name}} {{.RestartCount}}")
        == "on-failure 0"
    )
    moorage.ok("kill", "shape")
    assert (
        fmt(
            moorage,
            "shape",
            "{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}}",
        )
        == "exited false 0 137"
    )


def test_run_rm_removes_the_container_before_it_returns(moorage):
    assert moorage.ok("run", "--rm", "--name", "brief", "busybox", "echo", "bye") == "bye\n"
    # Looked at the instant the CLI is back, without a CLI call's delay in between.
    assert [p.name for p in paths.containers().iterdir()] == [".names"]
    assert all_ids(moorage) == []
    moorage.ok("run", "--rm", "--name", "brief", "busybox", "true")  # the name is free


def test_detached_rm_container_is_removed_after_it_exits(moorage):
    cid = moorage.ok("run", "-d", "--rm", "busybox", "sleep", "0.5").strip()
    assert HEX64.match(cid)
    assert wait_until(lambda: all_ids(moorage) == [], timeout=10)
    assert not paths.container(cid).exists()


# ---------------------------------------------------------------- S21 restart policies


def test_restart_always_backs_off_with_growing_gaps_and_stop_keeps_it_stopped(moorage):
    moorage.ok("run", "-d", "--name", "backoff", "--restart", "always", "busybox", "date")
    assert wait_until(lambda: int(fmt(moorage, "backoff", "{{.RestartCount}}")) >= 4, timeout=15)
    assert moorage.ok("stop", "backoff") == "backoff\n"
    stamps = [line.split(" ", 1)[0] for line in log_lines(moorage, "backoff", "-t")]
    assert len(stamps) >= 5
    moments = [
        time.mktime(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + float(s[19:-1]) for s in stamps
    ]
    gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
    assert gaps[3] > 2 * gaps[0] and gaps[2] > gaps[0], f"gaps did not grow: {gaps}"
    stopped = fmt(moorage, "backoff", "{{.State.Running}} {{.RestartCount}}")
    assert stopped.split()[0] == "false"
    time.sleep(1.5)  # longer than the next back-off step would have been
    assert fmt(moorage, "backoff", "{{.State.Running}} {{.RestartCount}}") == stopped
    assert fmt(moorage, "backoff", "{{.State.Status}}") == "exited"


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3])
def test_stop_and_rm_succeed_whatever_moment_of_a_restart_loop_they_hit(moorage, delay):
    # Runs of `true` last milliseconds and the first back-off steps are 0.1 s and 0.2 s,
    # so these land on an exit, a back-off or a launch in progress.
    moorage.ok("run", "-d", "--name", "looper", "--restart", "always", "busybox", "true")
    time.sleep(delay)
    stopped = moorage("stop", "-t", "1", "looper")
    assert stopped.code == 0 and stopped.out == "looper\n", stopped.err
    assert fmt(moorage, "looper", "{{.State.Status}}") == "exited"
    cid = moorage.ok("run", "-d", "--restart", "always", "busybox", "true").strip()
    time.sleep(delay)
    removed = moorage("rm", "-f", cid)
    assert removed.code == 0 and removed.out == cid + "\n", removed.err
    assert all_ids(moorage) == [fmt(moorage, "looper", "{{.Id}}")]


def test_on_failure_with_a_limit_gives_up_after_that_many_restarts(moorage):
    moorage.ok("run", "-d", "--name", "onfail", "--restart", "on-failure:2", "busybox", "false")
    assert wait_until(
        lambda: (
            fmt(moorage, "onfail", "{{.State.Status}}") == "exited"
            and fmt(moorage, "onfail", "{{.RestartCount}}") == "2"
        ),
        timeout=10,
    )
    time.sleep(1)
    assert (
        fmt(moorage, "onfail", "{{.RestartCount}} {{.State.ExitCode}} {{.State.Status}}")
        == "2 1 exited"
    )


def test_on_failure_does_not_restart_a_clean_exit(moorage):
    moorage.ok("run", "-d", "--name", "clean", "--restart", "on-failure", "busybox", "true")
    assert moorage.ok("wait", "clean") == "0\n"
    time.sleep(1)
    assert fmt(moorage, "clean", "{{.RestartCount}} {{.State.Status}}") == "0 exited"


def test_unless_stopped_restarts_a_failing_container_until_it_is_stopped(moorage):
    moorage.ok(
        "run",
        "-d",
        "--name",
        "stubborn",
        "--restart",
        "unless-stopped",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    )
    assert wait_until(lambda: int(fmt(moorage, "stubborn", "{{.RestartCount}}")) >= 2, timeout=10)
    moorage.ok("stop", "-t", "1", "stubborn")
    count = fmt(moorage, "stubborn", "{{.RestartCount}}")
    time.sleep(1.5)
    assert fmt(moorage, "stubborn", "{{.State.Status}} {{.RestartCount}}") == f"exited {count}"
    assert fmt(moorage, "stubborn", "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"


# ---------------------------------------------------------------- the monitor


def test_container_outlives_the_cli_that_started_it(moorage):
    starter = subprocess.run(
        CLI + ["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert starter.returncode == 0, starter.stderr
    cid = starter.stdout.strip()
    time.sleep(0.5)
    st = state_file(cid)
    assert alive(st["pid"]) and alive(st["monitor_pid"])
    # The init's parent is the monitor, a process of its own, not the CLI that exited.
    ppid = int(
        re.search(r"^PPid:\s+(\d+)", Path(f"/proc/{st['pid']}/status").read_text(), re.M).group(1)
    )
    assert ppid == st["monitor_pid"]
    assert re.match(r"Up ", moorage.ok("ps", "--format", "{{.Status}}"))
    assert moorage.ok("exec", "orphan", "echo", "still here") == "still here\n"


def test_killing_the_monitor_marks_the_container_exited_and_leaves_nothing(moorage):
    cid = moorage.ok("run", "-d", "busybox", "sleep", "1000").strip()
    st = state_file(cid)
    assert cgroups.open_cgroup(cid).exists()
    os.kill(st["monitor_pid"], signal.SIGKILL)
    assert wait_until(
        lambda: "Exited (137)" in moorage.ok("ps", "-a", "--format", "{{.Status}}"), timeout=10
    )
    assert moorage.ok("ps", "-q") == ""
    assert wait_until(lambda: not alive(st["pid"]), timeout=5)
    assert not cgroups.open_cgroup(cid).exists()
    assert not attach.socket_path(cid).exists()
    assert moorage.ok("rm", cid) == cid + "\n"  # no -f needed: it is not running


def test_system_gc_removes_orphans_and_spares_live_containers(moorage):
    live = moorage.ok("run", "-d", "busybox", "sleep", "1000").strip()
    ghost = uuid.uuid4().hex * 2  # a 64-hex id no container has
    group = cgroups.open_cgroup(ghost)
    straggler = subprocess.Popen(["sleep", "1000"])
    try:
        group.create(cgroups.Resources())
        group.add_process(straggler.pid)
        socket_file = attach.socket_path(ghost)
        socket_file.touch()
        leftover_dir = paths.container(ghost)
        (leftover_dir / "upper").mkdir(parents=True)
        out = moorage.ok("system", "gc")
        assert f"cgroup: {ghost}" in out and f"directory: {ghost}" in out
        assert straggler.wait(timeout=10) == -signal.SIGKILL
        assert not group.exists()
        assert not socket_file.exists() and not leftover_dir.exists()
        assert cgroups.open_cgroup(live).exists()
        assert moorage.ok("exec", live, "echo", "spared") == "spared\n"
    finally:
        if straggler.poll() is None:
            straggler.kill()
            straggler.wait()
        if group.exists():
            group.destroy()


# ---------------------------------------------------------------- concurrency


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + list(args), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )


def test_fifty_parallel_detached_runs_all_start_with_unique_names_and_ids(moorage):
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: _cli("run", "-d", "busybox", "sleep", "1000"), range(50)))
    failures = [r.stderr for r in results if r.returncode != 0]
    assert failures == []
    ids = {r.stdout.strip() for r in results}
    assert len(ids) == 50 and all(HEX64.match(cid) for cid in ids)
    listed = moorage.ok("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}").split("\n")[:-1]
    assert {line.split()[0] for line in listed} == ids
    assert len({line.split()[1] for line in listed}) == 50


def test_two_concurrent_forced_removals_of_one_container_leave_nothing(moorage):
    cid = moorage.ok("run", "-d", "--name", "twice", "busybox", "sleep", "1000").strip()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: _cli("rm", "-f", "twice"), range(2)))
    assert any(r.returncode == 0 and r.stdout == "twice\n" for r in results)
    for r in results:
        assert r.returncode == 0 or "No such container" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert all_ids(moorage) == []
    assert not paths.container(cid).exists()
    assert not cgroups.open_cgroup(cid).exists()
    assert not attach.socket_path(cid).exists()
    moorage.ok("run", "-d", "--name", "twice", "busybox", "true")  # the name is free


def test_concurrent_runs_with_one_name_let_exactly_one_win(moorage):
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(
                lambda _: _cli("run", "-d", "--name", "same", "busybox", "sleep", "1000"), range(3)
            )
        )
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1
    assert all(r.returncode == 125 and "already in use" in r.stderr for r in losers)
    assert all_ids(moorage) == [winners[0].stdout.strip()]


# ---------------------------------------------------------------- log rotation


def test_log_rotation_keeps_at_most_max_file_files_and_logs_still_read(moorage):
    script = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; done"
    cid = moorage.ok(
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        script,
    ).strip()
    assert moorage.ok("wait", cid) == "0\n"
    files = sorted(p.name for p in paths.container(cid).glob(f"{cid}-json.log*"))
    assert files == [f"{cid}-json.log", f"{cid}-json.log.1"]
    assert all((paths.container(cid) / name).stat().st_size <= 1024 for name in files)
    lines = log_lines(moorage, cid)
    numbers = [int(line.removeprefix("line-")) for line in lines]
    assert numbers[-1] == 300 and 5 < len(numbers) < 300
    assert numbers == list(range(numbers[0], 301))  # the newest lines, none lost between
    assert log_lines(moorage, cid, "--tail", "2") == ["line-299", "line-300"]


def test_system_reconcile_restarts_a_lost_always_container_even_after_ps_saw_it(moorage):
    keeper = moorage.ok("run", "-d", "--restart", "always", "busybox", "sleep", "1000").strip()
    plain = moorage.ok("run", "-d", "busybox", "sleep", "1000").strip()
    for cid in (keeper, plain):
        os.kill(state_file(cid)["monitor_pid"], signal.SIGKILL)
    # ps notices the losses first and records them as exits ...
    assert wait_until(lambda: moorage.ok("ps", "-q") == "", timeout=10)
    # ... and reconcile still knows which were lost, not stopped.
    assert moorage.ok("system", "reconcile").split() == ["restarted", keeper]
    assert moorage.ok("ps", "-q", "--no-trunc").split() == [keeper]
    assert moorage.ok("system", "reconcile").split() == []


def test_signals_the_engine_ignores_are_at_their_defaults_in_the_container(moorage):
    # SIGHUP (ignored by the monitor) ends a plain sleep, as under docker.
    moorage.ok("run", "-d", "--name", "hup", "busybox", "sleep", "1000")
    moorage.ok("exec", "hup", "sh", "-c", "sleep 500 & kill -HUP $!; wait $!; echo $?")
    assert (
        moorage.ok("exec", "hup", "sh", "-c", "sleep 500 & kill -HUP $!; wait $!; echo $?")
        == "129\n"
    )
