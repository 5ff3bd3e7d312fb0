"""Making a bind mount read-only, submounts included, as ``-v SRC:DST:ro`` promises.

Kernel interfaces: mount(2) with ``MS_REMOUNT|MS_BIND|MS_RDONLY``, statvfs(2) for the
flags a mount already has, and ``/proc/self/mountinfo`` for the mounts under a path.

``MS_REC`` means nothing to a remount: the kernel changes one mount at a time, so a host
directory with submounts (or a volume with a mount under it) bound with ``MS_REC`` stays
writable below its top unless each mount is remounted on its own, parents first. A
remount also replaces the per-mount flags it is given: leaving out ``nosuid``, ``nodev``
or ``noexec`` that a mount has would clear them (or fail with EPERM where the kernel has
locked them), so each remount repeats the flags the mount already has.

Runs in the container's init, inside its private mount namespace (from
``runtime.rootfs``); nothing here can touch a mount of the host. Owns nothing on disk.
"""

from __future__ import annotations

import os

from runtime import syscalls as sc

_MS_NODIRATIME = 2048
_MS_RELATIME = 1 << 21
# statvfs(2) f_flag bits and the mount(2) flags they stand for.
_KEPT = (
    (os.ST_NOSUID, sc.MS_NOSUID),
    (os.ST_NODEV, sc.MS_NODEV),
    (os.ST_NOEXEC, sc.MS_NOEXEC),
    (os.ST_NOATIME, sc.MS_NOATIME),
    (os.ST_NODIRATIME, _MS_NODIRATIME),
    (os.ST_RELATIME, _MS_RELATIME),
)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, parents first."""
    top = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        points = [_unescape(line.split(" ")[4]) for line in f]
    found = {p for p in points if p == top or p.startswith(top.rstrip("/") + "/")}
    return sorted(found, key=lambda p: (p.count("/"), p))


def kept_flags(mount_point: str) -> int:
    """The mount(2) flags of ``mount_point`` a remount must repeat to keep them."""
    have = os.statvfs(mount_point).f_flag
    return sum(flag for bit, flag in _KEPT if have & bit)


def read_only(path: str) -> None:
    """Remount the mount at ``path`` and every mount below it read-only."""
    for point in mounts_under(path):
        sc.mount(None, point, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | kept_flags(point))
