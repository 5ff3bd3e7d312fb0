"""Job progress (``ws/jobs/<pk>/``) and the containers list's live column (``ws/stats/``).

Real ASGI application (Origin check, session auth, routing), a real Redis channel layer,
a real Celery worker running a real bulk job over busybox containers run by the real
CLI (issue 6: "bulk job progress streams item by item", "a compact live column").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from containers_app.models import ItemState, JobItem
from containers_app.services import containers as container_services
from tests.web.test_streams import signed_in, socket_to

pytestmark = pytest.mark.usefixtures("transactional_db", "redis_server")

# Stops on SIGTERM, two seconds after it (a trap runs once the current sleep returns).
QUICK = ("sh", "-c", "trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done")
BUSY = ("sh", "-c", "while :; do :; done")


async def next_json(ws: WebsocketCommunicator, timeout: float = 20) -> dict[str, Any]:
    return dict(json.loads(await ws.receive_from(timeout)))


def test_a_bulk_stop_streams_each_item_as_the_worker_finishes_it(
    celery_worker: Any, users: Any, engine_containers: Any
) -> None:
    quick = engine_containers.run("js-quick", *QUICK, team=users.team)
    slow = engine_containers.run("js-slow", team=users.team)  # sleep ignores TERM: 4 s
    quick2 = engine_containers.run("js-quick2", *QUICK, team=users.team)
    session = signed_in(users.viewer)  # job.view is a read: a viewer of the team may watch
    job = container_services.bulk(users.operator, "stop", [quick, slow, quick2], {"timeout": 4})
    slow_position = JobItem.objects.get(job=job, target=slow).position

    async def scenario() -> list[dict[str, Any]]:
        ws = socket_to(f"/ws/jobs/{job.pk}/", session)
        connected, _ = await ws.connect()
        assert connected
        frames = [await next_json(ws)]
        while frames[-1].get("job", {}).get("state") not in ("succeeded", "failed"):
            frames.append(await next_json(ws))
        await ws.disconnect()
        return frames

    frames = asyncio.run(scenario())
    snapshot, pushed = frames[0], frames[1:]
    assert snapshot["job"]["id"] == job.pk and snapshot["job"]["total"] == 3
    assert [i["position"] for i in snapshot["items"]] == [0, 1, 2]
    # The snapshot was taken before any item ended (each takes at least 2 s).
    assert all(i["state"] in (ItemState.PENDING, ItemState.RUNNING) for i in snapshot["items"])
    items = [f["item"] for f in pushed if "item" in f]
    assert all(len(f) == 1 for f in pushed), pushed  # one item or one job state per frame
    assert sorted(i["position"] for i in items) == [0, 1, 2]
    assert all(i["state"] == ItemState.SUCCEEDED for i in items), items
    # One by one: both quick ones were pushed before the slow one had finished.
    assert items[-1]["position"] == slow_position, items
    assert pushed[-1] == {"job": {"id": job.pk, "state": "succeeded"}}
    assert pushed.index({"item": items[-1]}) < len(pushed) - 1


@pytest.mark.parametrize(
    "who, origin, outcome",
    [
        ("outsider", b"http://localhost", 4404),  # another team's job: not even shown
        ("operator", b"http://evil.example", "refused"),  # cross-site websocket hijacking
        (None, b"http://localhost", 4403),  # no session
    ],
)
def test_job_progress_is_refused_to_outsiders_foreign_origins_and_anonymous_users(
    users: Any, who: str | None, origin: bytes, outcome: object
) -> None:
    from containers_app.models import Job

    job = Job.objects.create(verb="stop", user=users.operator, team=users.team, total=0)
    session = signed_in(getattr(users, who)) if who else None

    async def scenario() -> object:
        ws = socket_to(f"/ws/jobs/{job.pk}/", session, origin=origin)
        connected, _ = await ws.connect()
        if not connected:
            await ws.disconnect()
            return "refused"
        error = await next_json(ws, 5)
        closed = await ws.receive_output(5)
        await ws.disconnect()
        assert error["error"], error
        return closed["code"]

    assert asyncio.run(scenario()) == outcome


def test_the_live_column_samples_the_watched_rows_the_user_may_see_and_waits_for_acks(
    users: Any, engine_containers: Any
) -> None:
    busy = engine_containers.run("col-busy", *BUSY, team=users.team)
    idle = engine_containers.run("col-idle", team=users.team)
    stopped = engine_containers.run("col-stopped", team=users.team)
    engine_containers.cli("kill", stopped)
    engine_containers.cli("wait", stopped)
    foreign = engine_containers.run("col-blue", team=users.other_team)
    session = signed_in(users.viewer)

    async def scenario() -> tuple[list[dict[str, Any]], bool]:
        ws = socket_to("/ws/stats/", session)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_to(text_data=json.dumps({"watch": [busy, idle, stopped, foreign, "f" * 64]}))
        frames = [await next_json(ws, 10)]
        await ws.send_to(text_data=json.dumps({"ack": frames[0]["seq"]}))
        frames.append(await next_json(ws, 10))
        # No ack for the second frame: nothing more is sampled or sent.
        quiet = await ws.receive_nothing(timeout=1.5)
        await ws.send_to(text_data=json.dumps({"ack": frames[1]["seq"]}))
        frames.append(await next_json(ws, 10))
        await ws.disconnect()
        return frames, quiet

    frames, quiet = asyncio.run(scenario())
    assert quiet, "a frame came although the page had not acked the last one"
    first, second = frames[0]["stats"], frames[1]["stats"]
    # Another team's container and unknown ids are dropped; a stopped one reads null.
    assert set(first) == set(second) == {busy, idle, stopped}
    assert first[stopped] is None and second[stopped] is None
    assert first[busy]["cpu_percent"] is None and first[busy]["memory"] > 0  # needs two
    assert second[busy]["cpu_percent"] > 20, second  # a shell spinning on a CPU
    assert second[idle]["cpu_percent"] < second[busy]["cpu_percent"]
    assert second[idle]["memory_limit"] > 0
    assert [f["seq"] for f in frames] == [1, 2, 3]
