"""Unpacking untrusted tar streams and packing directories, the way image layers need.

Kernel interfaces: chroot(2) in a child process, mknod(2) for overlay whiteouts (char
device 0/0), setxattr(2) for ``trusted.overlay.opaque``, lchown/utimensat for metadata.

``extract`` treats every archive as hostile. The entries are written by a fresh child
interpreter (fork+exec, like Docker's ``docker-untar`` re-exec: safe to call from the
multithreaded Celery worker) that has done ``chroot(dest)`` and ``chdir('/')`` before it
reads a single header, so no name, ``..``, symlink or hardlink can reach outside ``dest``
whatever the checks below miss. The checks still refuse, with an InvalidSpec naming the
entry: absolute names, ``..`` components, paths through a symlink, hardlinks to absolute
or missing targets, device nodes unless allowed, and content over ``max_bytes``.
setuid/setgid bits (and ``security.capability``) are stripped, not refused, unless
allowed. The parent decompresses (gzip, bzip2, xz by magic) and streams the tar bytes to
the child over a pipe; the child answers with one JSON line over another pipe.

This module owns nothing on disk: on failure ``dest`` is left half-filled for the
caller to remove. It never follows a symlink when packing.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import json
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Protocol, Self, cast

from runtime.errors import InvalidSpec, KernelError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
NOT_A_TAR = "archive is truncated or not a tar file"
_MODES = ("overlay", "apply", "keep")
_CHUNK = 1 << 16
_PROJECT = str(Path(__file__).resolve().parents[1])
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "import runtime.archive as a; a._child(sys.argv[2:])"
)


class Readable(Protocol):
    """What ``extract`` reads from: any object with ``read(size)``, such as a BinaryIO."""

    def read(self, size: int = -1, /) -> bytes: ...


class _Reader:
    """Bytes already peeked, then the rest of a stream: lets us sniff compression magic."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            out = self._head if size < 0 else self._head[:size]
            self._head = self._head[len(out) :]
            return out
        return self._rest.read(size)


def decompressed(source: Readable) -> Readable:
    """``source`` as an uncompressed tar stream, detecting gzip, bzip2 or xz by magic."""
    head = b""
    while len(head) < 6:
        more = source.read(6 - len(head))
        if not more:
            break
        head += more
    raw = cast(Any, _Reader(head, source))  # the decompressors only call read()
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise InvalidSpec("zstd-compressed archives are not supported; decompress it first")
    return cast(Readable, raw)


def extract(
    source: Readable,
    dest: Path,
    *,
    whiteouts: str = "overlay",
    allow_devices: bool = False,
    allow_setuid: bool = False,
    max_bytes: int | None = None,
) -> int:
    """Unpack the tar stream ``source`` into the directory ``dest``; return file bytes written.

    ``whiteouts``: 'overlay' turns OCI whiteouts into overlayfs ones (``.wh.x`` becomes a
    0/0 char device ``x``, ``.wh..wh..opq`` the opaque xattr on its directory); 'apply'
    deletes what they name, as when applying a layer onto a full tree; 'keep' writes them
    as the plain files they are. Setuid/setgid bits are stripped unless ``allow_setuid``.
    """
    if whiteouts not in _MODES:
        raise InvalidSpec(f"unknown whiteout mode {whiteouts!r}; use one of {', '.join(_MODES)}")
    if not Path(dest).is_dir():
        raise KernelError("unpack archive", errno.ENOTDIR, str(dest))
    stream = decompressed(source)
    opts = json.dumps(
        {
            "whiteouts": whiteouts,
            "allow_devices": allow_devices,
            "allow_setuid": allow_setuid,
            "max_bytes": max_bytes,
        }
    )
    data_r, data_w = os.pipe()
    result_r, result_w = os.pipe()
    with tempfile.TemporaryFile() as errlog:
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, _PROJECT, str(dest), opts, str(result_w)],
                stdin=data_r,
                stdout=subprocess.DEVNULL,
                stderr=errlog,
                pass_fds=(result_w,),
            )
        except OSError as e:
            for fd in (data_r, data_w, result_r, result_w):
                os.close(fd)
            raise KernelError.from_oserror("start the unpacking process", e) from e
        os.close(data_r)
        os.close(result_w)
        try:
            _pump(stream, data_w)
        except BaseException:
            child.kill()
            raise
        finally:
            os.close(data_w)
            with os.fdopen(result_r, "rb") as result:
                answer = result.read()
            child.wait()
        errlog.seek(0)
        crash = errlog.read().decode(errors="replace").strip().splitlines()[-1:]
    return _answer(answer, child.returncode, crash)


def _pump(stream: Readable, fd: int) -> None:
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise InvalidSpec(f"compressed archive is corrupt or truncated: {e}") from e
        if not chunk:
            return
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            return  # the child stopped reading: it has an answer for us


def _answer(raw: bytes, status: int, crash: list[str]) -> int:
    try:
        answer = json.loads(raw)
    except ValueError:
        detail = f"the unpacking process exited with status {status}" + (
            f": {crash[0]}" if crash else ""
        )
        raise KernelError("unpack archive", errno.EIO, detail) from None
    if answer["ok"]:
        return int(answer["bytes"])
    if answer["kind"] == "invalid":
        raise InvalidSpec(answer["message"])
    raise KernelError(answer["op"], answer["errno"], answer["detail"])


# --- the chrooted child --------------------------------------------------------------


class _Refused(Exception):
    pass


class _Info(tarfile.TarInfo):
    """Remembers why tarfile stopped reading headers: a zero block is a clean end."""

    ended_by: Exception | None = None

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as e:
            cls.ended_by = e
            raise


def _child(argv: list[str]) -> None:
    dest, opts, result_fd = argv
    with os.fdopen(int(result_fd), "w") as result:
        unpacker = _Unpacker(**json.loads(opts))
        answer: dict[str, object] = {"ok": False, "kind": "invalid"}
        try:
            os.chroot(dest)
            os.chdir("/")
            os.umask(0)
            answer = {"ok": True, "bytes": unpacker.run(sys.stdin.buffer)}
        except _Refused as e:
            answer["message"] = str(e)
        except (tarfile.TarError, EOFError):
            answer["message"] = NOT_A_TAR
        except (ValueError, OverflowError) as e:  # ids, times or sizes out of range
            answer["message"] = f"archive entry {unpacker.entry!r} is malformed: {e}"
        except OSError as e:
            answer.update(
                kind="kernel",
                op=f"unpack {unpacker.entry!r}",
                errno=e.errno or errno.EIO,
                detail=e.strerror or str(e),
            )
        result.write(json.dumps(answer))


class _Unpacker:
    def __init__(
        self, whiteouts: str, allow_devices: bool, allow_setuid: bool, max_bytes: int | None
    ) -> None:
        self.whiteouts, self.allow_devices = whiteouts, allow_devices
        self.allow_setuid, self.max_bytes = allow_setuid, max_bytes
        self.written = 0
        self.entry = ""
        self.unpacked: set[str] = set()  # for 'apply': what an opaque marker must spare
        self.dir_times: list[tuple[str, int]] = []

    def run(self, stream: BinaryIO) -> int:
        _Info.ended_by = None
        tf = tarfile.open(
            fileobj=stream, mode="r|", tarinfo=_Info, encoding="utf-8", errors="surrogateescape"
        )
        for member in tf:
            self.entry = member.name
            self.one(tf, member)
            tf.members = []  # type: ignore[attr-defined]  # stream mode keeps all headers
        clean_ends = (tarfile.EOFHeaderError, tarfile.EmptyHeaderError)  # type: ignore[attr-defined]
        if not isinstance(_Info.ended_by, clean_ends):
            raise tarfile.ReadError(NOT_A_TAR)  # a cut-off or garbage header after the entries
        while stream.read(_CHUNK):
            pass  # drain the padding so the parent's digest covers the whole stream
        for path, mtime_ns in reversed(self.dir_times):  # children first, parents last
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        return self.written

    def refuse(self, why: str) -> NoReturn:
        raise _Refused(f"archive entry {self.entry!r} {why}")

    def clean(self, name: str, what: str = "") -> str:
        if name.startswith("/"):
            self.refuse(f"has an absolute {what}path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            self.refuse(f"has a '..' component in its {what}path")
        return "/" + "/".join(parts)

    def parents(self, path: str, create: bool) -> None:
        """Check (and make) each parent of ``path``: real directories only, no symlinks."""
        current = ""
        for part in path.split("/")[1:-1]:
            current += "/" + part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if not create:
                    self.refuse(f"needs {current!r}, which does not exist")
                os.mkdir(current, 0o755)
                self.unpacked.add(current)
                continue
            if stat.S_ISLNK(st.st_mode):
                self.refuse(f"goes through the symbolic link {current!r}")
            if not stat.S_ISDIR(st.st_mode):
                self.refuse(f"goes through {current!r}, which is not a directory")

    def one(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        path = self.clean(m.name)
        if path == "/":
            if not m.isdir():
                self.refuse("names the root but is not a directory")
            self.metadata(path, m)
            return
        self.parents(path, create=True)
        base = path.rsplit("/", 1)[1]
        if base.startswith(WHITEOUT) and self.whiteouts != "keep":
            self.whiteout(path, base, m)
            return
        if m.isreg() and self.max_bytes is not None and self.written + m.size > self.max_bytes:
            self.refuse(f"takes the content past the limit of {self.max_bytes} bytes")
        if (m.ischr() or m.isblk()) and not self.allow_devices:
            self.refuse("is a device node, and device nodes are not allowed here")
        self.replace(path, m.isdir())
        self.unpacked.add(path)
        if m.isreg():
            self.regular(tf, m, path)
        elif m.isdir():
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            self.metadata(path, m)
        elif m.issym():
            if not m.linkname:
                self.refuse("is a symbolic link with an empty target")
            os.symlink(m.linkname, path)
            self.metadata(path, m)
        elif m.islnk():
            self.hardlink(path, m)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            self.metadata(path, m)
        else:
            self.refuse(f"has an unsupported type {m.type!r}")

    def replace(self, path: str, is_dir: bool) -> None:
        """A later entry replaces an earlier one, except a directory over a directory."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not is_dir:
                shutil.rmtree(path)
        else:
            os.unlink(path)

    def regular(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> None:
        data = tf.extractfile(m)
        assert data is not None  # isreg() members always have a data stream
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(fd, "wb") as out:
            while chunk := data.read(_CHUNK):
                out.write(chunk)
        self.written += m.size
        self.metadata(path, m)

    def hardlink(self, path: str, m: tarfile.TarInfo) -> None:
        target = self.clean(m.linkname, "link target ")
        if target == path:
            return
        self.parents(target, create=False)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            self.refuse(f"links to {m.linkname!r}, which is not in the archive")
        if stat.S_ISDIR(st.st_mode):
            self.refuse(f"is a hard link to the directory {m.linkname!r}")
        os.link(target, path, follow_symlinks=False)

    def whiteout(self, path: str, base: str, m: tarfile.TarInfo) -> None:
        parent = path[: -len(base) - 1] or "/"
        if base == OPAQUE:
            if self.whiteouts == "overlay":
                os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y")
            else:
                for name in os.listdir(parent):
                    child = parent.rstrip("/") + "/" + name
                    if child not in self.unpacked:
                        self.replace(child, False)
            return
        if base.startswith(OPAQUE[:8]):
            return  # other .wh..wh. names are aufs bookkeeping, meaningless here
        if base[len(WHITEOUT) :] in ("", ".", ".."):
            self.refuse("is a whiteout without a proper name")
        victim = parent.rstrip("/") + "/" + base[len(WHITEOUT) :]
        self.replace(victim, False)
        if self.whiteouts == "overlay":
            os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            os.lchown(victim, m.uid, m.gid)

    def metadata(self, path: str, m: tarfile.TarInfo) -> None:
        os.lchown(path, m.uid, m.gid)
        mode = m.mode & 0o7777
        if not self.allow_setuid:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        if not m.issym():
            os.chmod(path, mode)  # after chown, which would clear setuid
        for key, value in m.pax_headers.items():
            name = key[len("SCHILY.xattr.") :]
            if not key.startswith("SCHILY.xattr.") or m.issym():
                continue
            # user.* is data; file capabilities are privilege, like setuid. trusted.* and
            # security.* would let an archive forge overlay or LSM metadata.
            if name.startswith("user.") or (name == "security.capability" and self.allow_setuid):
                os.setxattr(
                    path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False
                )
        mtime_ns = int(m.mtime * 1_000_000_000)
        if m.isdir():
            self.dir_times.append((path, mtime_ns))
        else:
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


# --- packing -------------------------------------------------------------------------


def create(src_dir: Path, out: BinaryIO, *, overlay_whiteouts_to_oci: bool = False) -> None:
    """Write ``src_dir``'s content (not the directory itself) to ``out`` as a PAX tar.

    Entries are sorted, symlinks are stored as links, hardlinks as links to the first
    name, sockets skipped. With ``overlay_whiteouts_to_oci``, 0/0 char devices become
    ``.wh.<name>`` and opaque directories get a ``.wh..wh..opq`` entry, as in OCI layers.
    """
    with tarfile.open(
        fileobj=out,
        mode="w|",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    ) as tf:
        try:
            _pack_dir(tf, str(src_dir), "", overlay_whiteouts_to_oci)
        except OSError as e:
            raise KernelError.from_oserror("pack directory", e) from e


def _pack_dir(tf: tarfile.TarFile, real: str, arc: str, convert: bool) -> None:
    if convert and _is_opaque(real):
        tf.addfile(_empty_file(f"{arc}{OPAQUE}", os.lstat(real)))
    for name in sorted(os.listdir(real)):
        path, arcname = os.path.join(real, name), f"{arc}{name}"
        st = os.lstat(path)
        if convert and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tf.addfile(_empty_file(f"{arc}{WHITEOUT}{name}", st))
            continue
        info = tf.gettarinfo(path, arcname)
        if info is None:
            continue  # sockets cannot be archived
        info.uname = info.gname = ""
        info.pax_headers = {
            f"SCHILY.xattr.{attr}": os.getxattr(path, attr, follow_symlinks=False).decode(
                "utf-8", "surrogateescape"
            )
            for attr in os.listxattr(path, follow_symlinks=False)
            if attr.startswith("user.") or attr == "security.capability"
        }
        if info.isreg():
            with open(path, "rb") as data:
                tf.addfile(info, data)
        else:
            tf.addfile(info)
        if info.isdir():
            _pack_dir(tf, path, arcname + "/", convert)


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def _empty_file(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = 0o600, st.st_uid, st.st_gid, int(st.st_mtime)
    return info
