"""``docker diff``: the changes an overlay upper dir makes to its lower layers.

Kernel interfaces: lstat(2) and getxattr(2) on the upper and lower dirs (overlayfs
whiteouts are 0/0 char devices, opaque directories carry ``trusted.overlay.opaque=y``).

Follows moby's ``archive.OverlayChanges``: walk the upper dir in lexical order; a
whiteout or opaque directory is ``D``, a path that exists in a lower layer is ``C``
(except a directory whose size, mode and mtime are unchanged), anything else ``A``; the
parent of an added or deleted path is reported ``C`` before it. Owns nothing on disk,
never writes, and never follows a symlink (a lower path is looked at with lstat).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.images import packing

MODIFY, ADD, DELETE = 0, 1, 2
KIND_LETTER = {MODIFY: "C", ADD: "A", DELETE: "D"}


@dataclass(frozen=True)
class Change:
    path: str  # '/etc/passwd'
    kind: int  # MODIFY, ADD or DELETE (the Engine API's numbers)

    def __str__(self) -> str:
        return f"{KIND_LETTER[self.kind]} {self.path}"


def changes(upper: Path, lowers: Sequence[Path], exclude: Collection[str] = ()) -> list[Change]:
    """The changes ``upper`` makes over ``lowers`` (topmost first), in Docker's order.

    ``exclude`` names paths relative to ``upper`` (``etc/hosts``) that are the engine's
    own mount points; they and directories holding only them are not changes.
    """
    root = str(upper)
    skip = set(exclude) | packing.excluded_dirs(root, exclude)
    found: list[Change] = []
    changed_dirs: set[str] = set()
    _walk(root, "", [str(p) for p in lowers], skip, found, changed_dirs)
    return found


def _walk(
    root: str,
    rel: str,
    lowers: list[str],
    skip: set[str],
    found: list[Change],
    changed_dirs: set[str],
) -> None:
    for name in sorted(os.listdir(os.path.join(root, rel) if rel else root)):
        relname = f"{rel}/{name}" if rel else name
        if relname in skip:
            continue
        st = os.lstat(os.path.join(root, relname))
        path = "/" + relname
        is_dir = stat.S_ISDIR(st.st_mode)
        if _deleted(os.path.join(root, relname), st):
            kind = DELETE
        else:
            kind = ADD
            for lower in lowers:
                try:
                    below = os.lstat(os.path.join(lower, relname))
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.ENOTDIR):
                        continue
                    raise
                if stat.S_ISCHR(below.st_mode) and below.st_rdev == 0:
                    break  # deleted in that lower layer: new here
                if is_dir and stat.S_ISDIR(below.st_mode) and _same_dir(st, below):
                    kind = -1  # unchanged directory: no record, but look inside
                else:
                    kind = MODIFY
                break
        if is_dir and kind >= 0:
            changed_dirs.add(path)
        if kind in (ADD, DELETE):
            parent = path.rsplit("/", 1)[0]
            if parent and parent not in changed_dirs:
                found.append(Change(parent, MODIFY))
                changed_dirs.add(parent)
        if kind >= 0:
            found.append(Change(path, kind))
        if is_dir:
            _walk(root, relname, lowers, skip, found, changed_dirs)


def _deleted(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISDIR(st.st_mode) and packing.is_opaque(path)


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    # moby's sameFsTime: equal seconds and equal nanoseconds, or one side has none.
    return a.st_size == b.st_size and a.st_mode == b.st_mode and a.st_mtime_ns == b.st_mtime_ns
