"""Image manifests over the distribution v2 protocol: fetch, verify, pick a platform.

Kernel interfaces: none of its own (``client``'s sockets). Owns nothing on disk.

Understands Docker v2 schema 2 manifests and manifest lists, and OCI manifests and
indexes (the media types ``archives.oci_layout`` already names). A manifest fetched by
digest must hash to it; a list picks linux on this machine's architecture (and, on arm,
the variant the machine runs), as docker does. Schema 1 manifests (deprecated, signed
JSON) are refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidSpec, NotFound
from runtime.images import config as image_config
from runtime.images.archives.oci_layout import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    blob_name,
)
from runtime.registry.client import Registry, error_text, raise_for

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
LISTS = (DOCKER_LIST, OCI_INDEX)
IMAGES = (DOCKER_MANIFEST, OCI_MANIFEST)
ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX))
_CONFIGS = (DOCKER_CONFIG, OCI_CONFIG)
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    digest: str  # sha256 of ``raw``
    media_type: str
    raw: bytes
    doc: dict[str, Any]

    @property
    def is_list(self) -> bool:
        return self.media_type in LISTS

    def config(self) -> Descriptor:
        desc = descriptor(self.doc.get("config"), "config")
        if desc.media_type not in _CONFIGS:
            raise InvalidSpec(f"unsupported image config type {desc.media_type!r}")
        return desc

    def layers(self) -> list[Descriptor]:
        layers = self.doc.get("layers")
        if not isinstance(layers, list):
            raise InvalidSpec("the manifest has no list of layers")
        return [descriptor(d, "layer") for d in layers]


def descriptor(doc: object, what: str) -> Descriptor:
    if not isinstance(doc, dict) or not isinstance(doc.get("size"), int) or doc["size"] < 0:
        raise InvalidSpec(f"the {what} descriptor has no valid size")
    blob_name(doc.get("digest"))  # refuses anything but sha256:<64 hex>
    return Descriptor(str(doc.get("mediaType") or ""), doc["digest"], doc["size"])


def fetch(registry: Registry, repository: str, reference: str, shown: str) -> Manifest:
    """The manifest ``reference`` (a tag or a digest) of ``repository``; ``shown`` names
    it in errors ('localhost:5000/app:v1')."""
    raw, resp = registry.request(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        scopes=(f"repository:{repository}:pull",),
        headers={"Accept": ACCEPT},
    )
    assert resp is not None
    if resp.status == 404:
        raise NotFound(f"manifest for {shown} not found: {error_text(404, resp.body)}")
    if resp.status != 200:
        raise_for(
            resp,
            f"pull access denied for {shown}"
            if resp.status in (401, 403)
            else f"fetch the manifest of {shown}",
        )
    digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise InvalidSpec(f"the manifest the registry sent for {shown} does not match its digest")
    try:
        doc = json.loads(resp.body)
    except ValueError as e:
        raise InvalidSpec(f"the manifest of {shown} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidSpec(f"the manifest of {shown} is not a JSON object")
    kind = doc.get("mediaType") or (raw.getheader("Content-Type") or "").split(";")[0].strip()
    if kind in _SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidSpec(
            f"{shown} has a schema 1 manifest, which Moorage does not pull; "
            "push it again with a current client"
        )
    if kind not in LISTS + IMAGES:
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else kind
    if kind not in LISTS + IMAGES:
        raise InvalidSpec(f"unsupported manifest type {kind!r} for {shown}")
    return Manifest(digest, kind, resp.body, doc)


def _variant() -> str | None:
    machine = platform.machine()
    return {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8"}.get(machine)


def pick(index: Manifest, shown: str) -> Descriptor:
    """The entry of a manifest list for linux on this machine's architecture."""
    arch = image_config.architecture()
    entries = index.doc.get("manifests")
    if not isinstance(entries, list):
        raise InvalidSpec(f"the manifest list of {shown} has no manifests")
    matches = [
        d
        for d in entries
        if isinstance(d, dict)
        and isinstance(d.get("platform"), dict)
        and d["platform"].get("os") == "linux"
        and d["platform"].get("architecture") == arch
    ]
    variant = _variant()
    exact = [d for d in matches if d["platform"].get("variant") in (None, variant)]
    chosen = (exact or matches)[:1]
    if not chosen:
        raise NotFound(
            f"no matching manifest for linux/{arch} in the manifest list entries of {shown}"
        )
    return descriptor(chosen[0], "manifest")
