"""The browser terminal: ``ws/containers/<ref>/terminal/?mode=exec|attach&cmd=&user=``.

Binary frames are raw terminal bytes both ways (xterm.js on the page). Text frames are
JSON: from the page ``{"resize": [rows, cols]}``; to the page ``{"ready": {"mode",
"command"}}`` once the session is up, ``{"exit": code}`` when the process ends (exec) or
the container stops (attach), and ``{"error": sentence}`` before a refusal. In attach
mode ctrl-p ctrl-q detaches, leaving the container running, as with ``docker attach``.
Opening and closing a session are audited.
"""

from __future__ import annotations

import asyncio
import json
import shlex

from channels.db import database_sync_to_async

from containers_app import permissions
from containers_app.consumers.base import ContainerStreamConsumer
from containers_app.streams import Terminal
from runtime.errors import InvalidSpec
from runtime.tty import DetachDetector

MAX_ROWS_COLS = 1000


class TerminalConsumer(ContainerStreamConsumer):
    terminal: Terminal | None = None
    pump: asyncio.Task[None] | None = None
    detector: DetachDetector | None = None

    async def open(self) -> None:
        mode = self.query.get("mode", "exec")
        if mode not in ("exec", "attach"):
            raise InvalidSpec(f"unknown terminal mode {mode!r}: use exec or attach")
        self.verb = mode
        # The container was fetched with the view permission; the mode needs its own.
        await database_sync_to_async(permissions.check)(self.scope["user"], mode, self.container)
        rows, cols = _size(self.query.get("rows"), 24), _size(self.query.get("cols"), 80)
        cid = self.container.engine_id
        if mode == "exec":
            argv = shlex.split(self.query["cmd"]) if self.query.get("cmd") else None
            self.terminal, command = await Terminal.exec(
                cid, argv, self.query.get("user") or None, rows, cols
            )
        else:
            self.terminal, command = await Terminal.attach(cid, rows, cols), []
            self.detector = DetachDetector()
        await self.audit(f"terminal.{mode}", detail=shlex.join(command))
        await self.send(text_data=json.dumps({"ready": {"mode": mode, "command": command}}))
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.terminal is not None
        while True:
            item = await self.terminal.next()
            if isinstance(item, bytes):
                await self.send(bytes_data=item)
                continue
            await self.send(text_data=json.dumps({"exit": item}))  # None: monitor gone
            await self.close()
            return

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.terminal is None:
            return
        if bytes_data is not None:
            if self.detector:
                bytes_data, detach = self.detector.feed(bytes_data)
                if detach:
                    await self.send(text_data=json.dumps({"detached": True}))
                    await self.close()
                    return
            if bytes_data:
                await self.terminal.send(bytes_data)
        elif text_data:
            try:
                message = json.loads(text_data)
                rows, cols = message["resize"]
            except (ValueError, KeyError, TypeError):
                return  # a page bug must not end the session
            await self.terminal.resize(_size(rows, 24), _size(cols, 80))

    async def disconnect(self, code: int) -> None:
        if self.pump:
            self.pump.cancel()
        if self.terminal:
            await self.terminal.close()
            await self.audit("terminal.close")
            self.terminal = None


def _size(value: object, default: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        return default
    return number if 0 < number <= MAX_ROWS_COLS else default
