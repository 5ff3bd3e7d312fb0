"""The ``docker save`` archive format: ``manifest.json``, ``repositories``, configs, layers.

No kernel interface of its own: it reads through a ``sources.Source`` and writes
through a ``sinks.Sink``. Written archives have the classic layout (Docker before 25,
what ``skopeo copy ... docker-archive:`` and ``docker load`` read)::

    <chain hex>/layer.tar   <chain hex>/VERSION   <chain hex>/json
    <config hex>.json       manifest.json         repositories

Read archives may also be Docker 25+ ones (``blobs/sha256/...`` named by
``manifest.json``) and skopeo's (``<hex>.tar`` files, legacy dirs as symlinks).
Layers may be gzip-compressed on load. It never resolves a path outside the archive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.errors import InvalidSpec
from runtime.images.archives import loading, sources
from runtime.images.archives.sinks import Sink

MANIFEST = "manifest.json"
REPOSITORIES = "repositories"


def parse(source: sources.Source) -> list[loading.Candidate]:
    """The images ``manifest.json`` lists, with their configs read and shapes checked."""
    try:
        manifest = json.loads(sources.read_small(source, MANIFEST, "manifest"))
    except ValueError as e:
        raise InvalidSpec(f"manifest.json is not valid JSON: {e}") from None
    if not isinstance(manifest, list) or not manifest:
        raise InvalidSpec("manifest.json lists no images")
    candidates = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidSpec("a manifest.json entry has no Config")
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidSpec("a manifest.json entry has no list of Layers")
        config_name = sources.clean(entry["Config"], "config path")
        config = sources.read_small(source, config_name, "image config")
        loading.parse_config(config)
        refs = [loading.LayerRef(sources.clean(name, "layer path")) for name in layers]
        for ref in refs:
            source.size(ref.name)  # refuses a missing file or a link leaving the archive
        tags = [loading.tag_reference(t) for t in entry.get("RepoTags") or []]
        candidates.append(loading.Candidate(config, refs, tags))
    return candidates


def write(
    sink: Sink,
    images: Sequence[tuple[str, bytes, list[str]]],
    layer_tar: Callable[[str], Path],
    chain_ids: Callable[[bytes], list[str]],
) -> None:
    """Write ``images`` (id, config bytes, familiar tags) in the classic docker layout."""
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image_id, config, tags in images:
        chains = chain_ids(config)
        layer_names = []
        for index, chain in enumerate(chains):
            hexid = chain.removeprefix("sha256:")
            name = f"{hexid}/layer.tar"
            if not sink.has(name):
                legacy: dict[str, Any] = {"id": hexid}
                if index:
                    legacy["parent"] = chains[index - 1].removeprefix("sha256:")
                legacy["created"] = "1970-01-01T00:00:00Z"
                legacy["os"] = "linux"
                _add_dir(sink, hexid)
                sink.add_bytes(f"{hexid}/VERSION", b"1.0")
                sink.add_bytes(f"{hexid}/json", json.dumps(legacy).encode())
                sink.add_file(name, layer_tar(chain))
            layer_names.append(name)
        config_name = image_id.removeprefix("sha256:") + ".json"
        if not sink.has(config_name):
            sink.add_bytes(config_name, config)
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
        for tag in tags:
            repo, _, name = tag.rpartition(":")
            if chains:
                repositories.setdefault(repo, {})[name] = chains[-1].removeprefix("sha256:")
    sink.add_bytes(MANIFEST, json.dumps(manifest, separators=(",", ":")).encode())
    if repositories:
        sink.add_bytes(REPOSITORIES, json.dumps(repositories).encode() + b"\n")


def _add_dir(sink: Sink, name: str) -> None:
    add_dir = getattr(sink, "add_dir", None)
    if add_dir is not None:
        add_dir(name)
