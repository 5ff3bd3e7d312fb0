"""The containers list's live column: ``ws/stats/``, CPU % and memory of the rows shown.

One connection per list page and one sampler for all its rows: each tick samples every
watched container in one worker-thread trip (``streams.sample_many``, the same
``runtime.containers.sample`` and Docker CPU formula as the detail page's charts,
``stats.figures``) and sends one frame.

From the page: ``{"watch": [engine ids]}`` (the running containers of the page it
shows, sent again whenever its rows change) and ``{"ack": seq}`` once it has drawn frame
``seq``. To the page: ``{"seq": n, "stats": {id: {"cpu_percent", "memory",
"memory_limit"} | null}}``; ``cpu_percent`` is null on a container's first sample (the
formula needs two), and a container that is not running is null.

Cheap by construction: ids the user may not read stats of are dropped (one query per
watch message); at most MAX_WATCH are sampled; the next sample waits both for INTERVAL
and for the page's ack of the last frame, so a stalled or hidden tab (the page withholds
its ack while hidden) stops the sampling: that is the back-pressure. The sampler task
ends with the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied

from containers_app import permissions
from containers_app.consumers.base import RefusingConsumer
from containers_app.consumers.stats import INTERVAL, figures
from containers_app.models import ContainerMirror
from containers_app.streams import sample_many

MAX_WATCH = 100  # above the list's page size: a page never needs more


def _allowed(user: Any, ids: list[str]) -> list[str]:
    """``ids`` narrowed to containers ``user`` may read the stats of, in order."""
    if not ids:
        return []
    roles = permissions.team_roles(user)
    rows = permissions.visible(user, ContainerMirror.objects.filter(engine_id__in=ids))
    ok = {r.engine_id for r in rows if permissions.can(user, "stats", r, roles=roles)}
    return [i for i in ids if i in ok]


class StatsColumnConsumer(RefusingConsumer):
    pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(PermissionDenied("Sign in first: live stats need a session."))
            return
        self.watched: list[str] = []
        self.before: dict[str, Any] = {}
        self.seq = 0
        self.acked = asyncio.Event()
        self.acked.set()
        self.rewatched = asyncio.Event()
        self.pump = asyncio.create_task(self._pump())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.pump is None:
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return  # a page bug must not end the column
        if not isinstance(message, dict):
            return
        watch = message.get("watch")
        if isinstance(watch, list):
            ids = list(dict.fromkeys(i for i in watch if isinstance(i, str)))[:MAX_WATCH]
            self.watched = await database_sync_to_async(_allowed)(self.scope["user"], ids)
            self.before = {c: s for c, s in self.before.items() if c in self.watched}
            self.rewatched.set()
        if message.get("ack") == self.seq:
            self.acked.set()

    async def _pump(self) -> None:
        while True:
            await self.acked.wait()
            if not self.watched:
                self.rewatched.clear()
                await self.rewatched.wait()
                continue
            stats: dict[str, Any] = {}
            for cid, after in (await sample_many(list(self.watched))).items():
                before = self.before.pop(cid, None)
                if after is None:
                    stats[cid] = None
                    continue
                self.before[cid] = after
                shown = figures(before or after, after)
                stats[cid] = {
                    "cpu_percent": shown["cpu_percent"] if before else None,
                    "memory": shown["memory"],
                    "memory_limit": shown["memory_limit"],
                }
            self.seq += 1
            self.acked.clear()
            await self.send(text_data=json.dumps({"seq": self.seq, "stats": stats}))
            # The next tick after INTERVAL, or at once when the page's rows changed.
            self.rewatched.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rewatched.wait(), INTERVAL)

    async def disconnect(self, code: int) -> None:
        if self.pump:
            self.pump.cancel()
