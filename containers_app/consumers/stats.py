"""Live stats: ``ws/containers/<ref>/stats/``, one JSON sample a second.

``{"cpu_percent", "memory", "memory_limit", "net_rx", "net_tx", "block_read",
"block_write", "pids"}`` with CPU by Docker's formula between two samples, and
``{"end": true}`` when the container is no longer running.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from containers_app.consumers.base import ContainerStreamConsumer
from containers_app.streams import sample_stats
from runtime import containers
from runtime.errors import MoorageError

INTERVAL = 1.0


class StatsConsumer(ContainerStreamConsumer):
    verb = "stats"
    pump: asyncio.Task[None] | None = None

    async def open(self) -> None:
        first = await sample_stats(self.container.engine_id)  # refuses a stopped one
        self.pump = asyncio.create_task(self._pump(first))

    async def _pump(self, before: object) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                after = await sample_stats(self.container.engine_id)
            except MoorageError:
                await self.send(text_data=json.dumps({"end": True}))
                return
            await self.send(text_data=json.dumps(figures(before, after)))
            before = after

    async def disconnect(self, code: int) -> None:
        if self.pump:
            self.pump.cancel()


def figures(before: Any, after: Any) -> dict[str, Any]:
    """One sample's message: CPU by Docker's formula between two ``containers.sample``s."""
    return {
        "cpu_percent": round(containers.cpu_percent(before, after), 2),
        "memory": after.memory_usage,
        "memory_limit": after.memory_limit,
        "net_rx": after.net_rx,
        "net_tx": after.net_tx,
        "block_read": after.block_read,
        "block_write": after.block_write,
        "pids": after.pids,
    }
