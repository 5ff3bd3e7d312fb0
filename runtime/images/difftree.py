"""Copy an overlayfs upper dir into a new layer's ``diff/`` dir, as unpacking its layer
tar (``archive.extract(..., whiteouts="overlay")``) would leave it, without the tar.

Kernel interfaces: lstat(2), copy_file_range(2) (file data is copied inside the kernel,
never through Python), mkdir/mknod/symlink/link(2), lchown/chmod/utimensat(2) and
listxattr/getxattr/setxattr(2).

``layers.commit_layer`` uses it for a quiesced container: the layer tar (for the diff id
and ``save``) is written from the same tree, and this replaces the slower unpacking of
that tar. Kept as the tar keeps them: modes (setuid too, as ``commit`` does), owners,
mtimes, ``user.*`` and ``security.capability`` xattrs, hard links, symlinks, device
nodes and fifos; overlay whiteouts (0/0 char devices) and opaque directories stay in
overlay form. Sockets, ``exclude``d paths and overlay's other ``trusted.*`` bookkeeping
are left out. Owns nothing: it writes only below ``dest``, a new empty directory of the
caller's, and never follows a symlink in either tree.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection

from runtime.errors import KernelError
from runtime.images.packing import OPAQUE_XATTR, is_opaque

_CHUNK = 1 << 30  # copy_file_range may stop short; loop until the whole size is copied


def copy_tree(src: str, dest: str, exclude: Collection[str] = ()) -> int:
    """Copy the content of ``src`` into the empty directory ``dest``; return the bytes of
    regular files copied (each hard-linked file once), like ``archive.extract``."""
    copier = _Copier(exclude)
    try:
        if is_opaque(src):
            os.setxattr(dest, OPAQUE_XATTR, b"y")
        copier.children(src, dest, "")
        for path, st in copier.dirs:  # children before parents: their entries touch mtimes
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))
    except OSError as e:
        raise KernelError.from_oserror(f"copy the changes in {src}", e) from e
    return copier.size


class _Copier:
    def __init__(self, exclude: Collection[str]) -> None:
        self.exclude = exclude
        self.links: dict[tuple[int, int], str] = {}
        self.dirs: list[tuple[str, os.stat_result]] = []
        self.size = 0

    def children(self, src: str, dest: str, rel: str) -> None:
        for name in sorted(os.listdir(src)):
            if f"{rel}{name}" in self.exclude:
                continue
            self.one(os.path.join(src, name), os.path.join(dest, name), f"{rel}{name}/")

    def one(self, src: str, dest: str, rel: str) -> None:
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            first = self.links.setdefault((st.st_dev, st.st_ino), dest)
            if first != dest:
                os.link(first, dest, follow_symlinks=False)
                return
        if stat.S_ISREG(mode):
            self.size += _copy_file(src, dest, st.st_size)
        elif stat.S_ISDIR(mode):
            os.mkdir(dest, 0o700)
            if is_opaque(src):
                os.setxattr(dest, OPAQUE_XATTR, b"y")
            self.children(src, dest, rel)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dest)
        elif stat.S_ISCHR(mode) and st.st_rdev == 0:
            # A whiteout: only its name means anything; the tar path makes it 0600.
            os.mknod(dest, stat.S_IFCHR | 0o600, 0)
            os.lchown(dest, st.st_uid, st.st_gid)
            return
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(dest, stat.S_IFMT(mode) | 0o600, st.st_rdev)
        else:
            return
        self.metadata(src, dest, st)

    def metadata(self, src: str, dest: str, st: os.stat_result) -> None:
        os.lchown(dest, st.st_uid, st.st_gid)
        if stat.S_ISLNK(st.st_mode):
            os.utime(dest, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        os.chmod(dest, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid
        for name in _xattrs(src):
            os.setxattr(
                dest, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False
            )
        if stat.S_ISDIR(st.st_mode):
            self.dirs.append((dest, st))
        else:
            os.utime(dest, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_file(src: str, dest: str, size: int) -> int:
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd_out = os.open(
            dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            copied = 0
            while copied < size:
                try:
                    n = os.copy_file_range(fd_in, fd_out, min(_CHUNK, size - copied))
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    n = os.sendfile(fd_out, fd_in, None, min(_CHUNK, size - copied))
                if n == 0:
                    break  # the file shrank meanwhile: copy what there is
                copied += n
            return copied
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _xattrs(path: str) -> list[str]:
    """The xattrs a layer tar keeps (``packing._xattrs``): data and file capabilities."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return []
        raise
    return [n for n in names if n.startswith("user.") or n == "security.capability"]
