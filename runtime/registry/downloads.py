"""Parallel blob downloads, checked and decompressed as they arrive, for the layer store.

Kernel interfaces: TCP sockets (``client``) and plain files in ``paths.tmp()``.

A ``Downloads`` is an ``archives.sources.TarFiles`` source over registry blobs, so pull
stores layers through the same all-or-nothing path as ``load``
(``archives.loading.store_all``: diff id checks, undo on failure, tags). Up to
``MOORAGE_MAX_CONCURRENT_DOWNLOADS`` (default 3, docker's default) worker threads fetch
blobs in manifest order. Each worker hashes the blob as it arrives (its digest is
checked before the layer store sees a byte), gunzips it with zlib when it starts with
gzip's magic, hashes the tar that comes out (the diff id) and writes that tar to a
spool file: one pass over the bytes, in threads that run while the layer before is
unpacked (hashlib and zlib release the GIL). A transfer that breaks after bytes came in
is resumed with a Range request where it stopped (the hashes and the gunzip carry on;
a registry that ignores Range resends, and the bytes already seen are skipped), up to
``_RESUMES`` times per blob. ``layer_tar`` hands the store the finished
spool, which becomes the layer's kept ``layer.tar`` (a hard link, not a copy), and the
unpacking child reads it directly. A blob longer or shorter than its descriptor's size,
or whose tar grows past ``archive.byte_limit`` (a gzip bomb), is refused as it arrives.

Owns the spool files (``pull-*`` in ``paths.tmp()``): each is deleted once the layer
is stored, and all of them on ``close``. Threads only ever live in the CLI or a worker
process calling ``pull``; the container monitor never pulls.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import queue
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from runtime import archive, paths
from runtime.errors import InvalidSpec, KernelError, MoorageError
from runtime.registry.client import Registry, raise_for, transport_error
from runtime.registry.manifests import Descriptor

Progress = Callable[[dict[str, Any]], None]
_CHUNK = 1 << 20
_EVERY = 0.1  # seconds between two progress events of one blob
_GZIP = b"\x1f\x8b"
_RESUMES = 5  # broken transfers of one blob picked up where they stopped (docker: 5 tries)
_RESUME_PAUSE = 0.5  # seconds, times the number of breaks so far


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def concurrency() -> int:
    try:
        return max(1, int(os.environ.get("MOORAGE_MAX_CONCURRENT_DOWNLOADS", "3")))
    except ValueError:
        return 3


class _Cancelled(MoorageError):
    pass


class _Broken(Exception):
    """The connection broke (or never opened) while a blob was coming in."""

    def __init__(self, error: KernelError) -> None:
        super().__init__(str(error))
        self.error = error


class _Blob:
    def __init__(self, desc: Descriptor, spool: Path) -> None:
        self.desc, self.spool = desc, spool
        self.diff_id = ""  # sha256 of the tar in the spool, once done
        self.done = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()


class _Unpacking:
    """The spool side of one blob: hash it, gunzip it (if gzip), hash and write the tar.

    An uncompressed blob is its own tar: one hash serves as digest and diff id.
    """

    def __init__(self, out: BinaryIO, first: bytes, limit: int) -> None:
        self._out, self._limit, self.size = out, limit, 0
        self.blob_hash = hashlib.sha256()
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if first.startswith(_GZIP) else None
        self.tar_hash = self.blob_hash if self._inflate is None else hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self.blob_hash.update(data)
        if self._inflate is None:
            self._write(data)
            return
        while data:
            inflate = self._inflate
            if inflate.eof:  # after a member: zero padding (as gzip allows) or another member
                data = data.lstrip(b"\0")
                if not data:
                    return
                inflate = self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                self._put(inflate.decompress(data, _CHUNK))
                # A bounded output per call: no bomb in memory. (At the end of a member,
                # CPython leaves the rest in unconsumed_tail as well as in unused_data.)
                while inflate.unconsumed_tail and not inflate.eof:
                    self._put(inflate.decompress(inflate.unconsumed_tail, _CHUNK))
            except zlib.error as e:
                raise InvalidSpec(f"the layer is not valid gzip: {e}") from e
            data = inflate.unused_data if inflate.eof else b""

    def finish(self) -> None:
        if self._inflate is not None and not self._inflate.eof:
            raise InvalidSpec("the layer's gzip stream is truncated")

    def _put(self, data: bytes) -> None:
        if data:
            self.tar_hash.update(data)
            self._write(data)

    def _write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._limit:
            raise InvalidSpec(archive.too_big(self._limit))
        self._out.write(data)


class Downloads:
    """Download ``blobs`` of ``repository``; store them with ``layer_tar(digest)``."""

    def __init__(
        self, registry: Registry, repository: str, blobs: list[Descriptor], emit: Progress
    ) -> None:
        self._registry, self._repository, self._emit = registry, repository, emit
        self._uses = Counter(d.digest for d in blobs)
        self._blobs: dict[str, _Blob] = {}
        self._cancelled = threading.Event()
        self._queue: queue.Queue[_Blob | None] = queue.Queue()
        self._limit = archive.byte_limit(paths.tmp()) if blobs else 0
        for desc in blobs:
            if desc.digest in self._blobs:
                continue
            fd, name = tempfile.mkstemp(prefix="pull-", dir=paths.tmp())
            os.close(fd)
            blob = self._blobs[desc.digest] = _Blob(desc, Path(name))
            self._queue.put(blob)
        workers = min(concurrency(), len(self._blobs))
        self._threads = [
            threading.Thread(target=self._work, name=f"pull-{i}", daemon=True)
            for i in range(workers)
        ]
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
        written, last, breaks = 0, 0.0, 0
        spool: _Unpacking | None = None
        try:
            with open(blob.spool, "wb") as out:
                while True:
                    before = written
                    try:
                        for chunk in self._stream(desc, written):
                            if self._cancelled.is_set():
                                raise _Cancelled("the pull was cancelled")
                            written += len(chunk)
                            if written > desc.size:
                                raise InvalidSpec(
                                    f"layer blob {desc.digest} is larger than "
                                    f"the {desc.size} bytes its manifest declares"
                                )
                            if spool is None:
                                spool = _Unpacking(out, chunk, self._limit)
                            spool.feed(chunk)
                            now = time.monotonic()
                            if now - last >= _EVERY:
                                last = now
                                self._emit(
                                    {
                                        "status": "Downloading",
                                        "id": shown,
                                        "progressDetail": {"current": written, "total": desc.size},
                                    }
                                )
                        break
                    except _Broken as e:
                        # Only a transfer that was moving is picked up again: a registry
                        # that stopped answering still fails as fast as before.
                        if written == before or breaks == _RESUMES:
                            raise e.error from e.__cause__
                        breaks += 1
                        time.sleep(_RESUME_PAUSE * breaks)
                if spool is not None:
                    spool.finish()
        except OSError as e:
            raise KernelError.from_oserror("write a download spool file", e) from e
        if written != desc.size:
            raise InvalidSpec(
                f"layer blob {desc.digest} is {written} bytes, not the "
                f"{desc.size} its manifest declares"
            )
        if spool is None:
            raise InvalidSpec(f"layer blob {desc.digest} is empty")
        if "sha256:" + spool.blob_hash.hexdigest() != desc.digest:
            raise InvalidSpec(f"layer blob does not match its digest {desc.digest}")
        blob.diff_id = "sha256:" + spool.tar_hash.hexdigest()
        self._emit({"status": "Download complete", "id": shown, "progressDetail": {}})

    def _stream(self, desc: Descriptor, offset: int) -> Iterator[bytes]:
        """The blob's bytes from ``offset`` on (a Range request when resuming); a broken
        connection raises ``_Broken``."""
        shown = short(desc.digest)
        headers = {"Range": f"bytes={offset}-"} if offset else None
        try:
            raw, resp = self._registry.request(
                "GET",
                f"/v2/{self._repository}/blobs/{desc.digest}",
                scopes=(f"repository:{self._repository}:pull",),
                headers=headers,
                stream=True,
            )
        except KernelError as e:
            raise _Broken(e) from e
        if resp is not None:
            raise_for(resp, f"download layer {shown}")
        skip = offset  # a registry that ignores Range sends the whole blob again (200)
        if raw.status == 206:
            if not raw.getheader("Content-Range", "").startswith(f"bytes {offset}-"):
                raw.close()
                raise InvalidSpec(f"the registry resumed layer {shown} at the wrong offset")
            skip = 0
        with raw:
            while True:
                try:
                    chunk = raw.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _Broken(
                        transport_error("GET", f"blob {desc.digest}", e, self._registry.timeout)
                    ) from e
                if not chunk:
                    if raw.length:  # http.client ends a short body quietly
                        raise _Broken(
                            transport_error(
                                "GET",
                                f"blob {desc.digest}",
                                ConnectionResetError(
                                    f"the connection closed {raw.length} bytes before the end"
                                ),
                                self._registry.timeout,
                            )
                        )
                    return
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                yield chunk

    def _wait(self, name: str) -> _Blob:
        blob = self._blobs[name]
        with blob.cond:
            while not blob.done:
                blob.cond.wait()
        if blob.error is not None:
            raise blob.error
        return blob

    # --- the TarFiles side (read by loading.store_all in the calling thread) -------------

    def exists(self, name: str) -> bool:
        return name in self._blobs

    def size(self, name: str) -> int:
        return self._blobs[name].desc.size

    def open(self, name: str) -> BinaryIO:
        """The downloaded layer as an uncompressed tar (once it is complete)."""
        blob = self._wait(name)
        try:
            return open(blob.spool, "rb")
        except OSError as e:
            raise KernelError.from_oserror("open a download spool file", e) from e

    @contextlib.contextmanager
    def layer_tar(self, name: str) -> Iterator[tuple[Path, str]]:
        """(the blob's tar in a spool file, its sha256), the blob digest already checked."""
        blob = self._wait(name)
        shown = short(name)
        size = blob.spool.stat().st_size
        self._emit(
            {"status": "Extracting", "id": shown, "progressDetail": {"current": 0, "total": size}}
        )
        ok = False
        try:
            yield blob.spool, blob.diff_id
            ok = True
        finally:
            if ok:
                self._emit({"status": "Pull complete", "id": shown, "progressDetail": {}})
            self._uses[name] -= 1
            if self._uses[name] <= 0:
                blob.spool.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the downloads, wait for the workers, delete every spool file."""
        self._cancelled.set()
        for thread in self._threads:
            thread.join()
        for blob in self._blobs.values():
            blob.spool.unlink(missing_ok=True)
