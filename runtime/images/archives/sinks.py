"""Where ``save`` writes: a tar stream (a file or stdout) or a new directory.

Kernel interfaces: write(2) on the output, rename(2) to publish ``-o FILE`` only once it
is complete, mkdir(2) for a layout directory. Tar entries are written by hand (headers
from ``tarfile``, data copied in 1 MiB chunks) because ``tarfile``'s own copy loop is
slow for layers of hundreds of megabytes. Every entry has mtime 0, uid/gid 0 and a
fixed mode, so saving the same images twice gives the same bytes. It never overwrites a
file that exists until the new one is complete, and never writes a symlink or a name
from anything but the image store's own digests.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from runtime.errors import KernelError

_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


class Sink(Protocol):
    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_file(self, name: str, path: Path) -> None: ...

    def has(self, name: str) -> bool: ...


class TarSink:
    """Writes a ustar/pax archive to ``out``; ``close`` writes the end-of-archive blocks."""

    def __init__(self, out: BinaryIO) -> None:
        self._out, self._written, self._names = out, 0, set[str]()

    def has(self, name: str) -> bool:
        return name in self._names

    def _header(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.type = size, 0o644, 0, kind
        if kind == tarfile.DIRTYPE:
            info.mode = 0o755
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))
        self._names.add(name)

    def _write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self._written += len(data)

    def _pad(self) -> None:
        if self._written % _BLOCK:
            self._write(bytes(_BLOCK - self._written % _BLOCK))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad()

    def add_file(self, name: str, path: Path) -> None:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._header(name, size)
            left = size
            buf = bytearray(_CHUNK)
            while left:
                got = f.readinto(memoryview(buf)[: min(_CHUNK, left)])
                if not got:
                    raise KernelError("save", 5, f"{path} shrank while it was being saved")
                self._write(memoryview(buf)[:got])
                left -= got
        self._pad()

    def close(self) -> None:
        self._write(bytes(2 * _BLOCK))
        if self._written % _RECORD:
            self._write(bytes(_RECORD - self._written % _RECORD))
        self._out.flush()


class DirSink:
    """Writes files under ``root``, an empty directory the caller made (and publishes)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        path = self._root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def has(self, name: str) -> bool:
        return (self._root / name).exists()

    def add_bytes(self, name: str, data: bytes) -> None:
        self._path(name).write_bytes(data)

    def add_file(self, name: str, path: Path) -> None:
        with open(path, "rb") as src, open(self._path(name), "wb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a temp file next to ``path``; rename it over ``path`` only on success."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    except OSError as e:
        raise KernelError.from_oserror(f"open {path}", e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
