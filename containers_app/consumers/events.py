"""Live container states for the pages: ``ws/events/``, fed by the mirror sync.

``publish`` (called by ``containers_app.mirror`` after it saved what changed, whatever
changed it: a job, the CLI, a crash) sends one message per changed container to the
channel-layer group ``containers``. ``EventsConsumer`` forwards to each page only the
containers its user may see (the user's teams plus global rows; everything for a site
admin), as JSON text frames ``{"container": {"id", "name", "state", "exit_code"}}``;
``state`` is ``"removed"`` once the container is gone. The page never sends anything.

The team filter is the consumer's, not the group's: one group keeps publishing cheap
(one send per change), and a membership change takes effect on the next connect.
Publishing never fails a sync: without a channel layer the pages just miss the push
and still see the change on their next reload or poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from containers_app import permissions

log = logging.getLogger(__name__)

GROUP = "containers"


def change(row: Any, removed: bool = False) -> dict[str, Any]:
    """The message for one mirror row (a ContainerMirror) that changed or went away."""
    return {
        "id": row.engine_id,
        "name": row.name,
        "state": "removed" if removed else row.state,
        "exit_code": row.exit_code,
        "team": row.team_id,
    }


def publish(changes: Iterable[dict[str, Any]]) -> None:
    """Send ``changes`` (from ``change``) to every connected page, best effort."""
    broadcast(GROUP, [{"type": "container.state", "change": item} for item in changes])


def broadcast(group: str, messages: list[dict[str, Any]]) -> None:
    """``group_send`` each message to ``group``, in order, from sync code; best effort."""
    layer = get_channel_layer()
    if not messages or layer is None:
        return

    async def send_all() -> None:
        for message in messages:
            await layer.group_send(group, message)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        send = async_to_sync(send_all)
    else:
        # Called from a thread that runs a loop (a sync caller inside async code, such as
        # a test driving a browser): async_to_sync refuses that, a side thread does not.
        def send() -> None:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(async_to_sync(send_all)).result()

    try:
        send()
    except (OSError, RedisError) as e:
        log.warning("live push to %s skipped: channel layer unreachable (%s)", group, e)


class EventsConsumer(AsyncWebsocketConsumer):
    everything = False
    teams: frozenset[int] = frozenset()

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            refusal = {"error": "Sign in first: live updates need a session."}
            await self.send(text_data=json.dumps(refusal))
            await self.close(code=4401)
            return
        self.everything = await database_sync_to_async(permissions.is_site_admin)(user)
        self.teams = frozenset(await database_sync_to_async(permissions.team_roles)(user))
        await self.channel_layer.group_add(GROUP, self.channel_name)
        self.joined = True

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def container_state(self, event: dict[str, Any]) -> None:
        item = dict(event["change"])
        team = item.pop("team", None)
        if self.everything or team is None or team in self.teams:
            await self.send(text_data=json.dumps({"container": item}))
