"""Container logs in Docker's json-file format.

One JSON object per line, ``{"log": "...\\n", "stream": "stdout", "time": "...Z"}``,
in ``<id>-json.log`` inside the container directory, rotated to ``.1``, ``.2`` ... when
``max-size`` is set (``max-file`` files kept). The monitor writes; ``read`` serves
``moorage logs`` (tail, since, until, follow) and, later, the dashboard's log stream.
Owns only those files; never reads the container's pipes itself.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path

from runtime.errors import InvalidSpec

PARTIAL_LIMIT = 16 * 1024  # like Docker, a line longer than this is split into entries


def timestamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    seconds = int(now)
    nanos = int(round((now - seconds) * 1e9))
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_timestamp(text: str) -> float:
    """RFC3339 with optional fraction → epoch seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return seconds + (float("0." + frac) if frac else 0.0)


def parse_size(text: str) -> int:
    units = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
    body = text.strip().lower()
    unit = body[-1] if body and body[-1] in "kmg" else ""
    number = body[:-1] if unit else body
    if not number.isdigit() or int(number) <= 0:
        raise InvalidSpec(f"invalid max-size for json-file log driver: {text}")
    return int(number) * units[unit]


class JsonFileWriter:
    """Appends entries; rotates by size. Not thread-safe: the monitor is one thread."""

    def __init__(self, path: Path, max_size: int = 0, max_files: int = 1) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._file = open(path, "ab", buffering=0)
        self._size = self._file.tell()
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        """Take raw output; emit one entry per complete line, buffering the rest.

        A chunk (up to 64 KiB from a pipe) is split once and written with one call, its
        entries sharing one timestamp: slicing line by line, a write per entry and a
        clock read per entry held a chatty container to ~2 MB/s.
        """
        pending = self._partial.pop(stream, b"") + data
        *lines, rest = pending.split(b"\n")
        entries: list[bytes] = []
        for line in lines:
            entries.extend(_pieces(line + b"\n"))
        if len(rest) >= PARTIAL_LIMIT:
            *whole, rest = _pieces(rest)
            if len(rest) == PARTIAL_LIMIT:
                whole, rest = [*whole, rest], b""
            entries.extend(whole)
        if rest:
            self._partial[stream] = rest
        self._emit(stream, entries)

    def flush_partial(self) -> None:
        for stream, pending in list(self._partial.items()):
            self._emit(stream, [pending])
        self._partial.clear()

    def _emit(self, stream: str, entries: list[bytes]) -> None:
        if not entries:
            return
        tail = f',"stream":"{stream}","time":"{timestamp()}"}}\n'.encode()
        records = [
            b'{"log":' + encode_basestring(e.decode("utf-8", "replace")).encode() + tail
            for e in entries
        ]
        if self.max_size:
            for record in records:
                if self._size + len(record) > self.max_size and self._size:
                    self._rotate()
                self._file.write(record)
                self._size += len(record)
            return
        block = b"".join(records)
        self._file.write(block)
        self._size += len(block)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_files <= 1:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.max_files - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                newer = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
                if newer.exists():
                    os.replace(newer, older)
        self._file = open(self.path, "ab", buffering=0)
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        self._file.close()


def _pieces(line: bytes) -> list[bytes]:
    """Docker's partial messages: a line longer than PARTIAL_LIMIT becomes several."""
    if len(line) <= PARTIAL_LIMIT:
        return [line]
    return [line[at : at + PARTIAL_LIMIT] for at in range(0, len(line), PARTIAL_LIMIT)]


@dataclass(frozen=True)
class Entry:
    stream: str
    time: str
    data: bytes


def _files(path: Path) -> list[Path]:
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return rotated + ([path] if path.exists() else [])


def _decode(line: bytes) -> Entry | None:
    try:
        record = json.loads(line)
        return Entry(record["stream"], record["time"], record["log"].encode())
    except (ValueError, KeyError):
        return None  # a torn last line while the writer is mid-write


def _tail_lines(paths: list[Path], count: int) -> list[bytes]:
    """The last ``count`` lines across ``paths``, reading backwards in blocks."""
    found: list[bytes] = []
    for path in reversed(paths):
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            position = f.tell()
            rest = b""
            while position > 0 and len(found) < count:
                step = min(65536, position)
                position -= step
                f.seek(position)
                block = f.read(step) + rest
                lines = block.split(b"\n")
                rest = lines.pop(0)
                for line in reversed(lines):
                    if line:
                        found.append(line)
                        if len(found) >= count:
                            break
            if rest and len(found) < count:
                found.append(rest)
        if len(found) >= count:
            break
    return list(reversed(found[:count]))


def read(
    path: Path,
    tail: int | None = None,
    since: float | None = None,
    until: float | None = None,
    follow: bool = False,
    running: Callable[[], bool] = lambda: False,
    poll: float = 0.05,
) -> Iterator[Entry]:
    """Entries oldest first; with ``follow`` keep going until ``running()`` is false."""

    def wanted(entry: Entry) -> bool:
        if since is None and until is None:
            return True
        moment = parse_timestamp(entry.time)
        return (since is None or moment >= since) and (until is None or moment <= until)

    follower = Follower(path) if follow else None  # from here on, before the tail is read
    try:
        yield from (entry for entry in history(path, tail) if wanted(entry))
        if follower is None:
            return
        while True:
            entries = follower.poll()
            if entries:
                yield from (entry for entry in entries if wanted(entry))
            elif not running():
                yield from (entry for entry in follower.poll() if wanted(entry))
                return
            else:
                time.sleep(poll)
    finally:
        if follower:
            follower.close()


def history(path: Path, tail: int | None = None) -> list[Entry]:
    """What the log holds now, oldest first: all of it, or the last ``tail`` entries."""
    paths = _files(path)
    if tail is not None and tail >= 0:
        lines = _tail_lines(paths, tail) if tail else []
    else:
        lines = [line for p in paths for line in p.read_bytes().splitlines() if line]
    return [entry for line in lines if (entry := _decode(line))]


class Follower:
    """What is appended to a log from now on, across rotations. ``poll`` never blocks,
    so a follower serves both ``logs -f`` (with a sleep) and the dashboard's event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "rb") if path.exists() else None
        if self._handle:
            self._handle.seek(0, os.SEEK_END)
        self._buffer = b""

    def poll(self, limit: int = 1 << 20) -> list[Entry]:
        """Complete entries appended since the last call, reading at most ``limit`` bytes."""
        entries: list[Entry] = []
        while limit > 0:
            if self._handle is None:
                if not self.path.exists():
                    break
                self._handle = open(self.path, "rb")
            chunk = self._handle.read(limit)
            if chunk:
                limit -= len(chunk)
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                entries.extend(entry for line in complete if (entry := _decode(line)))
                continue
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(self._handle.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if not rotated:
                break
            self._handle.close()  # rotated: go on with the new file from its start
            self._handle = open(self.path, "rb")
        return entries

    def close(self) -> None:
        if self._handle:
            self._handle.close()
            self._handle = None
