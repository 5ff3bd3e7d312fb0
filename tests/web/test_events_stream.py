"""Live container states over ``ws/events/`` (issue 6), fed by the mirror sync.

Real ASGI application (Origin check, session auth), a real Redis channel layer, real
busybox containers changed with the real CLI; the mirror sync that a Celery beat runs
every second is called here directly (beat may run too once a test has started the
worker: see ``change_past``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async as orm
from channels.testing import WebsocketCommunicator
from django.test import Client

from containers_app import mirror
from webui.asgi import application

pytestmark = pytest.mark.usefixtures("transactional_db", "redis_server")

CLI = [sys.executable, "-m", "runtime.cli"]

# The mirror syncs touch the ORM: they run through ``orm`` (channels'
# database_sync_to_async), which closes the thread's connection after each call, never
# through asyncio.to_thread, whose worker threads would keep theirs open until garbage
# collection (PostgreSQL then keeps their sessions and cannot drop the test database).


def signed_in(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def events_socket(session: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, "/ws/events/", headers=headers)


def cli(*args: str) -> str:
    done = subprocess.run(
        CLI + list(args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"moorage {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def run(name: str, team: Any | None) -> str:
    label = ["--label", f"{mirror.TEAM_LABEL}={team.pk}"] if team is not None else []
    return cli("run", "-d", "--network", "none", "--name", name, *label, "busybox", "sleep", "600")


async def change_of(ws: WebsocketCommunicator, cid: str, timeout: float = 10) -> dict[str, Any]:
    """The next pushed change of container ``cid`` (others are skipped)."""
    while True:
        message = json.loads(await ws.receive_from(timeout))
        if message["container"]["id"] == cid:
            return dict(message["container"])


async def change_past(ws: WebsocketCommunicator, cid: str, *before: str) -> dict[str, Any]:
    """The first pushed change of ``cid`` whose state is not one of ``before``: once a
    test has used the Celery worker, its beat resyncs every second too, so it may push a
    state the test's own sync would have skipped (``created`` between run's create and
    start) or repeat one."""
    while True:
        change = await change_of(ws, cid)
        if change["state"] not in before:
            return change


async def connected(session: str | None) -> WebsocketCommunicator:
    ws = events_socket(session)
    ok, _ = await ws.connect()
    assert ok
    return ws


def test_a_page_hears_a_cli_start_stop_and_remove_through_the_mirror_sync(
    users: Any, engine_containers: Any
) -> None:
    operator = signed_in(users.operator)

    async def scenario() -> None:
        ws = await connected(operator)
        cid = await asyncio.to_thread(run, "ev-box", users.team)
        await orm(mirror.sync_containers)()
        first = await change_past(ws, cid, "created")
        assert first == {"id": cid, "name": "ev-box", "state": "running", "exit_code": 0}

        await asyncio.to_thread(cli, "stop", "-t", "1", "ev-box")
        await orm(mirror.sync_containers)()
        stopped = await change_past(ws, cid, "running")
        assert stopped["state"] == "exited" and stopped["exit_code"] == 137

        await asyncio.to_thread(cli, "rm", "ev-box")
        await orm(mirror.sync_containers)()
        assert (await change_past(ws, cid, "exited"))["state"] == "removed"
        await ws.disconnect()

    asyncio.run(scenario())


def test_a_single_container_sync_pushes_too(users: Any, engine_containers: Any) -> None:
    """The one-container sync (``sync_container``, run after a create or rename item)
    pushes like beat's."""
    viewer = signed_in(users.viewer)

    async def scenario() -> None:
        ws = await connected(viewer)
        cid = await asyncio.to_thread(run, "ev-one", users.team)
        await orm(mirror.sync_container)(cid)
        assert (await change_past(ws, cid, "created"))["state"] == "running"
        # kill returns once the signal is sent, like docker's; wait until the engine
        # has recorded the exit so the one sync below is the one that sees it.
        await asyncio.to_thread(cli, "kill", "ev-one")
        assert await asyncio.to_thread(cli, "wait", "ev-one") == "137"
        await orm(mirror.sync_container)(cid)
        assert (await change_past(ws, cid, "running"))["state"] == "exited"
        await ws.disconnect()

    asyncio.run(scenario())


def test_other_teams_never_hear_of_a_teams_container_but_all_hear_of_global_ones(
    users: Any, engine_containers: Any
) -> None:
    red, blue = signed_in(users.operator), signed_in(users.outsider)

    async def scenario() -> None:
        red_ws, blue_ws = await connected(red), await connected(blue)
        secret = await asyncio.to_thread(run, "ev-red", users.team)
        await orm(mirror.sync_container)(secret)
        assert (await change_of(red_ws, secret))["name"] == "ev-red"
        # Red heard it, so it was published; blue must have nothing about it.
        shared = await asyncio.to_thread(run, "ev-global", None)
        await orm(mirror.sync_container)(shared)
        heard = json.loads(await blue_ws.receive_from(10))["container"]
        assert heard["id"] == shared, f"blue heard of {heard['name']}"
        assert (await change_of(red_ws, shared))["name"] == "ev-global"
        # More news of the global one may come (a resync); none may be about red's.
        while not await blue_ws.receive_nothing(0.5):
            later = json.loads(await blue_ws.receive_from(1))["container"]
            assert later["id"] != secret, "blue heard of red's container"
        await red_ws.disconnect()
        await blue_ws.disconnect()

    asyncio.run(scenario())


def test_a_signed_out_page_is_refused_with_a_reason() -> None:
    async def scenario() -> None:
        ws = events_socket(None)
        ok, _ = await ws.connect()
        assert ok  # accepted so that the reason can be said, then closed
        assert "Sign in" in json.loads(await ws.receive_from(5))["error"]
        assert (await ws.receive_output(5))["code"] == 4401

    asyncio.run(scenario())


def test_a_foreign_origin_cannot_listen() -> None:
    async def scenario() -> None:
        ws = WebsocketCommunicator(
            application,
            "/ws/events/",
            headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
        )
        ok, _ = await ws.connect()
        assert not ok

    asyncio.run(scenario())
