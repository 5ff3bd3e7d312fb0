"""Content-addressed storage of image configs and unpacked layers.

Kernel interfaces: rename(2) for atomic publication of blobs and layers; the tar
unpacking itself is ``runtime.archive`` (chrooted child, overlay whiteouts).

Owns, under ``runtime.paths.images()``:

- ``blobs/sha256/<hex>``: image config JSON; the image id is the sha256 of these bytes.
- ``layers/<chain id hex>/``: ``diff/`` (the unpacked layer, an overlay lower dir),
  ``layer.tar`` (the uncompressed tar exactly as received, whose sha256 is the diff id:
  ``save`` writes it out again byte for byte), ``diff_id``, ``size`` and ``parent``
  (absent for a base layer). Layers are shared; a
  layer's users are the images whose ``rootfs.diff_ids`` chain to it
  (``images_using_layer``), so no reference counts are kept.

A layer appears under ``layers/`` only once it is complete (unpacked and its tar kept,
in ``paths.tmp()``) and verified against any digest the caller expects: it is renamed
into place. Layers stored before tars were kept have no ``layer.tar``; ``layer_tar``
says so and ``adopt_layer_tar`` adds one whose digest matches. ``remove_layer`` and
``remove_config`` delete without asking who still uses them: callers (rmi, a failed
load) check ``images_using_layer`` first.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from runtime import paths
from runtime.errors import InvalidSpec, KernelError, NotFound

if TYPE_CHECKING:  # the unpacking code loads with the first layer added, not with every CLI call
    from runtime import archive

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


LAYER_TAR = "layer.tar"


class _Digesting:
    """Passes reads through and hashes them; with ``tee``, also copies them to a file.

    The diff id is the digest of what was read, and the tee keeps those exact bytes.
    Hashing and the tee run in a helper thread (hashlib and file writes release the
    GIL), so they overlap the pipe writes to the unpacking child: sha256 alone costs
    about as much as the unpacking on a machine without SHA instructions. ``digest``
    waits for the thread; ``close`` ends it whatever happened.
    """

    def __init__(self, source: archive.Readable, tee: BinaryIO | None = None) -> None:
        import queue
        import threading

        self._source, self._tee, self._hash = source, tee, hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._failed: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="layer-digest", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._failed is not None:
                continue  # keep draining so the reader never blocks on a full queue
            try:
                self._hash.update(chunk)
                if self._tee is not None:
                    self._tee.write(chunk)
            except BaseException as e:  # noqa: BLE001 - re-raised by digest() in the caller
                self._failed = e

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._chunks.put(data)
        return data

    def close(self) -> None:
        if self._worker.is_alive():
            self._chunks.put(None)
            self._worker.join()

    def digest(self) -> str:
        self.close()
        if self._failed is not None:
            raise self._failed
        return "sha256:" + self._hash.hexdigest()


def add_layer(
    source: archive.Readable,
    parent: str | None,
    *,
    allow_devices: bool,
    allow_setuid: bool,
    diff_id: str | None = None,
    digest: str | None = None,
) -> Layer:
    """Unpack the (possibly compressed) tar ``source`` as a layer on top of ``parent``.

    The uncompressed tar is kept as ``layer.tar`` next to ``diff/``. ``diff_id`` (of the
    uncompressed tar) and ``digest`` (of ``source`` as given, e.g. a gzip blob) are what
    the caller expects: a mismatch is an InvalidSpec and nothing is published. If the
    resulting chain id is already stored, the new copy is dropped (its tar adopted if the
    stored layer has none) and the stored layer returned. On failure nothing is left.
    """
    from runtime import archive

    with _staging() as staging:
        raw = _Digesting(source) if digest is not None else None  # hashing costs: only if asked
        with open(staging / LAYER_TAR, "wb") as tee:
            stream = _Digesting(archive.decompressed(raw or source), tee)
            try:
                size = archive.extract(
                    stream,
                    staging / "diff",
                    whiteouts="overlay",
                    allow_devices=allow_devices,
                    allow_setuid=allow_setuid,
                )
                got = stream.digest()
                raw_digest = raw.digest() if raw is not None else None
            finally:
                stream.close()
                if raw is not None:
                    raw.close()
        os.chmod(staging / LAYER_TAR, 0o600)
        if raw_digest is not None and raw_digest != digest:
            raise InvalidSpec(f"layer blob does not match its digest {digest}")
        if diff_id is not None and got != diff_id:
            raise InvalidSpec(f"layer content is {got}, not the expected diff id {diff_id}")
        chain_id = _register(staging, got, parent, size)
    return layer(chain_id)


def add_layer_file(
    tar: Path, parent: str | None, *, allow_devices: bool, allow_setuid: bool, diff_id: str
) -> Layer:
    """``add_layer`` of an uncompressed tar that is already a file, whose sha256 the
    caller computed as it wrote it (``diff_id``; pull hashes each blob as it arrives).

    The file is hard-linked in as ``layer.tar`` (no copy, no second hash) and the
    unpacking child reads it directly; ``tar`` itself is left for the caller to delete.
    """
    from runtime import archive

    with _staging() as staging:
        os.link(tar, staging / LAYER_TAR)
        os.chmod(staging / LAYER_TAR, 0o600)
        size = archive.extract(
            staging / LAYER_TAR,
            staging / "diff",
            whiteouts="overlay",
            allow_devices=allow_devices,
            allow_setuid=allow_setuid,
        )
        chain_id = _register(staging, diff_id, parent, size)
    return layer(chain_id)


@contextlib.contextmanager
def _staging() -> Iterator[Path]:
    """A new layer directory in ``paths.tmp()`` holding an empty ``diff/``, removed
    afterwards unless ``_register`` published it; OSError inside becomes a KernelError."""
    ensure_dirs()
    try:
        staging = Path(tempfile.mkdtemp(prefix="layer-", dir=paths.tmp()))
    except OSError as e:
        raise KernelError.from_oserror("create a staging directory", e) from e
    try:
        (staging / "diff").mkdir(mode=0o755)
        yield staging
    except OSError as e:
        raise KernelError.from_oserror("store layer", e) from e
    finally:
        if staging.exists():  # it is gone if it was published
            shutil.rmtree(staging)


def _register(staging: Path, diff_id: str, parent: str | None, size: int) -> str:
    chain_id = _chain(parent, diff_id) if parent else diff_id
    if not has_layer(chain_id):
        (staging / "diff_id").write_text(diff_id + "\n")
        (staging / "size").write_text(f"{size}\n")
        if parent:
            (staging / "parent").write_text(parent + "\n")
        _publish(staging, layer_path(chain_id))
    elif not (layer_path(chain_id) / LAYER_TAR).exists():
        os.rename(staging / LAYER_TAR, layer_path(chain_id) / LAYER_TAR)
    return chain_id


def publish_layer(staging: Path, diff_id: str, parent: str | None, size: int) -> Layer:
    """Store a layer the caller built itself in ``staging`` (a new directory in
    ``paths.tmp()`` holding ``diff/`` and ``layer.tar``, whose sha256 is ``diff_id``),
    as ``add_layer`` stores an unpacked one; ``staging`` is gone afterwards."""
    try:
        chain_id = _register(staging, diff_id, parent, size)
    except OSError as e:
        raise KernelError.from_oserror("store layer", e) from e
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return layer(chain_id)


def layer_tar(chain_id: str) -> Path:
    """The uncompressed tar of ``chain_id`` as stored; its sha256 is the layer's diff id.

    NotFound if the layer is missing, or was stored before Moorage kept layer tars.
    """
    path = layer_path(chain_id) / LAYER_TAR
    if path.is_file():
        return path
    if not has_layer(chain_id):
        raise NotFound(f"No such layer: {chain_id}")
    raise NotFound(
        f"layer {chain_id} has no stored tarball (it was stored before Moorage kept them); "
        "remove the image and import or load it again"
    )


def adopt_layer_tar(chain_id: str, tar: Path) -> Path:
    """Move the uncompressed tar file ``tar`` in as ``chain_id``'s ``layer.tar``.

    The file must hash to the layer's diff id (InvalidSpec otherwise) and be on the
    store's filesystem (in ``paths.tmp()``): it is renamed, not copied.
    """
    wanted = layer(chain_id).diff_id
    digest = hashlib.sha256()
    try:
        with open(tar, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if "sha256:" + digest.hexdigest() != wanted:
            raise InvalidSpec(f"the tarball offered for layer {chain_id} is not {wanted}")
        os.chmod(tar, 0o600)
        os.rename(tar, layer_path(chain_id) / LAYER_TAR)
    except OSError as e:
        raise KernelError.from_oserror(f"store the tarball of layer {chain_id}", e) from e
    return layer_path(chain_id) / LAYER_TAR


def remove_layer(chain_id: str) -> None:
    """Delete one layer (already gone is fine). Renamed aside first: never half visible."""
    path = layer_path(chain_id)
    doomed = paths.tmp() / f"removing-{path.name}-{os.getpid()}"
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    except OSError as e:
        raise KernelError.from_oserror(f"remove layer {chain_id}", e) from e
    try:
        shutil.rmtree(doomed)
    except OSError as e:
        raise KernelError.from_oserror(f"remove layer {chain_id}", e) from e


def remove_config(image_id: str) -> None:
    """Delete an image config blob (already gone is fine); tags are the caller's business."""
    try:
        os.unlink(_blob(image_id))
    except FileNotFoundError:
        pass
    except OSError as e:
        raise KernelError.from_oserror(f"remove image {image_id}", e) from e


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
