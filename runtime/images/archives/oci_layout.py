"""The OCI image layout: ``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``.

No kernel interface of its own: it reads through a ``sources.Source`` (a tar archive or
a directory, as ``skopeo copy ... oci:DIR`` makes) and writes through a ``sinks.Sink``.
Every manifest and config read is checked against its descriptor's digest and size;
layer blobs (plain or gzip) are checked by ``store.add_layer`` before they are
published. Nested indexes (multi-platform images) pick this machine's platform.

Names: a manifest's ``io.containerd.image.name`` annotation (what Docker 25+ and
containerd write) is its tag; failing that ``org.opencontainers.image.ref.name`` when
it is a full name (``busybox:1`` or ``localhost/app:v2``); a bare ref name such as
``latest`` names no repository, so that image loads untagged. It never follows a blob
path that is not ``blobs/sha256/<64 hex>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.errors import InvalidSpec
from runtime.images import config as image_config
from runtime.images import references
from runtime.images.archives import loading, sources
from runtime.images.archives.sinks import Sink

LAYOUT = "oci-layout"
INDEX = "index.json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
_LAYERS = {
    OCI_LAYER,
    OCI_LAYER + "+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_DEPTH = 4


def blob_name(digest: object) -> str:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise InvalidSpec(f"unsupported or malformed digest {digest!r} (only sha256 is read)")
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _descriptor(doc: object, what: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("size"), int) or doc["size"] < 0:
        raise InvalidSpec(f"the {what} descriptor has no valid size")
    blob_name(doc.get("digest"))
    return doc


def _read_blob(source: sources.Source, desc: dict[str, Any], what: str) -> bytes:
    name = blob_name(desc["digest"])
    if desc["size"] > sources.MAX_METADATA:
        raise InvalidSpec(f"the {what} {desc['digest']} declares {desc['size']} bytes")
    data = sources.read_small(source, name, what)
    if len(data) != desc["size"]:
        raise InvalidSpec(f"the {what} {desc['digest']} is {len(data)} bytes, not {desc['size']}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
        raise InvalidSpec(f"the {what} does not match its digest {desc['digest']}")
    return data


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidSpec(f"the {what} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidSpec(f"the {what} is not a JSON object")
    return doc


def parse(source: sources.Source) -> list[loading.Candidate]:
    """The images ``index.json`` lists, with manifests and configs verified."""
    layout = _json(sources.read_small(source, LAYOUT, "oci-layout file"), "oci-layout file")
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise InvalidSpec(f"unsupported OCI layout version {layout.get('imageLayoutVersion')!r}")
    index = _json(sources.read_small(source, INDEX, "index"), "index.json")
    candidates: list[loading.Candidate] = []
    for desc in _manifests(index):
        candidates.extend(_images(source, _descriptor(desc, "manifest"), _names(desc), 0))
    if not candidates:
        raise InvalidSpec("index.json lists no images")
    return candidates


def _manifests(index: dict[str, Any]) -> list[Any]:
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise InvalidSpec("index.json has no list of manifests")
    return manifests


def _names(desc: dict[str, Any]) -> list[references.Reference]:
    notes = desc.get("annotations") or {}
    if not isinstance(notes, dict):
        return []
    name = notes.get(IMAGE_NAME)
    if not name:
        ref = notes.get(REF_NAME)
        name = ref if isinstance(ref, str) and ("/" in ref or ":" in ref) else None
    return [loading.tag_reference(name)] if name else []


def _images(
    source: sources.Source, desc: dict[str, Any], tags: list[references.Reference], depth: int
) -> list[loading.Candidate]:
    if depth > _MAX_DEPTH:
        raise InvalidSpec("the OCI index nests too deeply")
    doc = _json(_read_blob(source, desc, "manifest"), "manifest")
    kind = doc.get("mediaType") or desc.get("mediaType")
    if kind in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        return _images(source, _platform(_manifests(doc)), tags, depth + 1)
    if kind not in (OCI_MANIFEST, DOCKER_MANIFEST, None):
        raise InvalidSpec(f"unsupported manifest type {kind!r}")
    config = _read_blob(source, _descriptor(doc.get("config"), "config"), "image config")
    loading.parse_config(config)
    layer_descs = doc.get("layers")
    if not isinstance(layer_descs, list):
        raise InvalidSpec("the manifest has no list of layers")
    refs = []
    for layer in layer_descs:
        layer = _descriptor(layer, "layer")
        if layer.get("mediaType") not in _LAYERS:
            raise InvalidSpec(f"unsupported layer type {layer.get('mediaType')!r}")
        refs.append(loading.LayerRef(blob_name(layer["digest"]), layer["digest"], layer["size"]))
    return [loading.Candidate(config, refs, list(tags))]


def _platform(manifests: list[Any]) -> dict[str, Any]:
    """The entry for linux on this machine's architecture (or the only entry)."""
    if len(manifests) == 1:
        return _descriptor(manifests[0], "manifest")
    arch = image_config.architecture()
    for desc in manifests:
        platform = desc.get("platform") if isinstance(desc, dict) else None
        if isinstance(platform, dict) and (platform.get("os"), platform.get("architecture")) == (
            "linux",
            arch,
        ):
            return _descriptor(desc, "manifest")
    raise InvalidSpec(f"the image index has no manifest for linux/{arch}")


def write(
    sink: Sink,
    images: Sequence[tuple[str, bytes, list[str]]],
    layer_tar: Callable[[str], Path],
    chain_ids: Callable[[bytes], list[str]],
) -> None:
    """Write ``images`` (id, config bytes, familiar tags) as an OCI layout."""
    index: list[dict[str, Any]] = []
    add_dir = getattr(sink, "add_dir", None)
    if add_dir is not None:  # tar readers that do not make parents still find them
        add_dir("blobs")
        add_dir("blobs/sha256")
    for image_id, config, tags in images:
        layers = []
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        for chain, diff_id in zip(chain_ids(config), diff_ids, strict=True):
            path = layer_tar(chain)
            name = blob_name(diff_id)  # uncompressed: the blob digest is the diff id
            if not sink.has(name):
                sink.add_file(name, path)
            layers.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": path.stat().st_size})
        config_name = blob_name(image_id)
        if not sink.has(config_name):
            sink.add_bytes(config_name, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image_id, "size": len(config)},
                "layers": layers,
            },
            separators=(",", ":"),
        ).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        if not sink.has(blob_name(digest)):
            sink.add_bytes(blob_name(digest), manifest)
        desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
        named: list[str | None] = list(tags) or [None]  # an untagged image is listed too
        for tag in named:
            entry = dict(desc)
            if tag is not None:
                ref = references.parse(tag)
                entry["annotations"] = {IMAGE_NAME: str(ref), REF_NAME: ref.tag or ""}
            index.append(entry)
    sink.add_bytes(LAYOUT, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    sink.add_bytes(INDEX, json.dumps(document, separators=(",", ":")).encode())
