"""The spool side of a pull (``downloads._Unpacking``): blob bytes in, a tar file out.

Pure data, no registry: each case feeds a blob in chunks of several sizes (a chunk may
end anywhere, mid-header or mid-member) and checks the tar written, its sha256 (the diff
id) and the blob's sha256 (its digest), or the refusal.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest

from runtime.errors import InvalidSpec
from runtime.registry.downloads import _Unpacking

TAR = os.urandom(1 << 20) + b"a" * (2 << 20)  # stands in for a tar: only bytes matter here


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def _spool(blob: bytes, step: int, limit: int = 1 << 30) -> tuple[bytes, _Unpacking]:
    out = io.BytesIO()
    unpacking = _Unpacking(out, blob[:2], limit)
    for start in range(0, len(blob), step):
        unpacking.feed(blob[start : start + step])
    unpacking.finish()
    return out.getvalue(), unpacking


BLOBS = {
    "plain tar": TAR,
    "one gzip member": _gz(TAR),
    "two gzip members": _gz(TAR[:1000]) + _gz(TAR[1000:]),
    "gzip with zero padding": _gz(TAR) + b"\0" * 5000,
    "padding between members": _gz(TAR[:5]) + b"\0" * 3 + _gz(TAR[5:]) + b"\0" * 70_000,
}


@pytest.mark.parametrize("name", list(BLOBS))
@pytest.mark.parametrize("step", [1 << 20, 7777, 1 << 16])
def test_a_blob_fed_in_any_chunks_gives_the_tar_its_diff_id_and_its_digest(
    name: str, step: int
) -> None:
    blob = BLOBS[name]
    tar, unpacking = _spool(blob, step)
    assert tar == TAR
    assert unpacking.tar_hash.hexdigest() == hashlib.sha256(TAR).hexdigest()
    assert unpacking.blob_hash.hexdigest() == hashlib.sha256(blob).hexdigest()


def test_an_uncompressed_blob_is_hashed_once_as_digest_and_diff_id() -> None:
    _, unpacking = _spool(TAR, 1 << 20)
    assert unpacking.tar_hash is unpacking.blob_hash


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (_gz(TAR)[:-100], "gzip stream is truncated"),
        (_gz(TAR) + b"xx", "not valid gzip"),
    ],
)
def test_a_broken_gzip_blob_is_refused(blob: bytes, why: str) -> None:
    with pytest.raises(InvalidSpec, match=why):
        _spool(blob, 1 << 16)


def test_a_gzip_bomb_is_refused_once_the_tar_passes_the_limit() -> None:
    bomb = _gz(b"\0" * (50 << 20))
    out = io.BytesIO()
    unpacking = _Unpacking(out, bomb[:2], 1 << 20)
    with pytest.raises(InvalidSpec, match="unpacks to more than 1048576 bytes"):
        unpacking.feed(bomb)
    assert len(out.getvalue()) <= 1 << 20
