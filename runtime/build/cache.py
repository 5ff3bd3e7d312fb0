"""The classic builder's layer cache: (parent image, step) → the image that step made.

Kernel interface: rename(2) (through ``store.write_atomic``) for each index entry.
Owns ``<images>/build-cache/``: one small file per cache entry, named by
sha256(parent id + NUL + step key) and holding the resulting image id. The step key is
what Docker puts in ``ContainerConfig.Cmd``: the instruction text as the builder ran it,
with build args in effect for RUN (``|1 A=b /bin/sh -c ...``) and, for COPY/ADD, a
checksum of the copied content instead of the source names (``COPY file:<sha> in /x``).
A hit is only a hit while the image still exists, so ``rmi`` needs no hook here. It never
stores layers or configs itself: the images it points to live in ``runtime.images``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runtime import paths
from runtime.errors import KernelError, NotFound
from runtime.images import store


def _directory() -> Path:
    return paths.images() / "build-cache"


def _entry(parent_id: str, key: str) -> Path:
    name = hashlib.sha256(f"{parent_id}\0{key}".encode()).hexdigest()
    return _directory() / name


def lookup(parent_id: str, key: str) -> str | None:
    """The image a previous build made from ``parent_id`` with step ``key``, if any."""
    try:
        image_id = _entry(parent_id, key).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KernelError.from_oserror("read the build cache", e) from e
    try:
        store.get_config(image_id)
    except NotFound:
        return None  # removed since: a miss
    return image_id


def record(parent_id: str, key: str, image_id: str) -> None:
    """Remember that step ``key`` on ``parent_id`` made ``image_id``."""
    try:
        _directory().mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise KernelError.from_oserror("create the build cache", e) from e
    store.write_atomic(_entry(parent_id, key), image_id.encode() + b"\n")


def clear() -> int:
    """Forget every entry (``builder prune``); return how many were dropped."""
    count = 0
    try:
        names = os.listdir(_directory())
    except FileNotFoundError:
        return 0
    for name in names:
        try:
            os.unlink(_directory() / name)
            count += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            raise KernelError.from_oserror("prune the build cache", e) from e
    return count
