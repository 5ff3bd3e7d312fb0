"""The live output of a build, pull or push job: ``ws/jobs/<pk>/output/``.

Reads the job's Redis stream (``services.image_output``) from its first entry, then
blocks for new ones, so a late or reloaded page gets everything. Only users who may see
the job get in (``job.view`` through ``services.jobs.get``: another team's job is a 404,
close code 4404); the Origin check and the session are the ASGI stack's.

Frames to the page (JSON text): ``{"output": text}`` (build output), ``{"progress":
{docker JSON message}}`` (per-layer pull/push progress), ``{"failed": {"message",
"step", "exit_code"}}``, ``{"done": {...}}``, and finally ``{"end": {"state", "error"}}``
once the job has finished and everything was sent; then the socket closes. The page
never sends anything.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from redis.exceptions import RedisError

from containers_app.consumers.base import RefusingConsumer
from containers_app.models import ItemState, Job
from containers_app.services import image_output
from containers_app.services import jobs as job_services
from runtime.errors import MoorageError

BATCH = 500
BLOCK_MS = 500


def _final(pk: int) -> dict[str, Any] | None:
    """The job's outcome once it has finished, else None."""
    job = Job.objects.filter(pk=pk).first()
    if job is None or not job.finished:
        return None
    failed = job.items.filter(state=ItemState.FAILED).values_list("error", flat=True).first()
    return {"state": str(job.state), "error": failed or ""}


def _frames(found: Any, last: str) -> tuple[str, list[str]]:
    """(the last entry id, a JSON text frame per entry) of an XREAD answer for one key."""
    frames = []
    for entry_id, fields in found[0][1] if found else []:
        last = entry_id
        frames.append(json.dumps({fields[b"kind"].decode(): json.loads(fields[b"value"])}))
    return last, frames


class ImageJobOutputConsumer(RefusingConsumer):
    pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(PermissionDenied("Sign in first: job output needs a session."))
            return
        try:
            job = await database_sync_to_async(job_services.get)(
                user, self.scope["url_route"]["kwargs"]["pk"]
            )
        except (PermissionDenied, MoorageError) as e:
            await self.refuse(e)
            return
        self.pump = asyncio.create_task(self._pump(job.pk))

    async def _pump(self, pk: int) -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, **settings.ASYNC_REDIS_OPTIONS)
        key, last = image_output.key(pk), "0"
        try:
            while True:
                last, frames = _frames(
                    await client.xread({key: last}, count=BATCH, block=BLOCK_MS), last
                )
                for frame in frames:
                    await self.send(text_data=frame)
                if len(frames) == BATCH:
                    continue  # a backlog: send it all before asking the database
                final = await database_sync_to_async(_final)(pk)
                if final is not None:  # what was written before the end, then the end
                    _, frames = _frames(await client.xread({key: last}), last)
                    for frame in frames:
                        await self.send(text_data=frame)
                    await self.send(text_data=json.dumps({"end": final}))
                    await self.close()
                    return
        except RedisError as e:  # the page keeps its polled progress; say why output stopped
            await self.send(text_data=json.dumps({"error": f"Live output is unavailable: {e}"}))
            await self.close(code=4503)
        finally:
            await client.aclose()

    async def disconnect(self, code: int) -> None:
        if self.pump:
            self.pump.cancel()
