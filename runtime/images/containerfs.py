"""A container's filesystem as its processes see it, in a short-lived child process.

Kernel interfaces: setns(2) into a running container's mount namespace (its root then
is the container's root, volumes included); for a stopped container (or ``export``),
unshare(2) a private mount namespace, mount(2) its overlay there, chroot(2) into it.
Every mount dies with the child, so nothing is left on the host whatever happens.

The child is a fresh interpreter (fork+exec, safe from the multithreaded Celery worker)
that imports all it needs *before* it enters the container, and never asks NSS for a
user name afterwards (tarfile's pwd/grp are disabled: CVE-2019-14271 was ``docker cp``
loading the container's libnss). Inside, every path resolves against the container's
root, so no container symlink can lead to the host's files.

Operations (``request['op']``): ``stat`` a path; ``pack`` a path to a tar on stdout
(after one JSON header line); ``unpack`` a tar from stdin into a directory with
``runtime.archive``'s hostile-tar checks and size limits (chrooted into that
directory), or refuse it with the caller's ``refuse`` message once the directory is
known to exist. Owns nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from runtime import paths, rootfs, state
from runtime.containers import store as containers_store
from runtime.errors import InvalidSpec, KernelError, MoorageError, NotFound

_PROJECT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "import runtime.images.containerfs as c; c._child(sys.argv[2])"
)


@dataclass(frozen=True)
class View:
    name: str  # for messages: the name or id the user typed
    pid: int  # a running container's init: join its mount namespace; 0: mount
    lowers: tuple[str, ...]  # topmost first
    upper: str  # '' for a read-only view
    work: str
    merged: str
    binds: tuple[tuple[str, str], ...] = ()  # (host source, container target) over merged


def view(ref: str, *, writable: bool, live: bool = True) -> View:
    """How to see container ``ref``: its own namespace when running (and ``live``), else
    its overlay (read-write with ``writable``, else with the upper dir as a lower).

    A ``live`` view of a stopped container also gets its mounts (generated /etc files,
    volumes), as ``docker cp`` sees them; ``live=False`` (export) sees image + changes.
    """
    cid = containers_store.resolve(ref)
    record = containers_store.load(cid)
    directory = paths.container(cid)
    st = state.load(directory)
    lowers = (str(directory / "init"), *reversed(record.layer_dirs))
    if live and st.status in state.ACTIVE and st.pid and os.path.exists(f"/proc/{st.pid}"):
        return View(ref, st.pid, lowers, "", "", "")
    binds: tuple[tuple[str, str], ...] = ()
    if live:
        binds = tuple(
            (str(directory / n), f"/etc/{n}") for n in ("hostname", "hosts", "resolv.conf")
        )
        binds += tuple(
            (str(b["source"]), str(b["target"]))
            for b in record.extra.get("binds", [])
            if "source" in b
        )
    if writable:
        return View(
            ref,
            0,
            lowers,
            str(directory / "upper"),
            str(directory / "work"),
            str(directory / "merged"),
            binds,
        )
    return View(
        ref, 0, (str(directory / "upper"), *lowers), "", "", str(directory / "merged"), binds
    )


def spawn(
    v: View,
    request: dict[str, Any],
    stdin: int | IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    payload = json.dumps({"view": asdict(v), **request})
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _PROJECT, payload],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        raise KernelError.from_oserror("start the container filesystem process", e) from e


def read_answer(stream: IO[bytes]) -> dict[str, Any]:
    """The child's JSON line, raised as the error it reports."""
    line = stream.readline()
    try:
        answer = json.loads(line)
    except ValueError:
        raise KernelError("read container filesystem", 5, "the helper process died") from None
    if not answer.get("ok"):
        raise error_of(answer)
    return answer


def error_of(answer: dict[str, Any]) -> MoorageError:
    kind, message = answer.get("kind"), answer.get("message", "failed")
    if kind == "notfound":
        return NotFound(message)
    if kind == "invalid":
        return InvalidSpec(message)
    return KernelError(answer.get("op", "container filesystem"), answer.get("errno", 5), message)


def stat(v: View, path: str) -> dict[str, Any]:
    """``{'exists', 'dir', 'mode', 'size', 'mtime', 'link'}`` of a container path."""
    child = spawn(v, {"op": "stat", "path": path})
    out, err = child.communicate()
    answer = _last_json(out, err)
    if not answer.get("ok"):
        raise error_of(answer)
    return answer


def _last_json(out: bytes, err: bytes) -> dict[str, Any]:
    try:
        return dict(json.loads(out.splitlines()[-1]))
    except (ValueError, IndexError):
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no answer"]
        raise KernelError("container filesystem", 5, detail[0]) from None


# --- the child -----------------------------------------------------------------------


def _child(payload: str) -> None:
    import errno
    import stat as stat_module
    import tarfile

    from runtime import archive, syscalls
    from runtime.images import packing

    tarfile.pwd = None  # type: ignore[attr-defined]  # never NSS inside the container
    tarfile.grp = None  # type: ignore[attr-defined]
    request = json.loads(payload)
    out = sys.stdout.buffer

    def answer(**fields: Any) -> None:
        out.write(json.dumps(fields).encode() + b"\n")
        out.flush()

    try:
        _enter(View(**request["view"]), syscalls)
        op, path = request["op"], request.get("path", "/")
        name = os.path.normpath("/" + path)
        if op == "stat":
            try:
                st = os.lstat(name)
            except FileNotFoundError:
                answer(ok=True, exists=False)
                return
            followed = os.stat(name) if stat_module.S_ISLNK(st.st_mode) else st
            answer(
                ok=True,
                exists=True,
                dir=stat_module.S_ISDIR(followed.st_mode),
                mode=st.st_mode,
                size=st.st_size,
                mtime=st.st_mtime,
                link=os.readlink(name) if stat_module.S_ISLNK(st.st_mode) else "",
            )
        elif op == "pack":
            follow = request.get("follow", False)
            st = os.stat(name) if follow else os.lstat(name)
            is_dir = stat_module.S_ISDIR(st.st_mode)
            if path.endswith("/") and not is_dir:
                raise _Fail("invalid", f"{path}: not a directory")
            if request.get("want_file") and is_dir:
                raise _Fail("invalid", "cannot copy a directory to a file")
            if request.get("want_dir") and not is_dir:
                raise _Fail("invalid", "the destination directory must exist to copy a file")
            answer(ok=True, dir=is_dir, mode=st.st_mode, size=st.st_size)
            owner = request.get("owner")
            kernel_fs = frozenset(_kernel_devices()) if request["view"]["pid"] else frozenset()
            opts = packing.Options(owner=tuple(owner) if owner else None, skip_devices=kernel_fs)
            with packing.open_writer(out) as tf:
                packing.pack_entry(tf, name, request["arcname"], opts, follow=follow)
        elif op == "unpack":
            st = os.stat(name)
            if not stat_module.S_ISDIR(st.st_mode):
                raise _Fail("invalid", f"{path}: not a directory")
            if request.get("refuse"):  # read-only, known to the caller: after lstat, as moby
                raise _Fail("invalid", request["refuse"])
            os.chroot(name)
            os.chdir("/")
            os.umask(0)
            # archive's own unpacker: the hostile-tar checks of import and load.
            unpacker = archive._Unpacker(
                whiteouts="keep",
                allow_devices=request.get("allow_devices", False),
                allow_setuid=request.get("allow_setuid", False),
                max_bytes=request.get("max_bytes"),
                max_entries=request.get("max_entries"),
            )
            try:
                written = unpacker.run(sys.stdin.buffer)
            except archive._Refused as e:
                raise _Fail("invalid", str(e)) from e
            except (tarfile.TarError, EOFError):
                raise _Fail("invalid", archive.NOT_A_TAR) from None
            answer(ok=True, bytes=written)
        else:
            raise _Fail("invalid", f"unknown operation {op!r}")
    except _Fail as e:
        answer(ok=False, kind=e.kind, message=e.message)
    except FileNotFoundError as e:
        answer(
            ok=False,
            kind="notfound",
            message=f"Could not find the file "
            f"{request.get('path')} in container {request['view']['name']}",
            detail=str(e),
        )
    except OSError as e:
        answer(
            ok=False,
            kind="kernel",
            op=f"{request.get('op')} {request.get('path')}",
            errno=e.errno or errno.EIO,
            message=e.strerror or str(e),
        )
    except MoorageError as e:
        answer(ok=False, kind="kernel", message=str(e), errno=getattr(e, "errno", 5))


class _Fail(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def _kernel_devices() -> set[int]:
    """st_dev of a running container's /proc, /sys and /dev: not its files, never copied."""
    root = os.stat("/").st_dev
    found = set()
    for path in ("/proc", "/sys", "/dev"):
        try:
            dev = os.lstat(path).st_dev
        except OSError:
            continue
        if dev != root:
            found.add(dev)
    return found


def _enter(v: View, syscalls: Any) -> None:
    if v.pid:
        fd = os.open(f"/proc/{v.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNS)  # root and cwd become the container's
        finally:
            os.close(fd)
        os.chdir("/")
        return
    syscalls.unshare(syscalls.CLONE_NEWNS)
    # Private first: the overlay must never propagate back to the host's namespace.
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    data = f"lowerdir={':'.join(v.lowers)}"
    flags = 0
    if v.upper:
        data += f",upperdir={v.upper},workdir={v.work}"
    else:
        flags = syscalls.MS_RDONLY
    syscalls.mount("overlay", v.merged, "overlay", flags, data)
    # Parents first; targets resolved inside the rootfs, never created (no side effects).
    for source, target in sorted(v.binds, key=lambda b: b[1].count("/")):
        inside = rootfs._inside(v.merged, target)
        if (
            os.path.islink(inside)
            or not os.path.exists(inside)
            or os.path.isdir(inside) != os.path.isdir(source)
        ):
            continue
        syscalls.mount(source, inside, None, syscalls.MS_BIND | syscalls.MS_REC)
    os.chroot(v.merged)
    os.chdir("/")
