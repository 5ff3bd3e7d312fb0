"""Writing trees to tar streams: layer tars, ``export`` and ``cp`` archives.

Kernel interfaces: lstat(2), listxattr/getxattr(2) and read(2) on the tree being packed;
the optional conversion of overlayfs whiteouts (0/0 char devices) and opaque directories
(``trusted.overlay.opaque=y``) into OCI ``.wh.`` entries.

Owns nothing on disk. It never follows a symlink below the top entry (and the top one
only when asked, as ``cp -L`` does), never writes ``trusted.*`` xattrs into an archive,
and skips sockets. Entries are sorted per directory, so equal trees give equal bytes.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Collection
from dataclasses import dataclass
from typing import BinaryIO

from runtime.archive import OVERLAY_OPAQUE_XATTR, is_opaque

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = OVERLAY_OPAQUE_XATTR


@dataclass(frozen=True)
class Options:
    oci_whiteouts: bool = False  # overlay whiteouts -> .wh. entries (layer tars)
    exclude: Collection[str] = ()  # paths relative to the packed root ('sbin/docker-init')
    owner: tuple[int, int] | None = None  # force uid/gid (docker cp without -a)
    # st_dev of kernel filesystems (proc, sysfs, /dev) to list but never descend into
    skip_devices: frozenset[int] = frozenset()


def open_writer(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(
        fileobj=out,
        mode="w|",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    )


def pack_tree(tf: tarfile.TarFile, root: str, opts: Options) -> None:
    """Add the content of the directory ``root`` (not ``root`` itself) to ``tf``."""
    _pack_children(tf, root, "", "", opts)


def pack_entry(
    tf: tarfile.TarFile, path: str, arcname: str, opts: Options, follow: bool = False
) -> None:
    """Add ``path`` as ``arcname`` (and, for a directory, everything below it).

    ``arcname`` '' means: a directory's children go at the top of the archive.
    """
    st = os.stat(path) if follow else os.lstat(path)
    if arcname:
        _add(tf, path, arcname, st, opts)
    if stat.S_ISDIR(st.st_mode):
        _pack_children(tf, path, arcname + "/" if arcname else "", "", opts)


def excluded_dirs(root: str, exclude: Collection[str]) -> set[str]:
    """Directories (relative) that hold nothing but excluded paths: skip them too."""
    skip: set[str] = set()
    for rel in exclude:
        parts = rel.strip("/").split("/")
        for depth in range(len(parts) - 1, 0, -1):
            parent = "/".join(parts[:depth])
            try:
                names = os.listdir(os.path.join(root, parent))
            except OSError:
                break
            if all(f"{parent}/{n}" in exclude or f"{parent}/{n}" in skip for n in names):
                skip.add(parent)
            else:
                break
    return skip


def _pack_children(tf: tarfile.TarFile, real: str, arc: str, rel: str, opts: Options) -> None:
    if opts.oci_whiteouts and is_opaque(real):
        tf.addfile(_marker(f"{arc}{OPAQUE}", os.lstat(real), opts))
    for name in sorted(os.listdir(real)):
        path, arcname, relname = os.path.join(real, name), f"{arc}{name}", f"{rel}{name}"
        if relname in opts.exclude:
            continue
        st = os.lstat(path)
        if opts.oci_whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tf.addfile(_marker(f"{arc}{WHITEOUT}{name}", st, opts))
            continue
        if (
            _add(tf, path, arcname, st, opts)
            and stat.S_ISDIR(st.st_mode)
            and st.st_dev not in opts.skip_devices
        ):
            _pack_children(tf, path, arcname + "/", relname + "/", opts)


def _add(tf: tarfile.TarFile, path: str, arcname: str, st: os.stat_result, opts: Options) -> bool:
    if stat.S_ISSOCK(st.st_mode):
        return False
    info = tf.gettarinfo(path, arcname)
    if info is None:
        return False
    info.uname = info.gname = ""
    if opts.owner is not None:
        info.uid, info.gid = opts.owner
    info.pax_headers = _xattrs(path)
    if info.isreg():
        with open(path, "rb", opener=_nofollow) as data:
            tf.addfile(info, data)
    else:
        tf.addfile(info)
    return True


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    # user.* is data and security.capability is what makes ping work; trusted.* and
    # the rest describe this host (overlay bookkeeping, LSM labels).
    return {
        f"SCHILY.xattr.{name}": os.getxattr(path, name, follow_symlinks=False).decode(
            "utf-8", "surrogateescape"
        )
        for name in sorted(names)
        if name.startswith("user.") or name == "security.capability"
    }


def _marker(name: str, st: os.stat_result, opts: Options) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o600, int(st.st_mtime)
    info.uid, info.gid = opts.owner if opts.owner is not None else (st.st_uid, st.st_gid)
    return info
