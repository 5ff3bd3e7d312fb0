"""Unpacking untrusted tar streams and packing directories, the way image layers need.

Kernel interfaces: chroot(2) in a child process, mknod(2) for overlay whiteouts (char
device 0/0), setxattr(2) for ``trusted.overlay.opaque``, lchown/utimensat for metadata.

``extract`` treats every archive as hostile. The entries are written by a fresh child
interpreter (fork+exec, like Docker's ``docker-untar`` re-exec: safe to call from the
multithreaded Celery worker) that has done ``chroot(dest)`` and ``chdir('/')`` before it
reads a single header, so no name, ``..``, symlink or hardlink can reach outside ``dest``
whatever the checks below miss. The checks still refuse, with an InvalidSpec naming the
entry: absolute names, ``..`` components, paths through a symlink, hardlinks to absolute
or missing targets, device nodes unless allowed. The parent decompresses (gzip, bzip2, xz
by magic) and streams the tar bytes to the child over a pipe; the child answers with one
JSON line over another pipe.

Enormous input (a gzip bomb, a million empty files, a header claiming terabytes) is
refused while it streams, never after it was written: the decompressed tar stream may
hold at most ``max_bytes`` (``MOORAGE_MAX_UNPACKED_BYTES``; by default 16 GiB or the free
space where it lands, whichever is less), a regular entry is refused by its declared
size before its data is read, there may be at most ``max_entries`` entries
(``MOORAGE_MAX_ARCHIVE_ENTRIES``, default 1Mi), and a pax or GNU long-name header, which
tarfile reads into memory whole, at most 1 MiB.

Setuid and setgid bits (and ``security.capability``) are privilege: they are stripped,
never refused, unless the caller vouches for the source with ``allow_setuid``. Moorage's
policy: ``load`` and ``pull`` (an admin's images: su, passwd, ping) and ``commit`` (the
container's own files) keep them; ``import`` keeps them when the caller is trusted (the
CLI, an admin) and strips them for a dashboard user who is not an admin
(``images.import_tar``'s default); ``cp`` into a container strips them unless
``-a`` from a trusted caller; ``cp`` out to the host strips them unless ``-a``.

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
DEFAULT_MAX_BYTES = 16 << 30
DEFAULT_MAX_ENTRIES = 1 << 20
MAX_HEADER = 1 << 20  # pax and GNU long-name headers: tarfile reads them into memory
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


def _from_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSpec(f"{name}={raw!r} is not a whole number of bytes") from None
    if value <= 0:
        raise InvalidSpec(f"{name} must be positive, not {value}")
    return value


def byte_limit(where: Path) -> int:
    """How many decompressed tar bytes an archive landing in ``where`` may hold."""
    configured = _from_env("MOORAGE_MAX_UNPACKED_BYTES")
    if configured is not None:
        return configured
    try:
        st = os.statvfs(where)
    except OSError as e:
        raise KernelError.from_oserror(f"check the free space in {where}", e) from e
    return min(DEFAULT_MAX_BYTES, st.f_bavail * st.f_frsize)


def entry_limit() -> int:
    """How many entries one archive may hold."""
    return _from_env("MOORAGE_MAX_ARCHIVE_ENTRIES") or DEFAULT_MAX_ENTRIES


def too_big(limit: int) -> str:
    """The refusal of an archive that unpacks to more than ``limit`` bytes."""
    return (
        f"the archive unpacks to more than {limit} bytes; set MOORAGE_MAX_UNPACKED_BYTES "
        "to allow more"
    )


def extract(
    source: Readable | Path,
    dest: Path,
    *,
    whiteouts: str = "overlay",
    allow_devices: bool = False,
    allow_setuid: bool = False,
    max_bytes: int | None = None,
    max_entries: int | None = None,
) -> int:
    """Unpack the tar stream ``source`` into the directory ``dest``; return file bytes written.

    ``whiteouts``: 'overlay' turns OCI whiteouts into overlayfs ones (``.wh.x`` becomes a
    0/0 char device ``x``, ``.wh..wh..opq`` the opaque xattr on its directory); 'apply'
    deletes what they name, as when applying a layer onto a full tree; 'keep' writes them
    as the plain files they are. Setuid/setgid bits are stripped unless ``allow_setuid``.
    ``max_bytes`` (of the decompressed tar stream) and ``max_entries`` default to
    ``byte_limit(dest)`` and ``entry_limit()``.

    A ``Path`` names an uncompressed tar file: the child reads it itself, seeking from
    header to header and copying each file's data with copy_file_range(2), so no byte of
    it passes through this process or a pipe (pull and its 200 MB layers).
    """
    if whiteouts not in _MODES:
        raise InvalidSpec(f"unknown whiteout mode {whiteouts!r}; use one of {', '.join(_MODES)}")
    if not Path(dest).is_dir():
        raise KernelError("unpack archive", errno.ENOTDIR, str(dest))
    stream = None if isinstance(source, Path) else decompressed(source)
    opts = json.dumps(
        {
            "whiteouts": whiteouts,
            "allow_devices": allow_devices,
            "allow_setuid": allow_setuid,
            "max_bytes": max_bytes if max_bytes is not None else byte_limit(dest),
            "max_entries": max_entries if max_entries is not None else entry_limit(),
        }
    )
    # A tar file is the child's stdin as it is; a stream goes through a pipe we feed.
    data_r, data_w = os.pipe() if stream is not None else (_open_tar(cast(Path, source)), -1)
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
                if fd >= 0:
                    os.close(fd)
            raise KernelError.from_oserror("start the unpacking process", e) from e
        os.close(data_r)
        os.close(result_w)
        try:
            if stream is not None:
                _pump(stream, data_w)
        except BaseException:
            child.kill()
            raise
        finally:
            if data_w >= 0:
                os.close(data_w)
            with os.fdopen(result_r, "rb") as result:
                answer = result.read()
            child.wait()
        errlog.seek(0)
        crash = errlog.read().decode(errors="replace").strip().splitlines()[-1:]
    return _answer(answer, child.returncode, crash)


def _open_tar(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError.from_oserror(f"open {path}", e) from e


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


# Why tarfile may stop reading headers at the end of a well-formed archive: a zero block.
CLEAN_ENDS = (tarfile.EOFHeaderError, tarfile.EmptyHeaderError)  # type: ignore[attr-defined]


class GuardedInfo(tarfile.TarInfo):
    """The headers of an untrusted tar: an oversized one is refused with ``refusal``
    before tarfile reads it into memory whole, and ``ended_by`` remembers why tarfile
    stopped reading headers (``ended_cleanly``: a zero block, not a cut-off or garbage
    header). Each reader uses its own subclass: ``ended_by`` lives on the class."""

    ended_by: Exception | None = None
    refusal: type[Exception] = InvalidSpec

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as e:
            cls.ended_by = e
            raise

    @classmethod
    def ended_cleanly(cls) -> bool:
        return isinstance(cls.ended_by, CLEAN_ENDS)

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        if (reason := oversized_header(self)) is not None:
            raise self.refusal(reason)
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _Info(GuardedInfo):
    refusal = _Refused


def oversized_header(info: tarfile.TarInfo) -> str | None:
    """Why a pax or long-name header is refused (tarfile would read it whole), or None."""
    if info.type in _META_TYPES and info.size > MAX_HEADER:
        return f"the archive has a {info.size}-byte extended header; at most {MAX_HEADER}"
    return None


_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _Limited:
    """The tar stream, refused once it has given more than ``limit`` bytes."""

    def __init__(self, stream: BinaryIO, limit: int | None) -> None:
        self.stream, self.limit, self.count = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise _Refused(too_big(self.limit))
        return data


class _LimitedFile(_Limited):
    """``_Limited`` over a tar file: seekable, and file data copied past it counts too."""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def count_copied(self, size: int) -> None:
        self.count += size
        if self.limit is not None and self.count > self.limit:
            raise _Refused(too_big(self.limit))


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


def copy_data(src: int, dst: int, offset: int, size: int) -> None:
    """``size`` bytes of the tar file ``src`` from ``offset`` to ``dst``, in the kernel.

    A file cut short is a truncated archive. copy_file_range(2) needs both files on one
    filesystem type; sendfile(2) does any pair.
    """
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src, dst, size - done, offset + done)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.sendfile(dst, src, offset + done, size - done)
        if n == 0:
            raise tarfile.ReadError(NOT_A_TAR)
        done += n


class _Unpacker:
    def __init__(
        self,
        whiteouts: str,
        allow_devices: bool,
        allow_setuid: bool,
        max_bytes: int | None,
        max_entries: int | None = None,
    ) -> None:
        self.whiteouts, self.allow_devices = whiteouts, allow_devices
        self.allow_setuid, self.max_bytes = allow_setuid, max_bytes
        self.max_entries = max_entries
        self.direct, self.fd = False, 0  # reading a seekable tar file, not a pipe
        self.written = 0
        self.entry = ""
        self.unpacked: set[str] = set()  # for 'apply': what an opaque marker must spare
        self.dir_times: list[tuple[str, int]] = []

    def run(self, raw: BinaryIO) -> int:
        _Info.ended_by = None
        # A tar file rather than a pipe (``extract`` of a Path): tarfile seeks it, and each
        # file's data is copied by the kernel (``copy_data``) and counted as it is copied.
        self.fd = raw.fileno()
        self.direct = stat.S_ISREG(os.fstat(self.fd).st_mode)
        self.limited = (_LimitedFile if self.direct else _Limited)(raw, self.max_bytes)
        stream = cast(BinaryIO, self.limited)
        tf = tarfile.open(
            fileobj=stream,
            mode="r:" if self.direct else "r|",
            tarinfo=_Info,
            encoding="utf-8",
            errors="surrogateescape",
        )
        for count, member in enumerate(tf, 1):
            self.entry = member.name
            if self.max_entries is not None and count > self.max_entries:
                raise _Refused(
                    f"the archive has more than {self.max_entries} entries; set "
                    "MOORAGE_MAX_ARCHIVE_ENTRIES to allow more"
                )
            self.one(tf, member)
            tf.members = []  # type: ignore[attr-defined]  # stream mode keeps all headers
        if not _Info.ended_cleanly():
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
            self.refuse(
                f"takes the content past the limit of {self.max_bytes} bytes; set "
                "MOORAGE_MAX_UNPACKED_BYTES to allow more"
            )
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
            if isinstance(self.limited, _LimitedFile) and m.sparse is None:  # a tar file
                self.limited.count_copied(m.size)
                copy_data(self.fd, out.fileno(), m.offset_data, m.size)
            else:
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


def is_opaque(path: str) -> bool:
    """Whether overlayfs marked directory ``path`` opaque (it hides the lower ones)."""
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise
