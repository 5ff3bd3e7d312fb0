"""``docker history`` and ``docker system df``: reading what images and containers cost.

Kernel interfaces: lstat(2) over container upper dirs and volume data (``du``-style
sizes, each inode counted once). Reads the image store, the container records and,
when present, the volume store; owns nothing and never writes.

History follows moby's ``ImageService.ImageHistory``: one row per history entry, newest
first, a layer's size on rows that made one and 0 on ``empty_layer`` rows; the top row
carries the image id, each next row its parent's id while parents are known locally,
the rest ``<missing>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from runtime import images, paths, state
from runtime.containers import store as containers_store
from runtime.errors import NotFound
from runtime.images import config, layers, references, store

MISSING = "<missing>"


@dataclass(frozen=True)
class HistoryRow:
    id: str  # 'sha256:<hex>' or '<missing>'
    created: int  # unix seconds
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...] = ()


def history(ref: str) -> list[HistoryRow]:
    image = images.resolve(ref)
    diff_ids = image.diff_ids()
    chains = store.chain_ids(diff_ids)
    rows: list[dict[str, Any]] = []
    layer_counter = 0
    for entry in image.config.get("history") or []:
        size = 0
        if not entry.get("empty_layer") and layer_counter < len(chains):
            try:
                size = store.layer(chains[layer_counter]).size
            except NotFound:
                size = 0
            layer_counter += 1
        rows.insert(
            0,
            {
                "created": config.timestamp_ns(entry.get("created", "")) // 1_000_000_000,
                "created_by": entry.get("created_by", ""),
                "size": size,
                "comment": entry.get("comment", ""),
            },
        )
    table = references.tags()
    ids: list[str] = []
    current = image.id
    while current and len(ids) < len(rows):
        ids.append(current)
        current = layers.parent_of(current)
        if current and current not in store.image_ids():
            break
    return [
        HistoryRow(
            id=ids[i] if i < len(ids) else MISSING,
            tags=references.tags_of(ids[i], table) if i < len(ids) else (),
            **row,
        )
        for i, row in enumerate(rows)
    ]


# --- system df -----------------------------------------------------------------------


def dir_size(path: str) -> int:
    """Bytes under ``path`` like moby's ``directory.Size``: each inode once, no dirs."""
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


@dataclass
class ImageUsage:
    image: images.Image
    shared_size: int
    containers: int

    @property
    def unique_size(self) -> int:
        return self.image.size - self.shared_size


@dataclass
class ContainerUsage:
    record: containers_store.Record
    status: str
    size_rw: int
    volumes: int
    run_state: state.State | None = None  # for ps-style STATUS ("Exited (0) 2 minutes ago")


@dataclass
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    layers_size: int
    images: list[ImageUsage] = field(default_factory=list)
    containers: list[ContainerUsage] = field(default_factory=list)
    volumes: list[VolumeUsage] = field(default_factory=list)


def disk_usage() -> DiskUsage:
    """What ``system df`` reports: images, containers, local volumes (no build cache)."""
    containers = []
    for cid, record, st in containers_store.records_and_states():
        mounts = [m for m in record.extra.get("mounts", []) if m.get("Type") == "volume"]
        containers.append(
            ContainerUsage(
                record, st.status, dir_size(str(paths.container(cid) / "upper")), len(mounts), st
            )
        )
    all_images = images.list_images(all=True)
    layer_users: dict[str, int] = {}
    for image in all_images:
        for chain in image.chain_ids():
            layer_users[chain] = layer_users.get(chain, 0) + 1
    sizes: dict[str, int] = {}
    for chain in layer_users:
        try:
            sizes[chain] = store.layer(chain).size
        except NotFound:
            sizes[chain] = 0
    usage = DiskUsage(layers_size=sum(sizes.values()))
    for image in all_images:
        shared = sum(sizes[c] for c in image.chain_ids() if layer_users[c] > 1)
        users = sum(1 for c in containers if c.record.image_id == image.id)
        usage.images.append(ImageUsage(image, shared, users))
    usage.containers = containers
    usage.volumes = _volumes()
    return usage


def _volumes() -> list[VolumeUsage]:
    try:
        from runtime.volumes import store as volumes_store
    except ImportError:  # the volume store is optional to this report
        return []
    users = volumes_store.usage()
    return [
        VolumeUsage(v.name, len(users.get(v.name, [])), dir_size(str(v.mountpoint)))
        for v in volumes_store.list_volumes()
    ]
