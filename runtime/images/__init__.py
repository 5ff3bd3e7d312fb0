"""The local image store: resolve, list, import, tag, and a busybox built from the host.

Kernel interfaces: those of ``store`` (rename for atomic publication) and
``runtime.archive`` (a chrooted child unpacks every layer, overlay whiteouts).

Owns ``runtime.paths.images()``: config blobs and layers (``store``) and the tag map
(``references``). An image is its config blob; its id is the sha256 of that blob. It
never contacts a registry and never deletes anything (``removal`` does rmi and prune;
``layers`` makes images from layers, ``commit``/``copying``/``usage`` the other verbs).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from runtime import paths
from runtime.errors import InvalidSpec, NotFound
from runtime.images import references, store

# ``bootstrap``, ``config`` and ``layers`` load on first use (PEP 562 and imports inside
# the functions below): they bring tarfile, subprocess, calendar and shlex, which
# ``resolve`` on every ``moorage run`` does not need.
_LAZY_SUBMODULES = {"bootstrap", "config", "layers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"runtime.images.{name}")
    raise AttributeError(f"module 'runtime.images' has no attribute {name!r}")


__all__ = [
    "Image",
    "resolve",
    "list_images",
    "import_tar",
    "tag",
    "bootstrap_busybox",
    "ensure_busybox",
]

_FULL_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{1,63})")


@dataclass(frozen=True)
class Image:
    id: str  # 'sha256:<64hex>'
    config: dict = field(hash=False, compare=False)  # the full image config document
    repo_tags: tuple[str, ...]  # ('busybox:latest',), as docker shows them
    size: int  # sum of layer sizes
    created: str  # RFC3339, from the config

    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    def chain_ids(self) -> list[str]:
        return store.chain_ids(self.diff_ids())

    def layer_dirs(self) -> list[Path]:
        """The unpacked layers, lowest first (overlay wants them reversed in lowerdir)."""
        return [store.layer_path(chain) / "diff" for chain in self.chain_ids()]

    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def inspect(self) -> dict[str, Any]:
        """The shape of one element of ``docker image inspect``."""
        from runtime.images import config, layers

        doc = self.config
        shown: dict[str, Any] = {
            "Id": self.id,
            "RepoTags": list(self.repo_tags),
            "RepoDigests": list(references.digests_of(self.id)),
            "Parent": layers.parent_of(self.id),
            "Comment": doc.get("comment", ""),
            "Created": self.created,
            "DockerVersion": doc.get("docker_version", ""),
            "Author": doc.get("author", ""),
            "Config": config.docker_config(doc.get("config") or {}),
            "Architecture": doc.get("architecture", ""),
            "Os": doc.get("os", ""),
        }
        if doc.get("variant"):
            shown["Variant"] = doc["variant"]
        shown["Size"] = self.size
        shown["RootFS"] = {"Type": "layers", "Layers": self.diff_ids()}
        shown["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}
        return shown


def _load(image_id: str, tags: dict[str, str] | None = None) -> Image:
    doc = json.loads(store.get_config(image_id))
    diff_ids = doc.get("rootfs", {}).get("diff_ids", [])
    size = sum(store.layer(chain).size for chain in store.chain_ids(diff_ids))
    return Image(image_id, doc, references.tags_of(image_id, tags), size, doc.get("created", ""))


def resolve(ref: str) -> Image:
    """Find an image by name[:tag], full id (with or without 'sha256:') or unique id prefix."""
    full = _FULL_ID.fullmatch(ref)
    if full:
        try:
            return _load("sha256:" + full[1])
        except NotFound:
            raise NotFound(f"No such image: {ref}") from None
    tags = references.tags()
    try:
        parsed: references.Reference | None = references.parse(ref)
    except InvalidSpec:
        parsed = None
    if parsed is not None and references.key(parsed) in tags:
        return _load(tags[references.key(parsed)], tags)
    prefix = _PREFIX.fullmatch(ref)
    if prefix:
        matches = [i for i in store.image_ids() if i[len("sha256:") :].startswith(prefix[1])]
        if len(matches) == 1:
            return _load(matches[0], tags)
        if len(matches) > 1:
            raise NotFound(f"No such image: {ref} (the prefix matches {len(matches)} images)")
    if parsed is None:
        references.parse(ref)  # raises the reason the reference is malformed
    raise NotFound(f"No such image: {references.familiar(parsed) if parsed else ref}")


def list_images(all: bool = False) -> list[Image]:
    """Every image, newest first.

    ``all`` will also show intermediate images once ``build`` records parents; until
    then every image is a top-level one and both answers are the same.
    """
    from runtime.images import config

    tags = references.tags()
    images = [_load(image_id, tags) for image_id in store.image_ids()]
    return sorted(images, key=lambda i: (config.timestamp_ns(i.created), i.id), reverse=True)


def _create(
    diff_ids: list[str],
    container_config: dict[str, Any],
    history: list[dict],
    created: str,
    reference: references.Reference | None,
    comment: str = "",
    *,
    author: str = "",
    extra: dict[str, Any] | None = None,
) -> Image:
    from runtime.images import config

    doc = config.new_image(
        diff_ids=diff_ids,
        container_config=container_config,
        history=history,
        created=created,
        comment=comment,
        author=author,
    )
    doc.update(extra or {})  # commit's 'container' and 'container_config' keys
    image_id = store.put_config(config.encode(doc))
    if reference is not None:
        references.set_tag(reference, image_id)
    return _load(image_id)


def _tag_reference(reference: str) -> references.Reference:
    parsed = references.parse(reference)
    if parsed.digest is not None:
        raise InvalidSpec(f"refusing to create a tag with a digest reference: {reference}")
    return parsed


def import_tar(
    source: BinaryIO,
    reference: str | None = None,
    changes: Sequence[str] = (),
    message: str = "",
    *,
    trusted: bool = False,
) -> Image:
    """``docker import``: one layer from a rootfs tarball (plain, gzip, bzip2 or xz).

    Setuid files keep their bits, as in Docker, when the caller vouches for the source
    with ``trusted`` (the CLI, an admin); for anyone else (the default: a dashboard
    user's upload) the bits and file capabilities are stripped. Device nodes are
    refused; ``runtime.archive``'s size limits apply. A failed import leaves no layer,
    blob or tag behind.
    """
    from runtime.images import config

    target = _tag_reference(reference) if reference else None
    container_config = config.apply_changes({}, changes)  # bad changes fail before unpacking
    layer = store.add_layer(source, None, allow_devices=False, allow_setuid=trusted)
    created = config.now()
    comment = message or "Imported from -"
    history = [{"created": created, "created_by": "", "comment": comment}]
    return _create([layer.diff_id], container_config, history, created, target, comment)


def tag(image_id_or_ref: str, reference: str) -> None:
    """``docker tag``: point ``reference`` at the image ``image_id_or_ref`` names."""
    image = resolve(image_id_or_ref)
    references.set_tag(_tag_reference(reference), image.id)


def bootstrap_busybox(reference: str = "busybox:latest") -> Image:
    """Build (or find again) the busybox image from the host's static busybox and tag it.

    Deterministic: the same host binary gives the same layer and image id, so a second
    call only re-applies the tag.
    """
    import hashlib
    import tempfile

    from runtime.images import bootstrap, config

    target = _tag_reference(reference)
    host = bootstrap.find()
    created = config.rfc3339(host.mtime * 1_000_000_000)
    with tempfile.TemporaryFile(dir=paths.tmp()) as rootfs:
        bootstrap.write_rootfs(rootfs, host)
        rootfs.seek(0)
        digest = hashlib.sha256()
        while chunk := rootfs.read(1 << 16):
            digest.update(chunk)
        diff_id = "sha256:" + digest.hexdigest()
        if not store.has_layer(diff_id):  # a base layer's chain id is its diff id
            rootfs.seek(0)
            diff_id = store.add_layer(rootfs, None, allow_devices=False, allow_setuid=False).diff_id
    history: list[dict[str, Any]] = [
        {
            "created": created,
            "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id[7:]} in / ",
            "comment": f"busybox {host.version} from the host's {host.path}",
        },
        {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
    ]
    container_config = {"Env": [bootstrap.PATH_ENV], "Cmd": ["sh"]}
    return _create([diff_id], container_config, history, created, target)


def ensure_busybox() -> Image:
    """``busybox:latest`` if it is there, else bootstrap it."""
    try:
        return resolve("busybox:latest")
    except NotFound:
        return bootstrap_busybox()
