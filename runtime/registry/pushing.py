"""``push``: a local image to a registry as a Docker v2 schema 2 manifest.

Kernel interfaces: TCP sockets (``client``), read(2) of the stored layer tars, and a
gzip spool file per uploaded layer in ``paths.tmp()`` (deleted after the upload).

Per layer, cheapest first: a blob this registry is known to hold for the layer
(``blobinfo``, written by pulls and pushes) is checked with HEAD and skipped (``Layer
already exists``); one held by another repository of the same registry is mounted
(``Mounted from team/base``); otherwise the stored layer tar is gzipped (level 1,
``mtime`` 0, so the same layer always gives the same blob and a second push skips it)
and uploaded monolithically (POST for an upload session, PUT with ``?digest=``); an
upload whose connection breaks midway starts again, up to ``_RETRIES`` times. A
layer that does not compress (random or already-compressed data) goes up as the plain
tar instead, whose digest is its diff id.
Then the config blob, then the manifest under the tag. Up to three layers upload at
once (threads: only in the CLI or a worker process). Owns nothing on disk but the
spools; records the pushed blobs in ``blobinfo`` and the repo digest in the tag store.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime import paths
from runtime.errors import InvalidSpec, KernelError
from runtime.images import archives, references, store
from runtime.registry import blobinfo, manifests
from runtime.registry.client import Registry, raise_for
from runtime.registry.downloads import Progress, short

_TO_DOCKER = {
    "application/vnd.oci.image.layer.v1.tar+gzip": manifests.DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.v1.tar": manifests.DOCKER_LAYER_TAR,
}
_UPLOADS = 3
_EVERY = 0.1
_RETRIES = 3  # fresh uploads of a layer after a broken one
_RETRY_PAUSE = 1  # seconds, times the attempt (docker waits 5, 10, 15)


@dataclass(frozen=True)
class Pushed:
    tag: str
    digest: str  # of the manifest
    size: int  # bytes of the manifest


def _quiet(event: dict[str, object]) -> None:
    pass


def push(
    ref: str,
    *,
    all_tags: bool = False,
    progress: Progress | None = None,
    registry: Registry | None = None,
) -> list[Pushed]:
    """Push the local image ``ref`` (``registry/name[:tag]``), or every local tag of it."""
    emit = progress or _quiet
    parsed = references.parse(ref)
    if parsed.digest is not None:
        raise InvalidSpec("cannot push a digest reference")
    if all_tags:
        if ":" in ref.rsplit("/", 1)[-1]:
            raise InvalidSpec("tag can't be used with --all-tags/-a")
        table = references.tags()
        tags = sorted(
            k.rsplit(":", 1)[1]
            for k in table
            if "@" not in k and k.rsplit(":", 1)[0] == parsed.name
        )
        if not tags:
            raise InvalidSpec(
                f"An image does not exist locally with the tag: {parsed.familiar_name}"
            )
    else:
        tags = [parsed.tag or references.DEFAULT_TAG]
    if registry is None:  # a session of our own: its sockets close when the push ends
        with Registry(parsed.domain) as reg:
            return push(ref, all_tags=all_tags, progress=progress, registry=reg)
    reg = registry
    emit({"status": f"The push refers to repository [{parsed.name}]"})
    done = []
    for tag in tags:
        tagged = references.Reference(parsed.domain, parsed.path, tag, None)
        image_id = references.tags().get(str(tagged))
        if image_id is None:
            raise InvalidSpec(
                f"An image does not exist locally with the tag: {references.familiar(tagged)}"
            )
        done.append(_push_one(reg, tagged, image_id, emit))
    return done


def _push_one(reg: Registry, ref: references.Reference, image_id: str, emit: Progress) -> Pushed:
    config = store.get_config(image_id)
    diff_ids: list[str] = json.loads(config)["rootfs"]["diff_ids"]
    chains = store.chain_ids(diff_ids)
    for diff_id in reversed(diff_ids):
        emit({"status": "Preparing", "id": short(diff_id), "progressDetail": {}})
    with ThreadPoolExecutor(max_workers=_UPLOADS, thread_name_prefix="push") as pool:
        jobs = [
            pool.submit(_push_layer, reg, ref, diff_id, chain, emit)
            for diff_id, chain in zip(diff_ids, chains, strict=True)
        ]
        layers = [job.result() for job in jobs]
    if not _exists(reg, ref.path, image_id):
        _upload_bytes(reg, ref.path, config, image_id)
    doc = {
        "schemaVersion": 2,
        "mediaType": manifests.DOCKER_MANIFEST,
        "config": {"mediaType": manifests.DOCKER_CONFIG, "size": len(config), "digest": image_id},
        "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in layers],
    }
    body = json.dumps(doc, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    reg.call(
        "PUT",
        f"/v2/{ref.path}/manifests/{ref.tag}",
        scopes=_scopes(ref.path),
        headers={"Content-Type": manifests.DOCKER_MANIFEST},
        body=body,
        ok=(200, 201),
        what=f"push the manifest of {references.familiar(ref)}",
    )
    references.set_digest(references.Reference(ref.domain, ref.path, None, digest), image_id)
    emit({"status": f"{ref.tag}: digest: {digest} size: {len(body)}"})
    return Pushed(ref.tag or "", digest, len(body))


def _scopes(repository: str, *more: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull,push", *more)


def _exists(reg: Registry, repository: str, digest: str) -> bool:
    _, resp = reg.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=_scopes(repository))
    assert resp is not None
    if resp.status in (401, 403):
        raise_for(resp, f"push to {reg.endpoint.domain}/{repository}")
    return resp.status == 200


def _push_layer(
    reg: Registry, ref: references.Reference, diff_id: str, chain: str, emit: Progress
) -> manifests.Descriptor:
    shown = short(diff_id)
    here = [i for i in blobinfo.known(diff_id) if i.registry == ref.domain]
    for info in here:
        if info.repository == ref.path and _exists(reg, ref.path, info.digest):
            emit({"status": "Layer already exists", "id": shown, "progressDetail": {}})
            return _descriptor(info)
    for info in here:
        if info.repository != ref.path and _mount(reg, ref.path, info):
            emit({"status": f"Mounted from {info.repository}", "id": shown, "progressDetail": {}})
            _remember(diff_id, ref, _descriptor(info))
            return _descriptor(info)
    # A layer made here before Moorage kept tars (the bootstrapped busybox) is rebuilt
    # by the same helper save uses.
    tar = archives._layer_tar(chain)  # noqa: SLF001 - save's own fallback, shared on purpose
    with _blob_for(tar, diff_id) as (spool, desc):
        digest, size = desc.digest, desc.size
        if _exists(reg, ref.path, digest):
            emit({"status": "Layer already exists", "id": shown, "progressDetail": {}})
        else:
            _upload_layer(reg, ref.path, spool, size, digest, shown, emit)
            emit({"status": "Pushed", "id": shown, "progressDetail": {}})
    _remember(diff_id, ref, desc)
    return desc


def _descriptor(info: blobinfo.BlobInfo) -> manifests.Descriptor:
    return manifests.Descriptor(
        _TO_DOCKER.get(info.mediaType, info.mediaType), info.digest, info.size
    )


def _remember(diff_id: str, ref: references.Reference, desc: manifests.Descriptor) -> None:
    blobinfo.remember(
        diff_id, blobinfo.BlobInfo(desc.digest, desc.size, desc.media_type, ref.domain, ref.path)
    )


def _mount(reg: Registry, repository: str, info: blobinfo.BlobInfo) -> bool:
    query = urllib.parse.urlencode({"mount": info.digest, "from": info.repository})
    _, resp = reg.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/?{query}",
        scopes=_scopes(repository, f"repository:{info.repository}:pull"),
    )
    assert resp is not None
    if resp.status == 202 and resp.headers.get("Location"):  # no mount: drop the session
        reg.request(
            "DELETE",
            urllib.parse.urljoin(resp.url, resp.headers["Location"]),
            scopes=_scopes(repository),
        )
    return resp.status == 201


def _compressible(tar: Path) -> bool:
    """Whether gzip is worth it: a sample of 4 MiB shrinks by at least 10% at level 1.

    Layers of already-compressed or random data are pushed as plain tars (their blob
    digest is then the diff id): gzip would cost seconds per 100 MB and save nothing.
    The answer depends only on the content, so a layer always gives the same blob.
    """
    try:
        with open(tar, "rb") as f:
            sample = f.read(4 << 20)
    except OSError as e:
        raise KernelError.from_oserror(f"read layer {tar.parent.name[:12]}", e) from e
    return len(zlib.compress(sample, 1)) < 0.9 * len(sample)


@contextlib.contextmanager
def _blob_for(tar: Path, diff_id: str) -> Iterator[tuple[Path, manifests.Descriptor]]:
    """The blob to upload for a layer tar: its gzip (in a spool) or the tar itself."""
    if not _compressible(tar):
        yield tar, manifests.Descriptor(manifests.DOCKER_LAYER_TAR, diff_id, tar.stat().st_size)
        return
    with _gzipped(tar) as (spool, digest, size):
        yield spool, manifests.Descriptor(manifests.DOCKER_LAYER_GZIP, digest, size)


@contextlib.contextmanager
def _gzipped(tar: Path) -> Iterator[tuple[Path, str, int]]:
    """The tar gzipped into a spool file: (path, sha256 digest, size)."""
    fd, name = tempfile.mkstemp(prefix="push-", dir=paths.tmp())
    spool = Path(name)
    try:
        digest = hashlib.sha256()
        with open(tar, "rb") as src, os.fdopen(fd, "wb") as out:
            hashing = _Hashing(out, digest)
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0
            ) as gz:
                while chunk := src.read(1 << 20):
                    gz.write(chunk)
        yield spool, "sha256:" + digest.hexdigest(), spool.stat().st_size
    except OSError as e:
        raise KernelError.from_oserror(f"compress layer {tar.parent.name[:12]}", e) from e
    finally:
        spool.unlink(missing_ok=True)


class _Hashing:
    def __init__(self, out: BinaryIO, digest: hashlib._Hash) -> None:
        self._out, self._digest = out, digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


class _Reporting:
    """A file read by http.client for a PUT body, reporting ``Pushing`` progress."""

    def __init__(self, f: BinaryIO, total: int, shown: str, emit: Progress) -> None:
        self._f, self._total, self._shown, self._emit = f, total, shown, emit
        self.sent, self._last = 0, 0.0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.sent += len(data)
        now = time.monotonic()
        if data and now - self._last >= _EVERY:
            self._last = now
            self._emit(
                {
                    "status": "Pushing",
                    "id": self._shown,
                    "progressDetail": {"current": self.sent, "total": self._total},
                }
            )
        return data


def _start_upload(reg: Registry, repository: str) -> str:
    resp = reg.call(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        scopes=_scopes(repository),
        ok=(202,),
        what=f"push to {reg.endpoint.domain}/{repository}",
    )
    location = resp.headers.get("Location")
    if not location:
        raise InvalidSpec("the registry started an upload without a Location")
    return urllib.parse.urljoin(resp.url, location)


def _upload(
    reg: Registry, repository: str, body: BinaryIO | _Reporting, size: int, digest: str
) -> None:
    url = _start_upload(reg, repository)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
    _, resp = reg.request(
        "PUT",
        url,
        scopes=_scopes(repository),
        body=body,  # type: ignore[arg-type]
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
    )
    assert resp is not None
    if resp.status not in (201, 204):
        raise_for(resp, f"upload blob {short(digest)}")


def _upload_layer(
    reg: Registry, repository: str, blob: Path, size: int, digest: str, shown: str, emit: Progress
) -> None:
    """Upload a layer blob; a connection that breaks once bytes went out starts a fresh
    upload after a pause, as docker's ``Retrying in N seconds`` (a registry keeps no
    usable part of a broken monolithic or chunked upload: distribution invalidates it)."""
    for attempt in range(1, _RETRIES + 2):
        try:
            with open(blob, "rb") as f:
                body = _Reporting(f, size, shown, emit)
                _upload(reg, repository, body, size, digest)
            return
        except KernelError:
            if body.sent == 0 or attempt > _RETRIES:
                raise
        except OSError as e:
            raise KernelError.from_oserror(f"read layer blob {shown}", e) from e
        for left in range(attempt * _RETRY_PAUSE, 0, -1):
            emit(
                {
                    "status": f"Retrying in {left} second{'s' if left > 1 else ''}",
                    "id": shown,
                    "progressDetail": {},
                }
            )
            time.sleep(1)


def _upload_bytes(reg: Registry, repository: str, data: bytes, digest: str) -> None:
    _upload(reg, repository, io.BytesIO(data), len(data), digest)
