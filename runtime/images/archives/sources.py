"""Reading image archives: a tar file (``docker save``, OCI archive) or an OCI layout directory.

Kernel interfaces: read(2)/lseek(2) on the archive file, realpath and open(2) with
O_NOFOLLOW inside a layout directory. Nothing is extracted: a tar archive is indexed in
memory (names only) and each file is streamed from its offset, so no name in a hostile
archive ever reaches the filesystem. Symlinks and hardlinks between archive members
(``docker save`` and skopeo link repeated layers) are followed inside the archive's own
namespace; a path or link that leaves the archive is refused. Owns nothing on disk.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast, runtime_checkable

from runtime.archive import NOT_A_TAR, GuardedInfo
from runtime.errors import InvalidSpec, KernelError

MAX_METADATA = 16 << 20  # manifest.json, index.json, configs, manifests: bytes, not layers
_MAX_HOPS = 16


class Source(Protocol):
    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def open(self, name: str) -> BinaryIO: ...


@runtime_checkable
class TarFiles(Source, Protocol):
    """A source whose layers arrive as uncompressed tar files, already checked (a pull).

    ``layer_tar(name)`` yields (path of the tar, its sha256) once the blob ``name`` is
    complete and matches its digest; the store may hard-link the file while it is open.
    """

    def layer_tar(self, name: str) -> AbstractContextManager[tuple[Path, str]]: ...


def clean(name: str, what: str = "archive path") -> str:
    """``name`` relative to the archive root, or InvalidSpec if it leaves the archive."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise InvalidSpec(f"the archive names an invalid {what}: {name!r}")
    if name.startswith("/"):
        raise InvalidSpec(f"the archive's {what} {name!r} is absolute; it must stay inside")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise InvalidSpec(f"the archive's {what} {name!r} points outside the archive")
    return norm


def read_small(source: Source, name: str, what: str) -> bytes:
    """A metadata file, refused before reading if it declares more than MAX_METADATA."""
    if not source.exists(name):
        raise InvalidSpec(f"the archive has no {what} ({name})")
    size = source.size(name)
    if size > MAX_METADATA:
        raise InvalidSpec(f"{name} declares {size} bytes, too large for a {what}")
    with source.open(name) as f:
        return f.read(MAX_METADATA + 1)[:MAX_METADATA]


class _Info(GuardedInfo):
    pass  # its own ended_by; refusals are InvalidSpec


class TarSource:
    """The members of a seekable, uncompressed tar file, looked up by normalised name."""

    def __init__(self, file: BinaryIO) -> None:
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            _Info.ended_by = None
            self._tar = tarfile.open(fileobj=file, mode="r:", tarinfo=_Info)
            for member in self._tar:
                name = posixpath.normpath(member.name.lstrip("/")) if member.name else ""
                if name and name != ".":
                    self._members[name] = member
            if not _Info.ended_cleanly():
                raise tarfile.ReadError(NOT_A_TAR)  # cut off, or garbage after the entries
        except (tarfile.TarError, EOFError) as e:
            raise InvalidSpec(NOT_A_TAR) from e
        except OSError as e:
            raise KernelError.from_oserror("read the archive", e) from e
        if not self._members:
            raise InvalidSpec(NOT_A_TAR)

    def _resolve(self, name: str) -> tarfile.TarInfo:
        path = clean(name)
        for _ in range(_MAX_HOPS):
            member = self._members.get(path)
            if member is None:
                raise InvalidSpec(f"the archive has no file {name!r}")
            if member.issym():
                base = posixpath.dirname(path)
                path = clean(posixpath.join(base, member.linkname), "symbolic link target")
            elif member.islnk():
                path = clean(member.linkname, "hard link target")
            elif member.isreg():
                return member
            else:
                raise InvalidSpec(f"{name!r} in the archive is not a regular file")
        raise InvalidSpec(f"{name!r} in the archive is a loop of links")

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name)
        except InvalidSpec:
            return False
        return True

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> BinaryIO:
        stream = self._tar.extractfile(self._resolve(name))
        assert stream is not None  # regular files always have a stream
        return cast(BinaryIO, _Guarded(stream))


class _Guarded:
    """A member stream whose truncation reads as InvalidSpec instead of tarfile's error."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except (tarfile.TarError, EOFError) as e:
            raise InvalidSpec(NOT_A_TAR) from e

    def __enter__(self) -> _Guarded:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


class DirSource:
    """Files of an OCI layout directory; a path resolving outside it is refused."""

    def __init__(self, root: Path) -> None:
        self._root = os.path.realpath(root)

    def _resolve(self, name: str) -> str:
        real = os.path.realpath(os.path.join(self._root, clean(name)))
        if os.path.commonpath([real, self._root]) != self._root:
            raise InvalidSpec(f"{name!r} in the layout resolves outside its directory")
        return real

    def exists(self, name: str) -> bool:
        try:
            return os.path.isfile(self._resolve(name))
        except InvalidSpec:
            return False

    def size(self, name: str) -> int:
        try:
            return os.stat(self._resolve(name)).st_size
        except FileNotFoundError:
            raise InvalidSpec(f"the layout has no file {name!r}") from None
        except OSError as e:
            raise KernelError.from_oserror(f"stat {name} in the layout", e) from e

    def open(self, name: str) -> BinaryIO:
        try:
            fd = os.open(self._resolve(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidSpec(f"the layout has no file {name!r}") from None
        except OSError as e:
            raise KernelError.from_oserror(f"open {name} in the layout", e) from e
        return os.fdopen(fd, "rb")
