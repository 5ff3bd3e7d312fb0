"""Storing the images found in an archive, all or nothing.

Kernel interfaces: those of ``runtime.images.store`` (a chrooted child unpacks each
layer; rename(2) publishes it) and the tag store's flock.

Owns nothing of its own: it adds layers, config blobs and tags to the image store. Every
layer is checked against the config's ``rootfs.diff_ids`` (and, for OCI blobs, against
the descriptor's digest) before it is published; if anything fails, the layers and
configs this load added are removed again and no tag is touched, so a hostile or broken
archive leaves no half image. Layers already stored with their tar are not read again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import CleanupError, InvalidSpec, MoorageError
from runtime.images import references, store
from runtime.images.archives.sources import Source, TarFiles

_DIGEST_HEX = 64


@dataclass
class LayerRef:
    name: str  # path of the layer file inside the archive
    digest: str | None = None  # expected sha256 of the file as stored (OCI descriptors)
    size: int | None = None  # size the descriptor declares


@dataclass
class Candidate:
    """An image found in an archive and checked for shape, not yet stored."""

    config: bytes
    layers: list[LayerRef]
    tags: list[references.Reference] = field(default_factory=list)

    @property
    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    def diff_ids(self) -> list[str]:
        return list(parse_config(self.config)["rootfs"]["diff_ids"])


@dataclass(frozen=True)
class Loaded:
    """One image a load stored: its id, the tags it got, and tags it took from others."""

    image_id: str
    tags: tuple[str, ...]  # familiar names, 'busybox:latest'
    replaced: tuple[tuple[str, str], ...] = ()  # (tag, id it pointed at before)


def parse_config(data: bytes) -> dict[str, Any]:
    """The image config document, refused unless it has a usable ``rootfs``."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidSpec(f"the image config is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidSpec("the image config is not a JSON object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidSpec("the image config has no rootfs of type 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str)
        and d.startswith("sha256:")
        and len(d) == 7 + _DIGEST_HEX
        and all(c in "0123456789abcdef" for c in d[7:])
        for d in diff_ids
    ):
        raise InvalidSpec("the image config's rootfs.diff_ids are not sha256 digests")
    return doc


def tag_reference(text: object) -> references.Reference:
    if not isinstance(text, str):
        raise InvalidSpec(f"the archive names an image with a non-string tag {text!r}")
    ref = references.parse(text)
    if ref.digest is not None or ref.tag is None:
        raise InvalidSpec(f"the archive tags an image with a digest reference: {text}")
    return ref


def check(candidate: Candidate) -> None:
    diff_ids = candidate.diff_ids()
    if len(diff_ids) != len(candidate.layers):
        raise InvalidSpec(
            f"image {candidate.image_id} lists {len(candidate.layers)} layers but its "
            f"config has {len(diff_ids)} diff ids"
        )


def store_all(source: Source, candidates: list[Candidate]) -> list[Loaded]:
    """Store every candidate's layers and config, then tag them; all or nothing."""
    for candidate in candidates:
        check(candidate)
    added_layers: list[str] = []
    added_configs: list[str] = []
    try:
        for candidate in candidates:
            _store_layers(source, candidate, added_layers)
        for candidate in candidates:
            if candidate.image_id not in store.image_ids():
                added_configs.append(store.put_config(candidate.config))
    except BaseException as first:
        try:
            _undo(added_layers, added_configs)
        except MoorageError as e:
            raise CleanupError(f"could not remove what the failed load stored: {e}", first) from e
        raise
    return [_tag(c) for c in _merged(candidates)]


def _store_layers(source: Source, candidate: Candidate, added: list[str]) -> None:
    diff_ids = candidate.diff_ids()
    chains = store.chain_ids(diff_ids)
    layers = zip(candidate.layers, diff_ids, chains, strict=True)
    for index, (ref, diff_id, chain) in enumerate(layers):
        if store.has_layer(chain) and (store.layer_path(chain) / store.LAYER_TAR).is_file():
            continue
        if ref.size is not None and source.size(ref.name) != ref.size:
            raise InvalidSpec(
                f"layer {ref.name} is {source.size(ref.name)} bytes but its descriptor "
                f"declares {ref.size}"
            )
        existed = store.has_layer(chain)
        if isinstance(source, TarFiles):  # a pull: the tar file is the one to keep
            with source.layer_tar(ref.name) as (tar, got):
                try:
                    if got != diff_id:
                        raise InvalidSpec(
                            f"layer content is {got}, not the expected diff id {diff_id}"
                        )
                    store.add_layer_file(
                        tar,
                        chains[index - 1] if index else None,
                        allow_devices=False,
                        allow_setuid=True,
                        diff_id=got,
                    )
                except InvalidSpec as e:
                    raise InvalidSpec(f"layer {ref.name}: {e}") from e
            if not existed:
                added.append(chain)
            continue
        with source.open(ref.name) as stream:
            try:
                store.add_layer(
                    stream,
                    chains[index - 1] if index else None,
                    allow_devices=False,
                    allow_setuid=True,  # images carry su, passwd, ping: as docker load keeps
                    diff_id=diff_id,
                    # An uncompressed blob's digest is its diff id: one check covers both.
                    digest=None if ref.digest == diff_id else ref.digest,
                )
            except InvalidSpec as e:
                raise InvalidSpec(f"layer {ref.name}: {e}") from e
        if not existed:
            added.append(chain)


def _undo(layers: list[str], configs: list[str]) -> None:
    for image_id in configs:
        store.remove_config(image_id)
    for chain in reversed(layers):
        if not store.images_using_layer(chain):
            store.remove_layer(chain)


def _merged(candidates: list[Candidate]) -> list[Candidate]:
    """One entry per image id, in archive order, with the tags of every mention."""
    by_id: dict[str, Candidate] = {}
    for c in candidates:
        seen = by_id.setdefault(c.image_id, Candidate(c.config, c.layers, []))
        seen.tags.extend(t for t in c.tags if t not in seen.tags)
    return list(by_id.values())


def _tag(candidate: Candidate) -> Loaded:
    before = references.tags()
    replaced = []
    for ref in candidate.tags:
        old = before.get(str(ref))
        if old is not None and old != candidate.image_id:
            replaced.append((references.familiar(ref), old))
        references.set_tag(ref, candidate.image_id)
    return Loaded(
        candidate.image_id,
        tuple(references.familiar(t) for t in candidate.tags),
        tuple(replaced),
    )
