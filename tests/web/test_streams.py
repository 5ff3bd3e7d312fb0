"""Websocket streams against real containers: terminal, logs, stats (issue 6).

Each test drives the real ASGI application (Origin check, session auth, routing) with
Channels' WebsocketCommunicator, signed in through a real Django session cookie, against
busybox containers run by the real CLI. Nothing is faked between the socket and the
container's pty.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from containers_app import mirror
from containers_app.models import AuditEntry
from webui.asgi import application

pytestmark = pytest.mark.usefixtures("transactional_db", "redis_server")

CLI = [sys.executable, "-m", "runtime.cli"]


def signed_in(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def socket_to(
    path: str, session: str | None, origin: bytes = b"http://localhost"
) -> WebsocketCommunicator:
    """A websocket for the session cookie ``session`` (from ``signed_in``, made before
    the event loop runs: the ORM is synchronous)."""
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def screen_until(ws: WebsocketCommunicator, pattern: bytes, timeout: float = 15) -> bytes:
    """Terminal bytes until ``pattern`` shows (text frames are skipped)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} never showed; screen: {seen!r}"
        message = await ws.receive_output(left)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed ({message.get('code')}); screen: {seen!r}")
        seen += message.get("bytes") or b""
    return seen


async def next_json(ws: WebsocketCommunicator, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive_output(max(0.1, deadline - time.monotonic()))
        if message.get("text"):
            return dict(json.loads(message["text"]))
        assert message["type"] != "websocket.close", message


def run_container(users: Any, *args: str) -> str:
    """``moorage run -d`` in the users' team, mirrored at once."""
    done = subprocess.run(
        CLI
        + [
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            f"{mirror.TEAM_LABEL}={users.team.pk}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    mirror.sync_container(cid)
    return cid


def running(cid: str) -> bool:
    from runtime import containers

    return bool(containers.inspect(cid)["State"]["Running"])


@pytest.fixture
def shell_box(users: Any, engine_containers: Any) -> str:
    return run_container(users, "--name", "box", "busybox", "sleep", "600")


def test_exec_terminal_echoes_resizes_interrupts_and_reports_the_exit(users, shell_box):
    operator = signed_in(users.operator)

    async def scenario() -> None:
        ws = socket_to("/ws/containers/box/terminal/?rows=30&cols=90", operator)
        connected, _ = await ws.connect()
        assert connected
        ready = await next_json(ws)
        assert ready["ready"] == {"mode": "exec", "command": ["sh"]}  # no bash in busybox
        await ws.send_to(bytes_data=b"echo hello-$((6*7)); stty size\r")
        assert b"30 90" in await screen_until(ws, rb"hello-42\r\n30 90")
        await ws.send_to(text_data=json.dumps({"resize": [44, 132]}))
        await ws.send_to(bytes_data=b"stty size\r")
        await screen_until(ws, rb"44 132")
        await ws.send_to(bytes_data=b"sleep 100\r")
        await screen_until(ws, rb"sleep 100\r\n")
        await asyncio.sleep(0.5)
        await ws.send_to(bytes_data=b"\x03")
        await ws.send_to(bytes_data=b"echo back-$((1+1))\r")
        await screen_until(ws, rb"back-2", timeout=10)
        await ws.send_to(bytes_data=b"exit 7\r")
        assert (await next_json(ws))["exit"] == 7
        await ws.disconnect()

    asyncio.run(scenario())
    assert running(shell_box)
    verbs = list(AuditEntry.objects.filter(targets=[shell_box]).values_list("verb", flat=True))
    assert "terminal.exec" in verbs and "terminal.close" in verbs


def test_a_typed_command_runs_instead_of_a_shell_and_a_missing_one_is_refused(users, shell_box):
    operator = signed_in(users.operator)

    async def scenario() -> None:
        ws = socket_to("/ws/containers/box/terminal/?cmd=echo+one+two", operator)
        await ws.connect()
        assert (await next_json(ws))["ready"]["command"] == ["echo", "one", "two"]
        await screen_until(ws, rb"one two")
        assert (await next_json(ws))["exit"] == 0
        await ws.disconnect()
        missing = socket_to("/ws/containers/box/terminal/?cmd=nonesuch", operator)
        await missing.connect()
        assert "nonesuch" in (await next_json(missing))["error"]
        closed = await missing.receive_output(5)
        assert closed["type"] == "websocket.close"
        await missing.disconnect()

    asyncio.run(scenario())


def test_attach_reaches_the_containers_own_tty_and_detach_leaves_it_running(
    users, engine_containers
):
    cid = run_container(users, "-it", "--name", "ttybox", "busybox", "sh")

    operator = signed_in(users.operator)

    async def scenario() -> None:
        ws = socket_to("/ws/containers/ttybox/terminal/?mode=attach", operator)
        await ws.connect()
        assert (await next_json(ws))["ready"]["mode"] == "attach"
        await ws.send_to(bytes_data=b"echo attached-$((2*21))\r")
        await screen_until(ws, rb"attached-42")
        await ws.send_to(bytes_data=b"\x10\x11")
        assert (await next_json(ws)) == {"detached": True}
        await ws.disconnect()

    asyncio.run(scenario())
    assert running(cid)


def test_log_lines_written_after_connecting_arrive_live(users, engine_containers):
    run_container(
        users,
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "echo before; sleep 2; for i in 1 2 3; do echo live-$i; echo err-$i >&2; sleep 0.2; done",
    )

    viewer = signed_in(users.viewer)

    async def scenario() -> list[list[str]]:
        ws = socket_to("/ws/containers/chatty/logs/?tail=all", viewer)
        assert (await ws.connect())[0]
        lines: list[list[str]] = []
        while True:
            message = await next_json(ws, timeout=20)
            if message.get("end"):
                break
            lines.extend(message["lines"])
        await ws.disconnect()
        return lines

    lines = asyncio.run(scenario())
    texts = [(stream, text) for stream, _, text in lines]
    assert texts[0] == ("stdout", "before\n")
    assert ("stdout", "live-3\n") in texts and ("stderr", "err-2\n") in texts


def test_stats_stream_a_sample_a_second_with_docker_fields(users, shell_box):
    viewer = signed_in(users.viewer)

    async def scenario() -> dict[str, Any]:
        ws = socket_to("/ws/containers/box/stats/", viewer)
        assert (await ws.connect())[0]
        sample = await next_json(ws, timeout=10)
        await ws.disconnect()
        return sample

    sample = asyncio.run(scenario())
    assert sample["memory"] > 0 and sample["pids"] == 1
    assert 0 <= sample["cpu_percent"] <= 100 * 64


@pytest.mark.parametrize("who, code", [("viewer", 4403), ("outsider", 4404)])
def test_a_terminal_is_refused_to_a_viewer_and_hidden_from_an_outsider(users, shell_box, who, code):
    session = signed_in(getattr(users, who))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = socket_to("/ws/containers/box/terminal/", session)
        await ws.connect()
        error = await next_json(ws)
        closed = await ws.receive_output(5)
        return error, closed

    error, closed = asyncio.run(scenario())
    assert error["error"]
    assert closed == {"type": "websocket.close", "code": code}


def test_a_websocket_from_another_origin_is_refused_before_anything_opens(users, shell_box):
    site_admin = signed_in(users.site_admin)

    async def scenario() -> bool:
        ws = socket_to("/ws/containers/box/terminal/", site_admin, origin=b"http://evil.example")
        connected, _ = await ws.connect()
        await ws.disconnect()
        return connected

    assert asyncio.run(scenario()) is False
    assert not AuditEntry.objects.filter(verb__startswith="terminal").exists()


def test_an_anonymous_websocket_is_refused(users, shell_box):
    async def scenario() -> dict[str, Any]:
        ws = socket_to("/ws/containers/box/logs/", None)
        await ws.connect()
        error = await next_json(ws)
        await ws.disconnect()
        return error

    assert "Sign in" in asyncio.run(scenario())["error"]


@pytest.mark.parametrize("unread", [b"", b"bytes the monitor never read"])
def test_a_terminal_to_a_monitor_on_its_way_out_is_refused_as_not_running(users, shell_box, unread):
    """Between telling attached clients the container stopped and unlinking its socket, a
    monitor still accepts connections, then closes them: a hang-up, or a reset when our
    request is unread. The page must hear 4409 "not running", not a dropped socket."""
    import socket
    import threading

    from runtime import attach

    subprocess.run(CLI + ["stop", "-t", "0", "box"], check=True, capture_output=True, timeout=30)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(attach.socket_path(shell_box)))
    listener.listen()

    def exiting_monitor() -> None:
        conn, _ = listener.accept()
        if unread:  # wait for the request, leave it unread: the close then resets
            conn.recv(1, socket.MSG_PEEK)
        conn.close()

    monitor = threading.Thread(target=exiting_monitor)
    monitor.start()
    session = signed_in(users.operator)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = socket_to("/ws/containers/box/terminal/?cmd=sh", session)
        await ws.connect()
        error = await next_json(ws)
        closed = await ws.receive_output(5)
        return error, closed

    try:
        error, closed = asyncio.run(scenario())
    finally:
        monitor.join(5)
        listener.close()
        attach.socket_path(shell_box).unlink()
    assert "is not running" in error["error"]
    assert closed == {"type": "websocket.close", "code": 4409}
