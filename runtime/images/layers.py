"""Layers from overlay upper dirs, and images from a parent plus new layers.

Kernel interfaces: lstat/listxattr/getxattr(2) to read an overlayfs upper dir (whiteouts
are 0/0 char devices, opaque directories carry ``trusted.overlay.opaque=y``); the
unpacking of the resulting tar is ``store.add_layer`` (a chrooted child).

This is the primitive ``commit`` and ``build`` share: ``write_changes_tar`` turns an
upper dir into an OCI layer tar (``.wh.NAME`` and ``.wh..wh..opq``; entries sorted;
mtimes, owners, modes, ``user.*``/``security.capability`` xattrs and hardlinks kept;
overlay's own ``trusted.overlay.*`` xattrs never leave the host), ``commit_layer``
stores it, and ``create_image`` writes the image config on top of a parent image.

Owns ``<images>/metadata/<image hex>/parent``: the local parent of an image made here
(what ``docker image inspect`` shows as ``Parent``; it is not part of the config, as in
Docker). It never reads the upper dir of a running container through the merged
mount, and never modifies the upper dir it packs.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from runtime import paths
from runtime.errors import KernelError
from runtime.images import config, difftree, packing, store


def write_changes_tar(upper_dir: Path, out: BinaryIO, exclude: Collection[str] = ()) -> None:
    """Write the OCI layer tar of the overlay upper dir ``upper_dir`` to ``out``.

    ``exclude``: paths relative to the upper dir to leave out (the engine's own mount
    points, such as ``sbin/docker-init``), with any directory that holds only them.
    """
    root = str(upper_dir)
    skip = set(exclude) | packing.excluded_dirs(root, exclude)
    try:
        with packing.open_writer(out) as tf:
            packing.pack_tree(tf, root, packing.Options(oci_whiteouts=True, exclude=skip))
    except OSError as e:
        raise KernelError.from_oserror(f"pack the changes in {upper_dir}", e) from e


class _Hashing:
    """A file that hashes what is written to it (the layer tar: its digest is the diff id).

    sha256 runs in a helper thread (hashlib releases the GIL on large buffers): on a
    machine without SHA instructions it costs more than packing and copying together,
    so overlapping them is most of what makes ``commit`` fast.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.out, self._hash = out, hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._worker = threading.Thread(target=self._work, name="layer-hash", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._hash.update(chunk)

    def write(self, data: bytes) -> int:
        self._chunks.put(bytes(data))
        return self.out.write(data)

    def tell(self) -> int:
        return self.out.tell()

    def close(self) -> None:
        if self._worker.is_alive():
            self._chunks.put(None)
            self._worker.join()

    def diff_id(self) -> str:
        self.close()
        return "sha256:" + self._hash.hexdigest()


def commit_layer(
    upper_dir: Path,
    parent_chain: str | None,
    exclude: Collection[str] = (),
    *,
    stable: bool = False,
) -> store.Layer:
    """Store the changes in ``upper_dir`` as a layer on top of the chain ``parent_chain``.

    Device nodes and setuid bits are kept: they are the container's own, as in
    ``docker commit``. With ``stable`` (nothing writes to the upper dir meanwhile: the
    container is paused or stopped), the tar is written straight to the new layer's
    ``layer.tar`` and ``diff/`` is a kernel-side copy of the upper dir (``difftree``),
    which is several times faster than unpacking the tar. Otherwise the tar goes through
    a temporary file (so the digest covers the exact bytes stored) and
    ``store.add_layer`` unpacks it.
    """
    if stable:
        return _commit_stable(upper_dir, parent_chain, exclude)
    try:
        scratch = tempfile.TemporaryFile(dir=paths.tmp(), prefix="commit-")
    except OSError as e:
        raise KernelError.from_oserror("create a temporary layer file", e) from e
    with scratch:
        write_changes_tar(upper_dir, scratch, exclude)
        scratch.seek(0)
        return store.add_layer(scratch, parent_chain, allow_devices=True, allow_setuid=True)


def _commit_stable(
    upper_dir: Path, parent_chain: str | None, exclude: Collection[str]
) -> store.Layer:
    root = str(upper_dir)
    skip = set(exclude) | packing.excluded_dirs(root, exclude)
    store.ensure_dirs()
    try:
        staging = Path(tempfile.mkdtemp(prefix="layer-", dir=paths.tmp()))
    except OSError as e:
        raise KernelError.from_oserror("create a staging directory", e) from e
    # diff/ is copied in a second thread (copy_file_range(2) runs without the GIL) while
    # this one packs the tar and a third hashes it: three things at once on two cores.
    copied: list[int] = []
    failed: list[BaseException] = []

    def copy() -> None:
        try:
            copied.append(difftree.copy_tree(root, str(staging / "diff"), skip))
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the caller's thread
            failed.append(e)

    copier = threading.Thread(target=copy, name="layer-copy", daemon=True)
    try:
        (staging / "diff").mkdir(mode=0o755)
        copier.start()
        with open(staging / store.LAYER_TAR, "wb") as raw:
            os.fchmod(raw.fileno(), 0o600)
            hashing = _Hashing(raw)
            try:
                # A seekable writer, not stream mode: tarfile then writes each 1 MiB
                # chunk as it comes instead of re-slicing a buffer into 10 KiB records.
                with tarfile.open(
                    fileobj=hashing,
                    mode="w",  # type: ignore[call-overload]
                    format=tarfile.PAX_FORMAT,
                    encoding="utf-8",
                    errors="surrogateescape",
                ) as tf:
                    tf.copybufsize = 1 << 20
                    packing.pack_tree(tf, root, packing.Options(oci_whiteouts=True, exclude=skip))
                diff_id = hashing.diff_id()
            finally:
                hashing.close()
        copier.join()
        if failed:
            raise failed[0]
    except BaseException as e:
        if copier.ident is not None:
            copier.join()  # it writes into staging: let it finish before removing that
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise KernelError.from_oserror(f"pack the changes in {upper_dir}", e) from e
        raise
    return store.publish_layer(staging, diff_id, parent_chain, copied[0])


def create_image(
    parent: Any | None,
    layers: Sequence[store.Layer],
    *,
    container_config: dict[str, Any] | None = None,
    changes: Sequence[str] = (),
    history: Sequence[dict[str, Any]] = (),
    reference: str | None = None,
    comment: str = "",
    author: str = "",
    extra: dict[str, Any] | None = None,
) -> Any:
    """A new image: ``parent``'s layers + ``layers``, its config + ``changes``.

    ``parent`` is an ``images.Image`` or None (a base image). ``container_config``
    replaces the parent's ``config`` block when given (commit passes the container's);
    ``changes`` (Dockerfile-style, as ``commit -c``) are applied on top. ``history``
    entries are appended to the parent's; each non-empty entry must match one of
    ``layers`` in order, the rest carry ``empty_layer: true``. ``extra`` adds top-level
    config keys (``container``, ``container_config``). Returns the ``images.Image``.
    """
    from runtime import images  # images imports this module's siblings; avoid a cycle

    target = images._tag_reference(reference) if reference else None
    base = dict(parent.config.get("config") or {}) if parent is not None else {}
    block = config.apply_changes(
        container_config if container_config is not None else base, changes
    )
    diff_ids = (parent.diff_ids() if parent is not None else []) + [lay.diff_id for lay in layers]
    entries = list(parent.config.get("history") or []) if parent is not None else []
    entries += [dict(h) for h in history]
    created = next((h["created"] for h in reversed(entries) if h.get("created")), config.now())
    image = images._create(
        diff_ids, block, entries, created, target, comment, author=author, extra=extra
    )
    if parent is not None and parent.id:
        set_parent(image.id, parent.id)
    return images.resolve(image.id)


# --- parent links --------------------------------------------------------------------


def _metadata(image_id: str) -> Path:
    return paths.images() / "metadata" / image_id.removeprefix("sha256:")


def set_parent(image_id: str, parent_id: str) -> None:
    directory = _metadata(image_id)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise KernelError.from_oserror(f"record the parent of {image_id}", e) from e
    store.write_atomic(directory / "parent", parent_id.encode() + b"\n")


def parent_of(image_id: str) -> str:
    """The local parent image id, '' for none (a base, imported, loaded or pulled image)."""
    try:
        return (_metadata(image_id) / "parent").read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise KernelError.from_oserror(f"read the parent of {image_id}", e) from e


def children_of(image_id: str) -> list[str]:
    """Ids of stored images whose recorded parent is ``image_id``."""
    return [i for i in store.image_ids() if parent_of(i) == image_id]


def forget(image_id: str) -> None:
    """Drop the metadata of a deleted image (rmi); children keep their dangling link."""
    directory = _metadata(image_id)
    try:
        for name in os.listdir(directory):
            os.unlink(directory / name)
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise KernelError.from_oserror(f"forget image {image_id}", e) from e


__all__ = [
    "write_changes_tar",
    "commit_layer",
    "create_image",
    "set_parent",
    "parent_of",
    "children_of",
    "forget",
]
