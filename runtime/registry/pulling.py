"""``pull``: images from a registry into the local store.

Kernel interfaces: those of ``client`` (sockets), ``downloads`` (spool files) and the
image store (a chrooted child unpacks each layer; rename(2) publishes it).

Resolves the reference's tag or digest to a manifest (a manifest list picks linux on
this machine's architecture), fetches and verifies the image config, then hands the
missing layers to ``downloads`` and stores the image with ``archives.loading.store_all``
(the path ``load`` takes: each layer checked against its blob digest and its diff id,
nothing kept from a failed pull). Layers already stored report ``Already exists`` and
are not fetched. Records the repo digest (``name@sha256:...``) and, per layer, which
blob held it (``blobinfo``, for cross-repository mounts on push).

Progress goes to a callback as docker's JSON messages (``{"status", "id",
"progressDetail"}``), which the CLI draws and the dashboard can forward as they are.
It never touches a tag when the pull fails.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidSpec
from runtime.images import references, store
from runtime.images.archives import loading
from runtime.registry import blobinfo, manifests
from runtime.registry.client import Registry
from runtime.registry.downloads import Downloads, Progress, short

LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)


@dataclass(frozen=True)
class Pulled:
    reference: str  # what was pulled, fully qualified: 'docker.io/library/busybox:latest'
    image_id: str
    digest: str  # the repo digest: the manifest (or manifest list) the tag named
    downloaded: bool  # False when the image and its tag were already there


def _quiet(event: dict[str, Any]) -> None:
    pass


def pull(
    ref: str,
    *,
    all_tags: bool = False,
    progress: Progress | None = None,
    registry: Registry | None = None,
) -> list[Pulled]:
    """Pull ``ref`` (``name[:tag]`` or ``name@sha256:...``), or every tag of it."""
    emit = progress or _quiet
    parsed = references.parse(ref)
    if registry is None:  # a session of our own: its sockets close when the pull ends
        with Registry(parsed.domain) as reg:
            return pull(ref, all_tags=all_tags, progress=progress, registry=reg)
    reg = registry
    if not all_tags:
        return [_pull_one(reg, parsed, emit)]
    if parsed.digest is not None or ":" in ref.rsplit("/", 1)[-1]:
        raise InvalidSpec("tag can't be used with --all-tags/-a")
    pulled = [
        _pull_one(
            reg, references.Reference(parsed.domain, parsed.path, tag, None), emit, tell=False
        )
        for tag in list_tags(reg, parsed.path)
    ]
    _status(emit, any(p.downloaded for p in pulled), parsed.familiar_name)
    return pulled


def _status(emit: Progress, fresh: bool, shown: str) -> None:
    emit(
        {
            "status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
            f"for {shown}"
        }
    )


def list_tags(reg: Registry, repository: str) -> list[str]:
    """Every tag of ``repository``, following the registry's pagination."""
    tags: list[str] = []
    path: str | None = f"/v2/{repository}/tags/list"
    while path:
        resp = reg.call(
            "GET",
            path,
            scopes=(f"repository:{repository}:pull",),
            what=f"list the tags of {repository}",
        )
        found = resp.json().get("tags") or []
        tags.extend(t for t in found if isinstance(t, str))
        link = resp.headers.get("Link", "")
        path = None
        if 'rel="next"' in link and "<" in link:
            target = link[link.index("<") + 1 : link.index(">")]
            path = urllib.parse.urljoin(resp.url, target)
    return sorted(set(tags))


def fetch_config(reg: Registry, repository: str, desc: manifests.Descriptor) -> bytes:
    if desc.size > 16 << 20:
        raise InvalidSpec(f"the image config {desc.digest} declares {desc.size} bytes")
    resp = reg.call(
        "GET",
        f"/v2/{repository}/blobs/{desc.digest}",
        scopes=(f"repository:{repository}:pull",),
        what=f"fetch the image config {short(desc.digest)}",
    )
    if "sha256:" + hashlib.sha256(resp.body).hexdigest() != desc.digest:
        raise InvalidSpec(f"the image config does not match its digest {desc.digest}")
    return resp.body


def _pull_one(
    reg: Registry, ref: references.Reference, emit: Progress, *, tell: bool = True
) -> Pulled:
    """Pull one tag or digest; ``tell``: end with the ``Status:`` line (not for -a)."""
    shown = references.familiar(ref)
    wanted = ref.digest or ref.tag or references.DEFAULT_TAG
    top = manifests.fetch(reg, ref.path, wanted, shown)
    # After the manifest, as docker: a missing image or registry gets only the error.
    emit({"status": f"Pulling from {ref.path}", "id": wanted})
    image = top
    if top.is_list:
        image = manifests.fetch(reg, ref.path, manifests.pick(top, shown).digest, shown)
        if image.is_list:
            raise InvalidSpec(f"the manifest list of {shown} points at another list")
    config = fetch_config(reg, ref.path, image.config())
    layers = image.layers()
    for desc in layers:
        if desc.media_type not in LAYER_TYPES:
            raise InvalidSpec(f"{shown} has a layer of unsupported type {desc.media_type!r}")
    tag = None if ref.digest else references.Reference(ref.domain, ref.path, ref.tag, None)
    candidate = loading.Candidate(
        config, [loading.LayerRef(d.digest, d.digest) for d in layers], [tag] if tag else []
    )
    loading.check(candidate)
    diff_ids = candidate.diff_ids()
    missing = []
    for desc, chain in zip(layers, store.chain_ids(diff_ids), strict=True):
        if store.has_layer(chain) and (store.layer_path(chain) / store.LAYER_TAR).is_file():
            emit({"status": "Already exists", "id": short(desc.digest), "progressDetail": {}})
        else:
            emit({"status": "Pulling fs layer", "id": short(desc.digest), "progressDetail": {}})
            missing.append(desc)
    had = references.tags().get(str(tag)) if tag else None
    existed = candidate.image_id in store.image_ids()
    downloads = Downloads(reg, ref.path, missing, emit)
    try:
        loaded = loading.store_all(downloads, [candidate])
    finally:
        downloads.close()
    image_id = loaded[0].image_id
    for desc, diff_id in zip(layers, diff_ids, strict=True):
        blobinfo.remember(
            diff_id,
            blobinfo.BlobInfo(desc.digest, desc.size, desc.media_type, ref.domain, ref.path),
        )
    references.set_digest(references.Reference(ref.domain, ref.path, None, top.digest), image_id)
    emit({"status": f"Digest: {top.digest}"})
    fresh = bool(missing) or not existed or (tag is not None and had != image_id)
    if tell:
        _status(emit, fresh, shown)
    return Pulled(str(ref), image_id, top.digest, fresh)
