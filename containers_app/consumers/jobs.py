"""Live job progress: ``ws/jobs/<pk>/``, pushed item by item by the Celery task.

``item_finished(job_id, item)`` and ``job_changed(job_id, state)`` are called by
``tasks.run_job`` in the worker; they ``group_send`` to the channel-layer group
``job-<pk>`` (best effort: without a channel layer the page falls back to polling)
through ``Publisher``: one thread per worker process with its own event loop sends the
messages in order, so an item never waits for Redis (``async_to_sync`` per message
would start a loop and a connection each time, ~15 ms); only the job's final state
waits, briefly, until everything before it has gone out.
``job_changed`` also tells the jobs list (``ws/jobs/``, ``JobListConsumer``): the
groups of the job's user, of its team and of site admins, the same people
``permissions.visible`` shows the job to. The frame carries the job's id and state only;
the page re-reads its table, so what it shows still comes through ``visible``.
``JobProgressConsumer`` lets in only users who may see the job (``job.view``, through
``services.jobs.get``: another team's job is a 404), joins the group, then sends a
snapshot, so an item finished between the two is sent twice rather than never.

Frames to the page (JSON text): ``{"job": {...}, "items": [...]}`` first, then
``{"item": {"position", "label", "target", "state", "result", "error"}}`` per finished
item and ``{"job": {"state", ...}}`` when the job starts and ends. The page never sends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from redis.exceptions import RedisError

from containers_app import permissions
from containers_app.consumers.base import RefusingConsumer
from containers_app.models import Job, JobItem
from containers_app.services import jobs as job_services
from runtime.errors import MoorageError


def group(job_id: int) -> str:
    return f"job-{job_id}"


LIST_ALL = "jobs-all"  # site admins see every job


def list_groups(user_id: int | None, team_id: int | None) -> list[str]:
    """The jobs-list groups told about a job of ``user_id`` in ``team_id``."""
    owners = [f"jobs-user-{user_id}"] if user_id is not None else []
    owners += [f"jobs-team-{team_id}"] if team_id is not None else []
    return [*owners, LIST_ALL]


def item_message(item: JobItem) -> dict[str, Any]:
    return {
        "position": item.position,
        "label": item.label or item.target,
        "target": item.target,
        "state": str(item.state),
        "result": item.result,
        "error": item.error,
    }


def job_message(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk,
        "verb": job.verb,
        "state": str(job.state),
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "cancel_requested": job.cancel_requested,
    }


log = logging.getLogger(__name__)
FLUSH_TIMEOUT = 5.0  # seconds a job's end waits for its progress to reach Redis


class Publisher:
    """Sends (group, message) pairs in order from a daemon thread running its own loop.

    Started on first use in each process (Celery's prefork children fork after import:
    a thread started in the parent would not exist in them)."""

    def __init__(self) -> None:
        self._pid = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], Any]] | None = None

    def _start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._queue = asyncio.Queue()
            ready.set()
            self._loop.run_until_complete(self._send_forever())

        threading.Thread(target=run, name="job-progress", daemon=True).start()
        ready.wait()

    async def _send_forever(self) -> None:
        assert self._queue is not None
        while True:
            name, message, done = await self._queue.get()
            try:
                layer = get_channel_layer()  # per message: tests swap layers between runs
                if layer is not None:
                    await layer.group_send(name, message)
            except (OSError, RedisError) as e:
                log.warning("job progress push skipped: channel layer unreachable (%s)", e)
            except Exception:  # noqa: BLE001 - one bad message must not end every later push
                log.exception("job progress push to %s failed", name)
            finally:
                if done is not None:
                    done.set_result(None)

    def send(self, name: str, message: dict[str, Any], wait: bool = False) -> None:
        """Queue ``message`` for ``name``; with ``wait``, return once it (and everything
        queued before it) was sent, or after FLUSH_TIMEOUT."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._start()
        assert self._loop is not None and self._queue is not None
        done: concurrent.futures.Future[None] | None = concurrent.futures.Future() if wait else None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (name, message, done))
        if done is not None:
            try:
                done.result(FLUSH_TIMEOUT)
            except concurrent.futures.TimeoutError:
                log.warning("job progress push still pending after %.0f s", FLUSH_TIMEOUT)


publisher = Publisher()


def item_finished(job_id: int, item: JobItem) -> None:
    """Push one item's outcome (worker side; queued, no database query, no waiting)."""
    publisher.send(group(job_id), {"type": "job.item", "item": item_message(item)})


def job_changed(
    job_id: int, state: str, user_id: int | None = None, team_id: int | None = None
) -> None:
    """Push the job's new state (running, or its final one: that one waits until sent,
    and so do the jobs-list messages queued before it)."""
    job = {"id": job_id, "state": str(state)}
    for name in list_groups(user_id, team_id):
        publisher.send(name, {"type": "jobs.changed", "job": job})
    publisher.send(group(job_id), {"type": "job.state", "job": job}, wait=str(state) != "running")


def _snapshot(user: Any, pk: int) -> dict[str, Any]:
    job = job_services.get(user, pk)
    return {
        "job": job_message(job),
        "items": [item_message(i) for i in job.items.order_by("position")],
    }


class JobProgressConsumer(RefusingConsumer):
    group_name = ""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(PermissionDenied("Sign in first: job progress needs a session."))
            return
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        try:
            await database_sync_to_async(job_services.get)(user, pk)  # refuses outsiders
            self.group_name = group(pk)
            await self.channel_layer.group_add(self.group_name, self.channel_name)
            snapshot = await database_sync_to_async(_snapshot)(user, pk)
        except (PermissionDenied, MoorageError) as e:
            await self.refuse(e)
            return
        await self.send(text_data=json.dumps(snapshot))

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def job_item(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"item": event["item"]}))

    async def job_state(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"job": event["job"]}))


def _list_groups_of(user: Any) -> list[str]:
    if permissions.is_site_admin(user):
        return [LIST_ALL]
    return [f"jobs-user-{user.pk}", *(f"jobs-team-{t}" for t in permissions.team_roles(user))]


class JobListConsumer(RefusingConsumer):
    """``ws/jobs/``: one ``{"job": {"id", "state"}}`` frame whenever a job the user may
    see starts or ends. Teams joined after connecting count from the next connection."""

    group_names: list[str] = []

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(PermissionDenied("Sign in first: the jobs list needs a session."))
            return
        self.group_names = await database_sync_to_async(_list_groups_of)(user)
        for name in self.group_names:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.send(text_data=json.dumps({"live": True}))

    async def disconnect(self, code: int) -> None:
        for name in self.group_names:
            await self.channel_layer.group_discard(name, self.channel_name)

    async def jobs_changed(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"job": event["job"]}))
