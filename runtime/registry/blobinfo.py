"""What the engine knows about where each layer lives in registries (docker's v2metadata).

Kernel interfaces: open(2) and rename(2) (``store.write_atomic``).

Owns ``<images>/distribution/<diff id hex>.json``: a list of ``{"digest", "size",
"mediaType", "registry", "repository"}`` records, one per compressed blob known to hold
the layer with that diff id. Pull writes one per layer it sees; push writes one per
layer it uploads. Push reads them to skip blobs a registry already has (HEAD) and to
mount a blob from another repository of the same registry instead of uploading it.
They are hints: every use is checked against the registry, so a stale record costs one
request and nothing else. Records are tiny and never deleted by rmi.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime import paths
from runtime.images import store

_KEEP = 16  # records per layer: enough for a few registries and repositories


@dataclass(frozen=True)
class BlobInfo:
    digest: str  # sha256 of the blob as stored in the registry (compressed)
    size: int
    mediaType: str  # noqa: N815 - the manifest's own spelling
    registry: str  # the reference domain: '127.0.0.1:5000', 'docker.io'
    repository: str  # 'team/app'


def _file(diff_id: str) -> Path:
    return paths.images() / "distribution" / f"{diff_id.removeprefix('sha256:')}.json"


def known(diff_id: str) -> list[BlobInfo]:
    try:
        records = json.loads(_file(diff_id).read_bytes())
        return [BlobInfo(**r) for r in records]
    except (OSError, ValueError, TypeError):
        return []  # a hint that cannot be read is no hint


def remember(diff_id: str, info: BlobInfo) -> None:
    records = [r for r in known(diff_id) if r != info]
    records.insert(0, info)
    path = _file(diff_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    store.write_atomic(path, json.dumps([asdict(r) for r in records[:_KEEP]]).encode())
