"""Live logs: ``ws/containers/<ref>/logs/?tail=N`` (tail "all" for the whole log).

Sends JSON text frames ``{"lines": [[stream, time, text], ...]}``, the tail first and
then new lines as the container writes them, and ``{"end": true}`` once it has stopped
and everything is sent. The page may send ``{"pause": true}`` / ``{"pause": false}``:
while paused nothing more is read from the log, so the page never drowns. Batches are
read only as fast as they are sent (see ``streams.follow_log``).
"""

from __future__ import annotations

import asyncio
import json

from containers_app.consumers.base import ContainerStreamConsumer
from containers_app.streams import follow_log


class LogsConsumer(ContainerStreamConsumer):
    verb = "logs"
    pump: asyncio.Task[None] | None = None

    async def open(self) -> None:
        tail_text = self.query.get("tail", "200")
        tail = None if tail_text == "all" else int(tail_text) if tail_text.isdigit() else 200
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.pump = asyncio.create_task(self._pump(tail))

    async def _pump(self, tail: int | None) -> None:
        async for entries in follow_log(self.container.engine_id, tail):
            await self.resumed.wait()
            lines = [[e.stream, e.time, e.data.decode("utf-8", errors="replace")] for e in entries]
            await self.send(text_data=json.dumps({"lines": lines}))
            # A send returns without suspending and the log is a file, always readable:
            # without this yield a chatty log would starve the event loop (other sockets,
            # the channel layer's Redis reads) of every turn.
            await asyncio.sleep(0)
        await self.send(text_data=json.dumps({"end": True}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            paused = bool(json.loads(text_data or "")["pause"])
        except (ValueError, KeyError, TypeError):
            return
        if paused:
            self.resumed.clear()
        else:
            self.resumed.set()

    async def disconnect(self, code: int) -> None:
        if self.pump:
            self.pump.cancel()
