"""Content-addressed storage of image configs and unpacked layers.

Kernel interfaces: rename(2) for atomic publication of blobs and layers; the tar
unpacking itself is ``runtime.archive`` (chrooted child, overlay whiteouts).

Owns, under ``runtime.paths.images()``:

- ``blobs/sha256/<hex>``: image config JSON; the image id is the sha256 of these bytes.
- ``layers/<chain id hex>/``: ``diff/`` (the unpacked layer, an overlay lower dir),
  ``diff_id``, ``size`` and ``parent`` (absent for a base layer). Layers are shared; a
  layer's users are the images whose ``rootfs.diff_ids`` chain to it
  (``images_using_layer``), so no reference counts are kept.

A layer appears under ``layers/`` only once it is complete: it is unpacked in
``paths.tmp()`` and renamed into place. It never deletes layers or blobs (rmi does).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime import archive, paths
from runtime.errors import KernelError, NotFound

_ID = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Layer:
    chain_id: str  # 'sha256:<hex>'
    diff_id: str  # 'sha256:<hex>' of the uncompressed tar stream
    size: int  # bytes of file content
    parent: str | None  # the chain id below, None for a base layer


def ensure_dirs() -> None:
    # 0700 like /var/lib/docker: layers hold setuid files and foreign uids.
    for sub in ("", "blobs", "blobs/sha256", "layers"):
        (paths.images() / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and rename(2)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise KernelError.from_oserror(f"write {path}", e) from e


# --- image configs -------------------------------------------------------------------


def _blob(image_id: str) -> Path:
    if not _ID.fullmatch(image_id):
        raise NotFound(f"No such image: {image_id}")
    return paths.images() / "blobs" / "sha256" / image_id[len("sha256:") :]


def put_config(data: bytes) -> str:
    """Store an image config blob; return its id. Storing the same bytes twice is a no-op."""
    ensure_dirs()
    image_id = "sha256:" + hashlib.sha256(data).hexdigest()
    path = _blob(image_id)
    if not path.exists():
        write_atomic(path, data)
    return image_id


def get_config(image_id: str) -> bytes:
    """The config bytes of ``image_id``, checked against the id."""
    try:
        data = _blob(image_id).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"No such image: {image_id}") from None
    except OSError as e:
        raise KernelError.from_oserror(f"read image {image_id}", e) from e
    if "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
        raise KernelError(
            f"read image {image_id}", errno.EUCLEAN, "its config does not match its id"
        )
    return data


def image_ids() -> list[str]:
    try:
        names = os.listdir(paths.images() / "blobs" / "sha256")
    except FileNotFoundError:
        return []
    return sorted(f"sha256:{n}" for n in names if _ID.fullmatch(f"sha256:{n}"))


# --- layers --------------------------------------------------------------------------


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + ' ' + diff(Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(_chain(chains[-1], diff_id) if chains else diff_id)
    return chains


def _chain(parent: str, diff_id: str) -> str:
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def layer_path(chain_id: str) -> Path:
    if not _ID.fullmatch(chain_id):
        raise NotFound(f"No such layer: {chain_id}")
    return paths.images() / "layers" / chain_id[len("sha256:") :]


def layer(chain_id: str) -> Layer:
    path = layer_path(chain_id)
    try:
        diff_id = (path / "diff_id").read_text().strip()
        size = int((path / "size").read_text())
        parent = (path / "parent").read_text().strip() if (path / "parent").exists() else None
    except FileNotFoundError:
        raise NotFound(f"No such layer: {chain_id}") from None
    except OSError as e:
        raise KernelError.from_oserror(f"read layer {chain_id}", e) from e
    return Layer(chain_id, diff_id, size, parent)


def has_layer(chain_id: str) -> bool:
    return layer_path(chain_id).is_dir()


class _Digesting:
    """Passes reads through and hashes them: the diff id is the digest of what was read."""

    def __init__(self, source: archive.Readable) -> None:
        self._source, self.hash = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.hash.update(data)
        return data


def add_layer(
    source: archive.Readable, parent: str | None, *, allow_devices: bool, allow_setuid: bool
) -> Layer:
    """Unpack the (possibly compressed) tar ``source`` as a layer on top of ``parent``.

    If the resulting chain id is already stored, the new copy is dropped and the stored
    layer returned. On failure nothing is left behind.
    """
    ensure_dirs()
    try:
        staging = Path(tempfile.mkdtemp(prefix="layer-", dir=paths.tmp()))
    except OSError as e:
        raise KernelError.from_oserror("create a staging directory", e) from e
    try:
        (staging / "diff").mkdir(mode=0o755)
        stream = _Digesting(archive.decompressed(source))
        size = archive.extract(
            stream,
            staging / "diff",
            whiteouts="overlay",
            allow_devices=allow_devices,
            allow_setuid=allow_setuid,
        )
        diff_id = "sha256:" + stream.hash.hexdigest()
        chain_id = _chain(parent, diff_id) if parent else diff_id
        if not has_layer(chain_id):
            (staging / "diff_id").write_text(diff_id + "\n")
            (staging / "size").write_text(f"{size}\n")
            if parent:
                (staging / "parent").write_text(parent + "\n")
            _publish(staging, layer_path(chain_id))
    except OSError as e:
        raise KernelError.from_oserror("store layer", e) from e
    finally:
        if staging.exists():  # it is gone if it was published
            shutil.rmtree(staging)
    return layer(chain_id)


def _publish(staging: Path, final: Path) -> None:
    try:
        os.rename(staging, final)
    except OSError as e:
        # Someone stored the same layer meanwhile: theirs is as good as ours.
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise


def images_using_layer(chain_id: str) -> list[str]:
    """Ids of the images whose layer stack includes ``chain_id`` (for rmi and prune)."""
    users = []
    for image_id in image_ids():
        diff_ids = json.loads(get_config(image_id)).get("rootfs", {}).get("diff_ids", [])
        if chain_id in chain_ids(diff_ids):
            users.append(image_id)
    return users
