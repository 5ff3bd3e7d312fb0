"""The jobs list's live push (``ws/jobs/``): who is told when a job starts or ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from containers_app.consumers import jobs as job_stream
from containers_app.models import Job
from tests.web.test_live_consumers import next_json, signed_in
from tests.web.test_live_consumers import socket_to as socket_on

pytestmark = pytest.mark.usefixtures("transactional_db", "redis_server")


def socket_to(session: str | None) -> WebsocketCommunicator:
    return socket_on("/ws/jobs/", session)


async def drain(sockets: dict[str, WebsocketCommunicator]) -> dict[str, list[dict[str, Any]]]:
    """Every frame each socket got until a second passed without one; then disconnect."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for who, ws in sockets.items():
        frames: list[dict[str, Any]] = []
        while not await ws.receive_nothing(timeout=1):
            frames.append(await next_json(ws))
        seen[who] = frames
        await ws.disconnect()
    return seen


def test_a_job_changing_state_is_pushed_to_its_team_its_user_and_site_admins_only(
    users: Any,
) -> None:
    job = Job.objects.create(verb="stop", user=users.operator, team=users.team, total=0)
    watchers = {
        who: signed_in(getattr(users, who))
        for who in ("viewer", "operator", "site_admin", "outsider")
    }

    async def scenario() -> dict[str, list[dict[str, Any]]]:
        sockets = {who: socket_to(session) for who, session in watchers.items()}
        for ws in sockets.values():
            connected, _ = await ws.connect()
            assert connected
            assert await next_json(ws) == {"live": True}  # joined its groups
        # What the worker does (tasks.run_job), from this process's publisher thread.
        await asyncio.to_thread(
            job_stream.job_changed, job.pk, "running", users.operator.pk, users.team.pk
        )
        await asyncio.to_thread(
            job_stream.job_changed, job.pk, "succeeded", users.operator.pk, users.team.pk
        )
        return await drain(sockets)

    seen = asyncio.run(scenario())
    states = {who: [f["job"]["state"] for f in frames] for who, frames in seen.items()}
    assert seen["outsider"] == []  # another team's job is never mentioned
    assert states["site_admin"] == ["running", "succeeded"]
    assert states["viewer"] == ["running", "succeeded"]
    # The job's own user is told once per group it is in (the page folds repeats).
    assert set(states["operator"]) == {"running", "succeeded"}
    assert all(f["job"]["id"] == job.pk for frames in seen.values() for f in frames)


def test_a_users_own_teamless_job_reaches_that_user_only(users: Any) -> None:
    job = Job.objects.create(verb="image.pull", user=users.viewer, team=None, total=0)
    sessions = {"viewer": signed_in(users.viewer), "operator": signed_in(users.operator)}

    async def scenario() -> dict[str, list[dict[str, Any]]]:
        sockets = {who: socket_to(session) for who, session in sessions.items()}
        for ws in sockets.values():
            assert (await ws.connect())[0]
            await next_json(ws)
        await asyncio.to_thread(job_stream.job_changed, job.pk, "failed", users.viewer.pk, None)
        return await drain(sockets)

    seen = asyncio.run(scenario())
    assert seen == {"viewer": [{"job": {"id": job.pk, "state": "failed"}}], "operator": []}


def test_the_jobs_list_socket_refuses_anonymous_users() -> None:
    async def scenario() -> tuple[dict[str, Any], int]:
        ws = socket_to(None)
        assert (await ws.connect())[0]
        error = await next_json(ws, 5)
        closed = await ws.receive_output(5)
        return error, closed["code"]

    error, code = asyncio.run(scenario())
    assert "Sign in" in error["error"] and code == 4403


def test_the_jobs_list_page_keeps_its_poll_as_fallback_and_loads_the_live_script(
    users: Any,
) -> None:
    client = Client()
    client.force_login(users.viewer)
    html = client.get("/jobs/").content.decode()
    assert 'hx-trigger="every 3s, jobs-changed delay:300ms"' in html
    assert "js/job.js" in html and 'data-live-list="1"' in html
