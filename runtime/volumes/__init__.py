"""Volumes: named and anonymous data directories that outlive containers, and the
planning of every mount a container asks for (volumes, bind mounts, tmpfs).

- ``store``: the volume store under ``paths.volumes()`` (create, get, list, remove,
  prune, who uses what). Never mounts anything on the host.
- ``parsing``: ``-v``, ``--mount``, ``--tmpfs`` and ``--volumes-from`` as Docker reads
  them. Pure.
- ``planning``: from a spec and an image config to the record's bind and tmpfs entries
  and ``inspect``'s ``Mounts``; ``containers.create`` calls it, ``containers.remove``
  releases what it made.
- ``copyup``: seeds an empty volume with the image's content; runs in the container's
  init, inside its mount namespace (called from ``runtime.rootfs``).

The mounts themselves happen inside each container's mount namespace
(``runtime.rootfs``), so nothing here can leave a mount behind on the host.
"""

from __future__ import annotations

from runtime.volumes.planning import (
    Prepared,
    discard,
    host_config_mounts,
    prepare,
    release,
    validate,
    with_anonymous_volumes,
)
from runtime.volumes.store import (
    ANONYMOUS_LABEL,
    Volume,
    create,
    get,
    list_volumes,
    locked,
    prune,
    remove,
    size,
    usage,
)

__all__ = [
    "ANONYMOUS_LABEL",
    "Prepared",
    "Volume",
    "create",
    "discard",
    "get",
    "host_config_mounts",
    "list_volumes",
    "locked",
    "prepare",
    "prune",
    "release",
    "remove",
    "size",
    "usage",
    "validate",
    "with_anonymous_volumes",
]
