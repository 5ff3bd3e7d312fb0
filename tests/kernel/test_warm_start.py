"""The warm server behind `moorage` (runtime/cli/warm_server.py): a command runs in a
fork of it with the caller's streams, arguments, environment and directory, and gives
what it gives in its own process; callers it cannot stand in for run in their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import runtime
from runtime import paths
from runtime.cli import warm_client, warm_server
from tests.kernel.conftest import CLI


def _server_pid(moorage) -> int:
    """The running server's pid, starting one (as any command does) if there is none."""
    lock = Path(warm_client.address() + ".lock")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if Path(warm_client.address()).exists() and lock.exists():
            pid = int(lock.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                return pid
        moorage.ok("ps", "-q")
        time.sleep(0.2)
    raise AssertionError("no warm server came up")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _runner_writing_to(server: int, pipe_fd: int) -> int:
    """The runner (a child of a session, a child of the server) whose stdout is the
    pipe ``pipe_fd`` reads."""
    want = os.fstat(pipe_fd).st_ino
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for session in _children(server):
            for runner in _children(session):
                try:
                    if os.stat(f"/proc/{runner}/fd/1").st_ino == want:
                        return runner
                except FileNotFoundError:
                    continue
        time.sleep(0.05)
    raise AssertionError("no runner of the server writes to the command's stdout")


def _ended(pid: int, within: float = 10) -> bool:
    """True once ``pid`` is gone or a zombie its parent has yet to reap."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _monitor_command_line(cid: str) -> str:
    state = json.loads((paths.container(cid) / "state.json").read_text())
    return Path(f"/proc/{state['monitor_pid']}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_a_command_runs_in_a_fork_of_the_server_on_the_callers_own_streams(moorage):
    server = _server_pid(moorage)
    client = moorage.popen(
        "run", "--rm", "busybox", "sh", "-c", "sleep 2; echo done",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    with client:
        runner = _runner_writing_to(server, client.stdout.fileno())
        assert Path(f"/proc/{runner}/cwd").resolve() == Path.cwd()
        out, err = client.communicate(timeout=30)
    assert (client.returncode, out, err) == (0, b"done\n", b"")


@pytest.mark.parametrize("warm", ["1", "0"])
def test_exit_code_stdin_stdout_and_stderr_are_those_of_a_run_in_its_own_process(moorage, warm):
    _server_pid(moorage)
    done = subprocess.run(
        [*CLI, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo oops >&2; exit 3"],
        input=b"hello\n",
        capture_output=True,
        env={**os.environ, "MOORAGE_WARM": warm},
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"hello\n", b"oops\n")


def test_each_call_gets_its_callers_environment_and_working_directory(moorage, tmp_path):
    _server_pid(moorage)
    (tmp_path / "vars.env").write_text("FROM_FILE=beside the caller\n")
    for value in ("one", "two"):
        done = subprocess.run(
            [*CLI, "run", "--rm", "-e", "FROM_CALLER", "--env-file", "vars.env", "busybox",
             "sh", "-c", 'echo "$FROM_CALLER / $FROM_FILE"'],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
            env={**os.environ, "FROM_CALLER": value},
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, f"{value} / beside the caller\n"), done


def _following_logs(moorage) -> subprocess.Popen:
    """`moorage logs -f` of a container that printed a line, once it has printed it."""
    cid = moorage.ok("run", "-d", "busybox", "sh", "-c", "echo ready; exec sleep 1000").strip()
    client = moorage.popen("logs", "-f", cid, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert client.stdout.readline() == b"ready\n"  # the command is past its start-up
    return client


@pytest.mark.parametrize("warm", ["1", "0"])
def test_a_signal_to_the_caller_reaches_the_command(moorage, monkeypatch, warm):
    _server_pid(moorage)
    monkeypatch.setenv("MOORAGE_WARM", warm)
    with _following_logs(moorage) as client:
        client.send_signal(signal.SIGINT)
        assert client.wait(timeout=10) == 130  # the interrupted command's own exit code


def test_when_the_caller_dies_the_command_dies_with_it(moorage):
    server = _server_pid(moorage)
    with _following_logs(moorage) as client:
        runner = _runner_writing_to(server, client.stdout.fileno())
        client.kill()
        client.wait(timeout=10)
    assert _ended(runner)


def test_containers_started_through_the_server_have_its_monitors(moorage):
    _server_pid(moorage)
    cid = moorage.ok("run", "-d", "--network", "none", "busybox", "sleep", "1000").strip()
    assert "runtime.cli.warm_server" in _monitor_command_line(cid)


def test_a_caller_in_other_namespaces_runs_the_command_in_its_own_process(moorage):
    _server_pid(moorage)
    done = subprocess.run(
        ["unshare", "--uts", *CLI, "run", "-d", "--network", "none", "busybox", "sleep", "1000"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    command = _monitor_command_line(done.stdout.strip())
    assert "runtime.cli" in command and "warm_server" not in command


def test_a_changed_engine_source_ends_the_server_and_the_command_still_runs(moorage):
    server = _server_pid(moorage)
    folder = Path(runtime.__file__).parent / "cli"
    before = os.stat(folder)
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        cid = moorage.ok("run", "-d", "--network", "none", "busybox", "sleep", "1000").strip()
    finally:
        os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "warm_server" not in _monitor_command_line(cid)
    assert _ended(server)
    assert _server_pid(moorage) != server  # the next commands start a fresh one


def test_the_socket_is_the_owners_alone_and_stop_ends_the_server(moorage):
    server = _server_pid(moorage)
    socket_path = Path(warm_client.address())
    assert socket_path.stat().st_mode & 0o777 == 0o600
    warm_server.stop(str(paths.run_root()))
    assert not socket_path.exists()
    assert _ended(server, within=0)
    # and with no server, the command runs in its own process, and starts one
    assert moorage.ok("run", "--rm", "--network", "none", "busybox", "echo", "hi") == "hi\n"
    assert _server_pid(moorage) != server
