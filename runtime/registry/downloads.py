"""Parallel blob downloads that the layer store reads while they are still arriving.

Kernel interfaces: TCP sockets (``client``) and plain files in ``paths.tmp()``.

A ``Downloads`` is an ``archives.sources.Source`` (``exists``/``size``/``open``) over
registry blobs, so pull stores layers through the same all-or-nothing path as ``load``
(``archives.loading.store_all``: digest and diff id checks, undo on failure, tags).
Up to ``MOORAGE_MAX_CONCURRENT_DOWNLOADS`` (default 3, docker's default) worker threads
fetch blobs in manifest order, each into a spool file; ``open`` returns a reader that
follows its spool as it grows, so layer *n* unpacks while layers after it download.
A blob longer or shorter than its descriptor's size is refused as it arrives; its
sha256 is checked by ``store.add_layer`` before anything is published.

Owns the spool files (``pull-*`` in ``paths.tmp()``): each is deleted once the layer
is stored, and all of them on ``close``. Threads only ever live in the CLI or a worker
process calling ``pull``; the container monitor never pulls.
"""

from __future__ import annotations

import http.client
import os
import queue
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from runtime import paths
from runtime.errors import InvalidSpec, KernelError, MoorageError
from runtime.registry.client import Registry, raise_for, transport_error
from runtime.registry.manifests import Descriptor

Progress = Callable[[dict[str, Any]], None]
_CHUNK = 1 << 17
_EVERY = 0.1  # seconds between two progress events of one blob


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def concurrency() -> int:
    try:
        return max(1, int(os.environ.get("MOORAGE_MAX_CONCURRENT_DOWNLOADS", "3")))
    except ValueError:
        return 3


class _Cancelled(MoorageError):
    pass


class _Blob:
    def __init__(self, desc: Descriptor, spool: Path) -> None:
        self.desc, self.spool = desc, spool
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()


class Downloads:
    """Download ``blobs`` of ``repository``; read them with ``open(digest)``."""

    def __init__(self, registry: Registry, repository: str, blobs: list[Descriptor],
                 emit: Progress) -> None:
        self._registry, self._repository, self._emit = registry, repository, emit
        self._uses = Counter(d.digest for d in blobs)
        self._blobs: dict[str, _Blob] = {}
        self._cancelled = threading.Event()
        self._queue: queue.Queue[_Blob | None] = queue.Queue()
        for desc in blobs:
            if desc.digest in self._blobs:
                continue
            fd, name = tempfile.mkstemp(prefix="pull-", dir=paths.tmp())
            os.close(fd)
            blob = self._blobs[desc.digest] = _Blob(desc, Path(name))
            self._queue.put(blob)
        workers = min(concurrency(), len(self._blobs))
        self._threads = [threading.Thread(target=self._work, name=f"pull-{i}", daemon=True)
                         for i in range(workers)]
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.start()

    # --- the download side --------------------------------------------------------------

    def _work(self) -> None:
        while (blob := self._queue.get()) is not None:
            try:
                if self._cancelled.is_set():
                    raise _Cancelled("the pull was cancelled")
                self._fetch(blob)
            except BaseException as e:  # noqa: BLE001 - handed to the reader, who raises it
                blob.error = e
            finally:
                with blob.cond:
                    blob.done = True
                    blob.cond.notify_all()

    def _fetch(self, blob: _Blob) -> None:
        desc, shown = blob.desc, short(blob.desc.digest)
        raw, resp = self._registry.request(
            "GET", f"/v2/{self._repository}/blobs/{desc.digest}",
            scopes=(f"repository:{self._repository}:pull",), stream=True)
        if resp is not None:
            raise_for(resp, f"download layer {shown}")
        last = 0.0
        try:
            with raw, open(blob.spool, "wb", buffering=0) as out:
                while True:
                    try:
                        chunk = raw.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise transport_error("GET", f"blob {desc.digest}", e,
                                              self._registry.timeout) from e
                    if not chunk:
                        break
                    if self._cancelled.is_set():
                        raise _Cancelled("the pull was cancelled")
                    if blob.written + len(chunk) > desc.size:
                        raise InvalidSpec(f"layer blob {desc.digest} is larger than the "
                                          f"{desc.size} bytes its manifest declares")
                    out.write(chunk)
                    with blob.cond:
                        blob.written += len(chunk)
                        blob.cond.notify_all()
                    now = time.monotonic()
                    if now - last >= _EVERY:
                        last = now
                        self._emit({"status": "Downloading", "id": shown, "progressDetail": {
                            "current": blob.written, "total": desc.size}})
        except OSError as e:
            raise KernelError.from_oserror("write a download spool file", e) from e
        if blob.written != desc.size:
            raise InvalidSpec(f"layer blob {desc.digest} is {blob.written} bytes, not the "
                              f"{desc.size} its manifest declares")
        self._emit({"status": "Download complete", "id": shown, "progressDetail": {}})

    # --- the Source side (read by loading.store_all in the calling thread) ---------------

    def exists(self, name: str) -> bool:
        return name in self._blobs

    def size(self, name: str) -> int:
        return self._blobs[name].desc.size

    def open(self, name: str) -> BinaryIO:
        # A reader and a context manager: all that store_all asks of a BinaryIO.
        return cast(BinaryIO, _Follower(self, self._blobs[name]))

    def extracting(self, blob: _Blob, position: int) -> None:
        self._emit({"status": "Extracting", "id": short(blob.desc.digest), "progressDetail": {
            "current": position, "total": blob.desc.size}})

    def finished(self, blob: _Blob, ok: bool) -> None:
        digest = blob.desc.digest
        if ok:
            self._emit({"status": "Pull complete", "id": short(digest), "progressDetail": {}})
        self._uses[digest] -= 1
        if self._uses[digest] <= 0:
            blob.spool.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the downloads, wait for the workers, delete every spool file."""
        self._cancelled.set()
        for thread in self._threads:
            thread.join()
        for blob in self._blobs.values():
            blob.spool.unlink(missing_ok=True)


class _Follower:
    """Reads a blob's spool file, waiting for bytes the download has not written yet."""

    def __init__(self, owner: Downloads, blob: _Blob) -> None:
        self._owner, self._blob, self._pos, self._last = owner, blob, 0, 0.0
        try:
            self._file = open(blob.spool, "rb", buffering=0)
        except OSError as e:
            raise KernelError.from_oserror("open a download spool file", e) from e

    def read(self, size: int = -1) -> bytes:
        blob = self._blob
        with blob.cond:
            while blob.written == self._pos and not blob.done:
                blob.cond.wait()
            if blob.error is not None:
                raise blob.error
            available = blob.written - self._pos
            complete = blob.done
        if available == 0:
            return b""
        data = self._file.read(available if size < 0 else min(size, available))
        self._pos += len(data)
        now = time.monotonic()
        if complete and now - self._last >= _EVERY:  # while downloading, that line shows
            self._last = now
            self._owner.extracting(blob, self._pos)
        return data

    def __enter__(self) -> _Follower:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self._file.close()
        self._owner.finished(self._blob, kind is None)
