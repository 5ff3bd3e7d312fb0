"""``docker cp`` (both directions) and ``docker export``.

Kernel interfaces: those of ``containerfs`` (setns into a running container's mount
namespace, or a private overlay mount for a stopped one), and ``runtime.archive``'s
chrooted unpacking on the host side of ``cp`` out.

Archive semantics follow ``docker cp``: a file onto an existing file replaces it, into
an existing directory goes under its own name, to a missing path takes that name; a
directory to a missing path becomes that path, into an existing directory goes under
its own name, and ``SRC/.`` copies a directory's content; ``-`` is a tar stream on
stdin or stdout. Without ``archive`` the copies belong to root inside the container and
to the caller on the host, as with Docker. Container paths are resolved inside the
container only; a tar for ``cp`` in gets the hostile-archive checks and size limits of
``import``. Setuid and setgid bits (and file capabilities) cross only with ``archive``
(``-a``) and, into a container, only from a ``trusted`` caller (the CLI, an admin); any
other copy strips them, as ``runtime.archive`` describes.

``copy_out``/``copy_in`` return the bytes of the tar stream that crossed, which the
CLI reports as docker does (``Successfully copied 12.3kB to ...``). Like Docker's
daemon, ``copy_in`` refuses a destination on a read-only rootfs (unless a writable
mount is there) or in a read-only volume or bind mount.

Owns nothing on disk. ``export`` writes the merged image layers and upper dir, never
volumes or bind mounts.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from runtime import archive, containers
from runtime.containers import store as containers_store
from runtime.errors import InvalidSpec, KernelError, MoorageError, NotFound
from runtime.images import containerfs, packing
from runtime.spec import ContainerSpec

_CHUNK = 1 << 16


def _base(path: str) -> str:
    return posixpath.basename(posixpath.normpath("/" + path)) or "/"


def _contents_only(path: str) -> bool:
    return path.endswith("/.") or path == "."


@contextlib.contextmanager
def _locked_if_stopped(v: containerfs.View, cid: str) -> Iterator[None]:
    """A stopped container's overlay is mounted read-write here: keep ``start`` out."""
    if v.pid:
        yield
    else:
        with containers.operation(cid):
            yield


class _Counted:
    """A stream wrapper that counts the bytes read from or written to it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data

    def write(self, data: bytes) -> int:
        written = self.stream.write(data)
        self.count += len(data) if written is None else written
        return len(data) if written is None else written

    def flush(self) -> None:
        self.stream.flush()


def _finish(child: subprocess.Popen[bytes], what: str) -> None:
    _, err = child.communicate()
    if child.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or [what]
        raise KernelError(what, 5, detail[0])


# --- out of the container ------------------------------------------------------------


def copy_out(
    ref: str, src: str, dest: str | BinaryIO, *, follow: bool = False, archive_mode: bool = False
) -> int:
    """Copy ``src`` (a container path) to the host path ``dest``, or as a tar to a stream;
    return the bytes of the tar stream."""
    v = containerfs.view(ref, writable=False)
    owner = None if archive_mode else [os.getuid(), os.getgid()]
    request = {"op": "pack", "path": src, "follow": follow, "owner": owner}
    if not isinstance(dest, str):
        request["arcname"] = "" if _contents_only(src) else _base(src)
        return _pack_to(v, request, dest)
    target = Path(dest)
    try:
        st: os.stat_result | None = target.stat()
    except FileNotFoundError:
        st = None
    if st is not None and os.path.isdir(target):
        request["arcname"] = "" if _contents_only(src) else _base(src)
        into = target
    elif st is not None:
        request.update(arcname=target.name, want_file=True)
        into = target.parent
    else:
        if not target.parent.is_dir():
            raise NotFound(f"destination directory {target.parent} does not exist")
        request.update(arcname=target.name, want_dir=dest.endswith("/"))
        into = target.parent
    return _extract_on_host(v, request, into, archive_mode)


def _pack_to(v: containerfs.View, request: dict[str, object], out: BinaryIO) -> int:
    child = containerfs.spawn(v, request)
    assert child.stdout is not None
    counted = _Counted(out)
    try:
        containerfs.read_answer(child.stdout)
        shutil.copyfileobj(child.stdout, counted, _CHUNK)
    except BaseException:
        child.kill()
        child.wait()
        raise
    _finish(child, f"copy {request['path']} from container {v.name}")
    return counted.count


def _extract_on_host(
    v: containerfs.View, request: dict[str, object], into: Path, archive_mode: bool
) -> int:
    child = containerfs.spawn(v, request)
    assert child.stdout is not None
    counted = _Counted(child.stdout)
    try:
        containerfs.read_answer(child.stdout)
        # The container's tar is as hostile as any: chrooted unpacking into ``into``.
        archive.extract(
            counted, into, whiteouts="keep", allow_devices=False, allow_setuid=archive_mode
        )
    except BaseException:
        child.kill()
        child.wait()
        raise
    _finish(child, f"copy {request['path']} from container {v.name}")
    return counted.count


# --- into the container ----------------------------------------------------------------


def copy_in(
    ref: str,
    src: str | BinaryIO,
    dest: str,
    *,
    follow: bool = False,
    archive_mode: bool = False,
    trusted: bool = False,
) -> int:
    """Copy the host path ``src`` (or a tar stream) to ``dest`` in the container; return
    the bytes of the tar stream sent in. Setuid/setgid bits cross only with
    ``archive_mode`` from a ``trusted`` caller (the CLI, an admin)."""
    cid = containers_store.resolve(ref)
    record = containers_store.load(cid)
    v = containerfs.view(ref, writable=True)
    keep_setuid = archive_mode and trusted
    with _locked_if_stopped(v, cid):
        info = containerfs.stat(v, dest)
        if isinstance(src, str):
            return _copy_host_path(v, record, src, dest, info, follow, archive_mode, keep_setuid)
        if not info.get("exists"):
            raise NotFound(f"Could not find the file {dest} in container {ref}")
        if not info.get("dir"):
            raise InvalidSpec(f"destination {dest} must be a directory to extract a tar into")
        sent = 0

        def relay(pipe: IO[bytes]) -> None:
            nonlocal sent
            counted = _Counted(pipe)
            shutil.copyfileobj(src, counted, _CHUNK)
            sent = counted.count

        _unpack_into(v, record, dest, relay, keep_setuid)
        return sent


def _refusal(record: containers_store.Record, into: str) -> str | None:
    return read_only_reason(record.spec, record.extra.get("mounts", []), into)


def read_only_reason(spec: ContainerSpec, mounts: list[dict[str, object]], into: str) -> str | None:
    """Why moby's ``extractToDir`` would refuse to unpack into ``into``, or None: the
    mount ``into`` lies in must be read-write; on no mount, the rootfs must not be
    ``--read-only``. The unpacking child applies it after checking ``into`` exists.

    ``mounts`` is ``inspect``'s ``Mounts`` (volumes, binds, ``--mount type=tmpfs``), what
    moby's ``MountPoints`` hold; a ``--tmpfs`` is not among them, so, as with Docker, it
    does not make a read-only rootfs writable to ``cp``. The innermost mount decides.
    """
    path = posixpath.normpath("/" + into.lstrip("/"))  # '//x' would stay '//x'
    best: dict[str, object] | None = None
    for mount in mounts:
        target = posixpath.normpath("/" + str(mount.get("Destination", "")).lstrip("/"))
        inside = path == target or path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(str(best["Destination"]))):
            best = dict(mount, Destination=target)
    if best is not None:
        return None if best.get("RW", True) else "mounted volume is marked read-only"
    return "container rootfs is marked read-only" if spec.read_only else None


def _copy_host_path(
    v: containerfs.View,
    record: containers_store.Record,
    src: str,
    dest: str,
    info: dict[str, object],
    follow: bool,
    archive_mode: bool,
    keep_setuid: bool,
) -> int:
    try:
        os.stat(src) if follow else os.lstat(src)
    except FileNotFoundError:
        raise NotFound(f"no such file or directory: {src}") from None
    is_dir = os.path.isdir(src) if follow else os.path.isdir(src) and not os.path.islink(src)
    contents = _contents_only(src) and is_dir
    parent = posixpath.dirname(posixpath.normpath("/" + dest.lstrip("/"))) or "/"
    if info.get("exists") and info.get("dir"):
        into, arcname = dest, "" if contents else _base(src)
    elif info.get("exists"):
        if is_dir:
            raise InvalidSpec("cannot copy a directory to a file")
        into, arcname = parent, _base(dest)
    else:
        if dest.endswith("/") and not is_dir:
            raise NotFound(f"no such directory: {dest} in container {v.name}")
        into, arcname = parent, _base(dest)
    owner = None if archive_mode else (0, 0)
    sent = 0

    def produce(pipe: IO[bytes]) -> None:
        nonlocal sent
        counted = _Counted(pipe)
        with packing.open_writer(counted) as tf:  # type: ignore[arg-type]
            packing.pack_entry(tf, src, arcname, packing.Options(owner=owner), follow=follow)
        sent = counted.count

    _unpack_into(v, record, into, produce, keep_setuid)
    return sent


def _unpack_into(
    v: containerfs.View,
    record: containers_store.Record,
    into: str,
    produce: Callable[[IO[bytes]], None],
    keep_setuid: bool,
) -> None:
    child = containerfs.spawn(
        v,
        {
            "op": "unpack",
            "path": into,
            "allow_setuid": keep_setuid,
            "refuse": _refusal(record, into),
            "max_bytes": archive.byte_limit(record.directory),
            "max_entries": archive.entry_limit(),
        },
        stdin=subprocess.PIPE,
    )
    failure: list[BaseException] = []
    stdin = child.stdin

    def feed() -> None:
        try:
            produce(stdin)  # type: ignore[arg-type]
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child refused the archive; its answer says why
        except BaseException as e:  # noqa: BLE001 - reported by the caller below
            failure.append(e)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()  # type: ignore[union-attr]

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    assert child.stdout is not None
    try:
        containerfs.read_answer(child.stdout)
    finally:
        writer.join()
        child.wait()
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    if failure:
        error = failure[0]
        if isinstance(error, MoorageError):
            raise error
        if isinstance(error, OSError):
            raise KernelError.from_oserror("read the source to copy", error) from error
        raise error


# --- export --------------------------------------------------------------------------


def export(ref: str, out: BinaryIO) -> None:
    """``docker export``: the container's filesystem as one flat tar (no volumes)."""
    v = containerfs.view(ref, writable=False, live=False)
    _pack_to(v, {"op": "pack", "path": "/", "arcname": "", "owner": None}, out)
