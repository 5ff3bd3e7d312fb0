"""Exec sessions served by the monitor over the attach socket (runtime/exec_relay.py).

This is the path the browser terminal takes: the web server never forks into the
container itself; it asks the monitor, and the pty comes back as attach frames.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from runtime import attach, containers


def open_session(cid: str, **request: object) -> attach.Client:
    client = attach.Client(cid, {"op": "exec", **request}, timeout=15)
    kind, payload = client.recv()
    assert kind == attach.CONTROL
    assert json.loads(payload) == {"ok": True}
    return client


def read_until(client: attach.Client, pattern: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        assert time.monotonic() < deadline, f"{pattern!r} never came; saw {seen!r}"
        item = client.recv()
        assert item is not None, f"the monitor hung up; saw {seen!r}"
        if item[0] == attach.STDOUT:
            seen += item[1]
    return seen


def exit_of(client: attach.Client) -> int:
    while (item := client.recv()) is not None:
        if item[0] == attach.CONTROL:
            return int(json.loads(item[1])["exit"])
    raise AssertionError("no exit code before the monitor hung up")


@pytest.fixture
def running(moorage) -> str:
    return moorage.ok("run", "-d", "--name", "relayed", "busybox", "sleep", "1000").strip()


def test_a_shell_session_echoes_sees_its_window_size_and_reports_its_exit(running):
    client = open_session(running, argv=["sh"], rows=33, cols=101)
    with client:
        client.send(attach.STDIN, b"echo hi-$((40+2)); stty size\r")
        assert b"33 101" in read_until(client, rb"hi-42.*\r\n33 101")
        client.send_control({"op": "resize", "rows": 50, "cols": 120})
        client.send(attach.STDIN, b"stty size\r")
        read_until(client, rb"50 120")
        client.send(attach.STDIN, b"exit 3\r")
        assert exit_of(client) == 3
    assert containers.inspect(running)["State"]["Running"] is True


def test_ctrl_c_reaches_the_foreground_process_of_the_session(running):
    with open_session(running, argv=["sh"]) as client:
        read_until(client, rb"# ")  # the shell is up and owns the terminal
        client.send(attach.STDIN, b"sleep 100; echo after-$((1+1))\r")
        read_until(client, rb"sleep 100.*\r\n")
        time.sleep(0.5)
        client.send(attach.STDIN, b"\x03")
        client.send(attach.STDIN, b"echo again-$((2+2))\r")
        read_until(client, rb"again-4")


def test_a_command_that_does_not_exist_is_an_error_with_126_or_127(running):
    client = attach.Client(running, {"op": "exec", "argv": ["no-such-thing"]}, timeout=15)
    with client:
        kind, payload = client.recv()
        answer = json.loads(payload)
        assert answer["exit"] == 127
        assert "no-such-thing" in answer["error"]


def test_closing_the_connection_hangs_up_the_shell(running, moorage):
    client = open_session(running, argv=["sh", "-c", "echo ready; exec sleep 300"])
    read_until(client, rb"ready")
    client.close()
    # A hung-up terminal ends its session: no sleep 300 is left in the container.
    deadline = time.monotonic() + 10
    while "sleep 300" in moorage.ok("top", "relayed"):
        assert time.monotonic() < deadline, "the session outlived its terminal"
        time.sleep(0.1)
