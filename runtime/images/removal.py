"""``docker rmi`` and ``docker image prune``: untagging, deleting, and freeing layers.

Kernel interfaces: rename(2)/unlink(2) through ``store.remove_config`` and
``store.remove_layer``, and flock(2) through the tag store.

Follows moby's ``ImageService.ImageDelete``: a name untags, and deletes only when it
was the image's last reference; an id deletes (untagging everything) unless a
container or another repository still needs it; ``force`` lifts the soft conflicts
(stopped containers, several tags) but never the hard ones (a running container, child
images). Deleting an image frees its config and every layer no other image uses, then
quietly deletes its parent if that is now dangling. Layers a container still sits on
are never removed, even after ``rmi -f`` took its image. Owns nothing of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime import images, paths, state
from runtime.containers import store as containers_store
from runtime.errors import Conflict, InvalidSpec, NotFound
from runtime.images import layers, references, store

_HEXPREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")


@dataclass(frozen=True)
class Record:
    action: str  # 'Untagged' or 'Deleted'
    value: str  # 'busybox:latest' or 'sha256:<hex>'

    def __str__(self) -> str:
        return f"{self.action}: {self.value}"


class ImageConflict(Conflict):
    """A conflict that says whether a container is the reason (``used``)."""

    def __init__(self, message: str, *, used: bool = False) -> None:
        super().__init__(message)
        self.used = used


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _users(image_id: str) -> list[tuple[str, bool]]:
    """(container id, running) for every container made from ``image_id``."""
    return [
        (cid, st.status in state.ACTIVE)
        for cid, record, st in containers_store.records_and_states()
        if record.image_id == image_id
    ]


def _refs(image_id: str) -> list[str]:
    return sorted(k for k, v in references.tags().items() if v == image_id)


def _is_id(ref: str, image_id: str) -> bool:
    """Whether ``ref`` named the image by id (prefix) rather than by a tag."""
    match = _HEXPREFIX.fullmatch(ref)
    if match is None or not image_id[len("sha256:") :].startswith(match[1]):
        return False
    try:
        return references.key(references.parse(ref)) not in references.tags()
    except InvalidSpec:
        return True  # 64 hex digits are never a repository name


def remove(ref: str, force: bool = False, prune: bool = True) -> list[Record]:
    """``docker rmi REF``: what was untagged and deleted, in Docker's order."""
    image = images.resolve(ref)
    records: list[Record] = []
    refs = _refs(image.id)
    removed_repository_ref = False
    if not _is_id(ref, image.id):
        parsed = references.parse(ref)
        if not force and len(refs) == 1:
            for cid, _running in _users(image.id):
                shown = references.familiar(parsed)
                raise ImageConflict(
                    f'conflict: unable to remove repository reference "{shown}" (must force)'
                    f" - container {cid[:12]} is using its referenced image "
                    f"{_short(image.id)}",
                    used=True,
                )
        if references.remove_tag(parsed) is not None:
            records.append(Record("Untagged", references.familiar(parsed)))
        if _refs(image.id):
            return records
        removed_repository_ref = True
    elif len(refs) == 1:  # an id with one tag: untag it, unless the delete must fail
        _check(image.id, hard=True, soft=False, stopped=not force)
        for key in refs:
            if references.remove_tag(references.parse(key)) is not None:
                records.append(Record("Untagged", references.familiar(key)))
    _delete(image.id, records, force, prune, quiet=removed_repository_ref)
    return records


def _check(image_id: str, *, hard: bool, soft: bool, stopped: bool | None = None) -> None:
    if stopped is None:
        stopped = soft
    short = _short(image_id)
    users = _users(image_id)
    if hard and layers.children_of(image_id):
        raise ImageConflict(
            f"conflict: unable to delete {short} (cannot be forced) - "
            "image has dependent child images"
        )
    if hard:
        for cid, running in users:
            if running:
                raise ImageConflict(
                    f"conflict: unable to delete {short} (cannot be forced) - "
                    f"image is being used by running container {cid[:12]}",
                    used=True,
                )
    if soft and _refs(image_id):
        raise ImageConflict(
            f"conflict: unable to delete {short} (must be forced) - "
            "image is referenced in multiple repositories"
        )
    if stopped:
        for cid, running in users:
            if not running:
                raise ImageConflict(
                    f"conflict: unable to delete {short} (must be forced) - "
                    f"image is being used by stopped container {cid[:12]}",
                    used=True,
                )


def _dangling(image_id: str) -> bool:
    return not _refs(image_id) and not layers.children_of(image_id)


def _delete(image_id: str, records: list[Record], force: bool, prune: bool, quiet: bool) -> None:
    try:
        _check(image_id, hard=True, soft=not force)
    except ImageConflict as conflict:
        if quiet and (not _dangling(image_id) or conflict.used):
            return
        raise
    parent = layers.parent_of(image_id)
    for key in _refs(image_id):
        if references.remove_tag(references.parse(key)) is not None:
            records.append(Record("Untagged", references.familiar(key)))
    diff_ids = images.resolve(image_id).diff_ids()
    store.remove_config(image_id)
    layers.forget(image_id)
    records.append(Record("Deleted", image_id))
    for chain in reversed(store.chain_ids(diff_ids)):
        if store.images_using_layer(chain) or _container_layer(chain):
            break  # the layers below are shared too
        store.remove_layer(chain)
        records.append(Record("Deleted", chain))
    if prune and parent and parent in store.image_ids():
        _delete(parent, records, False, True, quiet=True)


def _container_layer(chain_id: str) -> bool:
    wanted = str(store.layer_path(chain_id) / "diff")
    for cid in containers_store.ids():
        try:
            if wanted in containers_store.load(cid).layer_dirs:
                return True
        except (NotFound, OSError, ValueError):
            continue
    return False


def layer_sizes() -> dict[str, int]:
    """chain id -> size, for every stored layer (to report the space prune frees)."""
    sizes = {}
    root = paths.images() / "layers"
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            sizes["sha256:" + entry.name] = store.layer("sha256:" + entry.name).size
        except (NotFound, OSError):
            continue
    return sizes


def prune(all: bool = False) -> tuple[list[Record], int]:
    """``docker image prune [-a]``: delete dangling (or all unused) images.

    Returns the records and the bytes of layer content freed. Unlike Docker, ``-a``
    repeats until nothing more can go, so a chain of unused images goes in one call.
    """
    before = layer_sizes()
    records: list[Record] = []
    while True:
        progress = False
        for image_id in store.image_ids():
            if image_id not in store.image_ids():
                continue  # deleted as a parent of an earlier one
            refs = _refs(image_id)
            if layers.children_of(image_id) or (refs and not all):
                continue
            try:
                if refs:
                    for key in refs:
                        records += remove(key, force=False, prune=True)
                else:
                    records += remove(image_id, force=False, prune=True)
                progress = True
            except Conflict:
                continue  # in use: prune leaves it alone
        if not (all and progress):
            break
    # Layers whose image went with ``rmi -f`` while a container sat on them.
    used = {
        chain for image_id in store.image_ids() for chain in images.resolve(image_id).chain_ids()
    }
    for chain in sorted(layer_sizes(), reverse=True):
        if chain not in used and not _container_layer(chain) and store.has_layer(chain):
            store.remove_layer(chain)
            records.append(Record("Deleted", chain))
    freed = sum(size for chain, size in before.items() if Record("Deleted", chain) in records)
    return records, freed
