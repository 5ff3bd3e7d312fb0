"""Live streams from the engine, for the websocket consumers: one small async interface.

- ``Terminal``: a pty in a container reached through its monitor's socket, either a new
  process (``Terminal.exec``: the monitor forks it, since daphne is multithreaded and
  must not enter namespaces) or the container's own TTY (``Terminal.attach``).
- ``follow_log``: the container's json-file log, its tail then what is appended, read
  by a non-blocking ``runtime.logs.Follower`` at the pace the consumer asks for more
  (that is the back-pressure: a slow browser slows the reading, never the container).
- ``sample_stats``: one stats sample from the cgroup, in a worker thread;
  ``sample_many``: one for each of several containers, in one thread trip.

Everything here awaits; nothing blocks the event loop. Consumers only see these calls,
so a relay through the channel layer could serve another host's containers later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from runtime import attach, containers, logs, paths, state
from runtime.errors import ExecFailed, InvalidState, MoorageError

# Shells a terminal tries, in order, when the user names no command (issue 6).
SHELLS: tuple[tuple[str, ...], ...] = (("bash",), ("sh",), ("busybox", "sh"))
FOLLOW_POLL = 0.05  # seconds between looks at a quiet log
BATCH_BYTES = 256 * 1024


class Terminal:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._frames = attach.FrameReader()
        self._pending: list[tuple[int, bytes]] = []

    @classmethod
    async def _connect(cls, cid: str, request: dict[str, Any]) -> Terminal:
        # A monitor whose container just stopped still listens until it exits: the
        # connection may then be reset or hung up, which the reply shows (exec) or next()
        # does (attach). Either way the container is not running.
        try:
            reader, writer = await asyncio.open_unix_connection(str(attach.socket_path(cid)))
        except (FileNotFoundError, ConnectionError) as e:
            raise attach.not_running(cid) from e
        terminal = cls(reader, writer)
        await terminal._write(attach.control(request))  # a reset shows in the reply
        return terminal

    @classmethod
    async def exec(
        cls,
        cid: str,
        argv: list[str] | None = None,
        user: str | None = None,
        rows: int = 24,
        cols: int = 80,
    ) -> tuple[Terminal, list[str]]:
        """A new process on a pty; without ``argv`` the first shell of SHELLS found."""
        last: ExecFailed | None = None
        for candidate in [argv] if argv else [list(s) for s in SHELLS]:
            terminal = await cls._connect(
                cid, {"op": "exec", "argv": candidate, "user": user, "rows": rows, "cols": cols}
            )
            answer = await terminal._control_reply()
            if answer.get("ok"):
                return terminal, candidate
            await terminal.close()
            if not answer or not await asyncio.to_thread(_running, cid):  # it stopped meanwhile
                raise attach.not_running(cid)
            last = ExecFailed(str(answer.get("error", "exec failed")), int(answer.get("exit", 126)))
            if argv or last.exit_code != 127:
                break
        assert last is not None
        raise last

    @classmethod
    async def attach(cls, cid: str, rows: int = 24, cols: int = 80) -> Terminal:
        record = containers.store.load(cid)
        terminal = await cls._connect(
            cid,
            {"op": "attach", "stdin": True, "stdout": True, "stderr": True, "stdin_once": False},
        )
        if record.spec.tty:
            await terminal.resize(rows, cols)
        return terminal

    async def _frame(self) -> tuple[int, bytes] | None:
        while not self._pending:
            try:
                data = await self._reader.read(65536)
            except ConnectionError:  # a monitor that exits with our bytes unread resets
                return None
            if not data:
                return None
            self._pending.extend(self._frames.feed(data))
        return self._pending.pop(0)

    async def _control_reply(self) -> dict[str, Any]:
        """The monitor's answer to the opening request; empty if it hung up instead."""
        frame = await self._frame()
        if frame is None or frame[0] != attach.CONTROL:
            return {}
        return dict(json.loads(frame[1]))

    async def next(self) -> bytes | int | None:
        """Output bytes, or the exit code (int) once the process ended, or None on hang-up."""
        while (frame := await self._frame()) is not None:
            kind, payload = frame
            if kind in (attach.STDOUT, attach.STDERR):
                return payload
            message = json.loads(payload)
            if "exit" in message:
                return int(message["exit"])
        return None

    async def send(self, data: bytes) -> None:
        await self._write(attach.frame(attach.STDIN, data))

    async def resize(self, rows: int, cols: int) -> None:
        await self._write(attach.control({"op": "resize", "rows": rows, "cols": cols}))

    async def _write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except ConnectionError:
            pass  # the monitor is gone: next() reports the hang-up, which ends the session

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


def _running(cid: str) -> bool:
    try:
        return containers.reconcile(cid).status in state.ACTIVE
    except (FileNotFoundError, InvalidState):
        return False


async def follow_log(
    cid: str, tail: int | None = 200, follow: bool = True
) -> AsyncIterator[list[logs.Entry]]:
    """Batches of log entries: the tail first, then new ones until the container stops.

    The consumer takes a batch, sends it, and only then asks for the next: reading
    stays as fast as the websocket drains.
    """
    path = paths.container(cid) / f"{cid}-json.log"
    follower = logs.Follower(path) if follow else None
    try:
        past = await asyncio.to_thread(logs.history, path, tail)
        for start in range(0, len(past), 1000):
            yield past[start : start + 1000]
        if follower is None:
            return
        checked = time.monotonic()
        while True:
            entries = follower.poll(BATCH_BYTES)
            if entries:
                yield entries
                continue
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if not await asyncio.to_thread(_running, cid):
                    if last := follower.poll(BATCH_BYTES):
                        yield last
                    return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        if follower:
            follower.close()


async def sample_stats(cid: str) -> Any:
    """A ``runtime.containers`` stats Sample; ``containers.cpu_percent`` compares two."""
    return await asyncio.to_thread(containers.sample, cid)


def _sample_each(cids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for cid in cids:
        try:
            found[cid] = containers.sample(cid)
        except (MoorageError, FileNotFoundError):
            found[cid] = None  # stopped or gone since the page listed it
    return found


async def sample_many(cids: list[str]) -> dict[str, Any]:
    """``sample_stats`` of several containers in one worker-thread trip: a Sample, or
    None for one that is not running (the containers list's live column)."""
    return await asyncio.to_thread(_sample_each, cids)
