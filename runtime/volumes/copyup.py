"""Seeding an empty volume with the image's content at its mount point (Docker's copy-up).

Runs in the container's init, after the overlay is mounted and before the volume is
bound over the target, so the target still shows the image's directory. Both trees
may be reachable by other running containers (a shared volume on the path, or the
volume itself), so every step works on directory file descriptors opened with
``O_NOFOLLOW``: a directory swapped for a symlink mid-copy makes the copy fail instead
of reading or writing host files. Links are copied as links, fifos and device nodes are
recreated, sockets are skipped; owners, modes and times are kept. Writes only into the
volume, and only when it is empty.
"""

from __future__ import annotations

import os
import stat

from runtime.errors import KernelError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_path(root: str, path: str) -> int:
    """``path`` (already resolved inside ``root``) opened one component at a time."""
    fd = os.open(root, _DIR)
    try:
        for part in [p for p in os.path.relpath(path, root).split("/") if p not in ("", ".")]:
            next_fd = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except OSError:
        os.close(fd)
        raise
    return fd


def seed(root: str, target: str, volume: str) -> bool:
    """Copy the image's ``target`` (inside ``root``) into the empty ``volume``.

    True if it copied; False when there is nothing to copy or the volume has data.
    """
    try:
        src = _open_path(root, target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        raise KernelError.from_oserror("open image directory for copy-up", e) from e
    old_umask = os.umask(0)  # modes are given exactly at creation
    try:
        dst = os.open(volume, _DIR)
        try:
            if os.listdir(dst):
                return False
            _copy_tree(src, dst)
            _copy_attributes(os.fstat(src), dst)
        finally:
            os.close(dst)
    except OSError as e:
        raise KernelError.from_oserror("copy image content into volume", e) from e
    finally:
        os.umask(old_umask)
        os.close(src)
    return True


def _copy_attributes(st: os.stat_result, fd: int) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)  # chown clears set-id bits, so mode comes after
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_tree(src: int, dst: int) -> None:
    with os.scandir(src) as entries:
        names = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    for name, st in names:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            child_src = os.open(name, _DIR, dir_fd=src)
            try:
                child_dst = os.open(name, _DIR, dir_fd=dst)
                try:
                    _copy_tree(child_src, child_dst)
                    _copy_attributes(st, child_dst)
                finally:
                    os.close(child_dst)
            finally:
                os.close(child_src)
        elif stat.S_ISREG(mode):
            _copy_file(name, st, src, dst)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            _node_attributes(name, st, dst)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            _node_attributes(name, st, dst)
        # sockets belong to a process that is not running here: skipped


def _node_attributes(name: str, st: os.stat_result, dst: int) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(name: str, st: os.stat_result, src: int, dst: int) -> None:
    fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        fd_out = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dst,
        )
        try:
            while True:
                sent = os.sendfile(fd_out, fd_in, None, 1 << 30)
                if not sent:
                    break
            _copy_attributes(st, fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
