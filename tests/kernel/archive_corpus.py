"""Builders for image archives in tests: layer tars, docker-archive and OCI layouts.

Everything is made in memory from explicit entries, so hostile archives (names that
leave the archive, wrong digests, lying sizes) are as easy to write as good ones.
Nothing here touches the image store; ``leftovers`` only reads it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from runtime.images import references

MTIME = 1_600_000_000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.mtime = kind, MTIME
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_of(*entries: tuple) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def layer(files: dict[str, bytes]) -> bytes:
    return tar_of(*(entry(name, data=data) for name, data in files.items()))


def config_for(layers: list[bytes], history: list[dict] | None = None, **extra: object) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-09-13T12:26:40Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
        "history": history or [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


@dataclass
class Img:
    layers: list[bytes]  # uncompressed layer tars
    tags: list[str] = field(default_factory=list)
    config: bytes = b""

    def __post_init__(self) -> None:
        self.config = self.config or config_for(self.layers)

    @property
    def id(self) -> str:
        return sha(self.config)


def docker_archive(*images: Img, extra: tuple = (), manifest: object = None) -> bytes:
    """A classic ``docker save`` archive: <config hex>.json, <n>/layer.tar, manifest.json."""
    entries = []
    listed = []
    for img in images:
        names = []
        for lay in img.layers:
            name = f"{sha(lay)[7:]}/layer.tar"
            if name not in [e[0].name for e in entries]:
                entries.append(entry(name, data=lay))
            names.append(name)
        cfg = f"{img.id[7:]}.json"
        entries.append(entry(cfg, data=img.config))
        listed.append({"Config": cfg, "RepoTags": img.tags, "Layers": names})
    body = json.dumps(listed if manifest is None else manifest).encode()
    return tar_of(*entries, *extra, entry("manifest.json", data=body))


def oci_files(*images: Img, gzip_layers: bool = False, lie: dict | None = None) -> dict:
    """The files of an OCI layout (name -> bytes). ``lie`` overrides descriptor fields."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    index = []
    for img in images:
        descs = []
        for lay in img.layers:
            blob = gzip.compress(lay, mtime=0) if gzip_layers else lay
            files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
            kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
            descs.append(
                {
                    "mediaType": kind,
                    "digest": sha(blob),
                    "size": len(blob),
                    **(lie or {}).get("layer", {}),
                }
            )
        files[f"blobs/sha256/{img.id[7:]}"] = img.config
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": img.id,
                    "size": len(img.config),
                    **(lie or {}).get("config", {}),
                },
                "layers": descs,
            }
        ).encode()
        files[f"blobs/sha256/{sha(manifest)[7:]}"] = manifest
        for tag in img.tags or [None]:
            desc = {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(manifest),
                "size": len(manifest),
            }
            if tag:
                desc["annotations"] = {
                    "io.containerd.image.name": tag,
                    "org.opencontainers.image.ref.name": tag.split(":")[-1],
                }
            index.append(desc)
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": index}).encode()
    return files


def oci_archive(*images: Img, **kwargs: object) -> bytes:
    files = oci_files(*images, **kwargs)  # type: ignore[arg-type]
    return tar_of(*(entry(name, data=data) for name, data in files.items()))


def leftovers(root: Path) -> list[str]:
    """Layers, config blobs, tags and scratch entries in the store at ``root``."""
    image = root / "image"
    found = [str(p) for sub in ("layers", "blobs/sha256") for p in (image / sub).glob("*")]
    found += [str(p) for p in (root / "tmp").glob("*")]
    return found + list(references.tags())


def gzip_bomb(files: int, each: int) -> bytes:
    """A gzipped tar of ``files`` files of ``each`` zero bytes: a few KiB that unpack to
    ``files * each`` bytes. Written through the compressor, never held uncompressed."""
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w|", format=tarfile.PAX_FORMAT) as tf,
    ):
        for index in range(files):
            info, _ = entry(f"zeros-{index}")
            info.size = each
            tf.addfile(info, _Zeros(each))
    return out.getvalue()


class _Zeros:
    """``size`` zero bytes, read in chunks (tarfile copies member data with read())."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)
