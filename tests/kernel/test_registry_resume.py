"""A pull or push whose connection breaks midway carries on (issue 7: resumable transfers).

The real registry (Debian ``docker-registry``, from test_registry's fixture) sits behind a
loopback TCP relay that breaks one connection once a set number of bytes has gone one
way: mid-blob, as a flaky network or a restarted proxy would. A pull picks the blob up
where it stopped with a Range request; a push starts the layer's upload again (the
registry invalidates a broken upload) and says ``Retrying in 1 second``. Only loopback.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import images
from runtime.images import references, store
from tests.kernel.test_registry import forget_everything, moorage, registry, root  # noqa: F401

pytestmark = pytest.mark.kernel
MIB = 1 << 20
_METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"PATCH ", b"DELETE ")


class BreakingRelay:
    """Relays 127.0.0.1:<port> to ``upstream``; breaks the first connection on which more
    than ``after`` bytes have gone ``way`` ("up": client to registry, "down": back)."""

    def __init__(self, upstream: str, way: str, after: int) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream, self._way, self._after = (host, int(port)), way, after
        self._lock = threading.Lock()
        self.breaks = 0
        self.moved = {"up": 0, "down": 0}
        self.heads: list[bytes] = []  # the start of every request the client sent
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            pair: dict[str, Any] = {"socks": (client, server), "up": 0, "down": 0, "ended": 0}
            threading.Thread(
                target=self._pump, args=(client, server, "up", pair), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, "down", pair), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str, pair: dict[str, Any]) -> None:
        try:
            while data := src.recv(1 << 16):
                if way == "up" and data.startswith(_METHODS):
                    with self._lock:
                        self.heads.append(data[:2048])
                with self._lock:
                    breaking = (
                        way == self._way
                        and self.breaks == 0
                        and pair[way] + len(data) > self._after
                    )
                    if breaking:
                        self.breaks += 1
                        data = data[: self._after - pair[way]]
                    pair[way] += len(data)
                    self.moved[way] += len(data)
                dst.sendall(data)
                if breaking:
                    for sock in pair["socks"]:
                        sock.shutdown(socket.SHUT_RDWR)
                    return
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other direction broke the pair
        finally:
            with self._lock:
                pair["ended"] += 1
                last = pair["ended"] == 2
            if last:
                for sock in pair["socks"]:
                    sock.close()


@pytest.fixture
def relays() -> Iterator[list[BreakingRelay]]:
    made: list[BreakingRelay] = []
    yield made
    for relay in made:
        relay.close()


def big_image(tag: str, size: int) -> tuple[images.Image, int]:
    """busybox plus a layer holding /big: ``size`` random bytes (gzip cannot shrink them,
    so the blob is the plain tar and its bytes cross the relay as they are)."""
    base = images.resolve("busybox")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    blob_size = data.tell()
    data.seek(0)
    added = store.add_layer(data, base.chain_ids()[-1], allow_devices=False, allow_setuid=False)
    doc = dict(
        base.config, rootfs={"type": "layers", "diff_ids": [*base.diff_ids(), added.diff_id]}
    )
    image_id = store.put_config(json.dumps(doc).encode())
    references.set_tag(references.parse(tag), image_id)
    return images.resolve(image_id), blob_size


def test_a_pull_whose_connection_breaks_resumes_where_it_stopped(
    root: Path,  # noqa: F811 - the fixtures of test_registry
    registry: str,  # noqa: F811
    relays: list[BreakingRelay],
) -> None:
    image, blob_size = big_image(f"{registry}/cut/down:v1", 8 * MIB)
    moorage("push", f"{registry}/cut/down:v1")
    forget_everything()
    relay = BreakingRelay(registry, "down", after=4 * MIB)
    relays.append(relay)
    name = f"{relay.host}/cut/down:v1"

    out = moorage("pull", name).stdout

    assert relay.breaks == 1, "the relay never broke a connection: nothing was tested"
    assert out.count(": Pull complete") == 2, out
    assert images.resolve(name).id == image.id
    resumed = [h for h in relay.heads if b"\r\nRange: bytes=" in h]
    assert len(resumed) == 1 and resumed[0].startswith(b"GET /v2/cut/down/blobs/"), relay.heads
    # Picked up where it stopped: the big blob crossed once, not once and a half.
    assert relay.moved["down"] < blob_size + 3 * MIB, relay.moved
    assert moorage("run", "--rm", name, "sh", "-c", "wc -c < /big").stdout.strip() == str(8 * MIB)
    assert not list((root / "tmp").glob("pull-*"))


def test_a_push_whose_connection_breaks_uploads_the_layer_again(
    root: Path,  # noqa: F811 - the fixtures of test_registry
    registry: str,  # noqa: F811
    relays: list[BreakingRelay],
) -> None:
    relay = BreakingRelay(registry, "up", after=3 * MIB)
    relays.append(relay)
    name = f"{relay.host}/cut/up:v1"
    image, _ = big_image(name, 6 * MIB)

    out = moorage("push", name).stdout

    assert relay.breaks == 1, "the relay never broke a connection: nothing was tested"
    assert "Retrying in 1 second" in out and out.count(": Pushed") == 2, out
    assert "digest: sha256:" in out
    # What the registry holds is whole: pulled straight from it, it is the same image.
    forget_everything()
    moorage("pull", f"{registry}/cut/up:v1")
    assert images.resolve(f"{registry}/cut/up:v1").id == image.id
