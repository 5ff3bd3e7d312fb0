"""``load`` (and ``import``) against hostile and broken archives: each is refused with a
clear sentence, writes nothing outside the store, and leaves no layer, config blob, tag
or scratch file. Setuid bits survive a load (an admin's images) and are stripped from a
non-admin's import.

Layers are unpacked for real (chrooted child, mknod, trusted xattrs), so these run as
root. Each test gets a private, empty MOORAGE_ROOT and a canary directory that hostile
entries aim at; the canary must stay as it was.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import images
from runtime.errors import InvalidSpec
from runtime.images import archives
from tests.kernel.archive_corpus import (
    Img,
    docker_archive,
    entry,
    gzip_bomb,
    layer,
    leftovers,
    oci_archive,
    oci_files,
    sha,
    tar_of,
)

pytestmark = pytest.mark.kernel


@pytest.fixture
def store_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="load-hostile-", dir=os.environ["MOORAGE_ROOT"]))
    monkeypatch.setenv("MOORAGE_ROOT", str(root / "root"))
    (root / "canary").mkdir()
    (root / "canary" / "keep").write_text("original")
    yield root / "root"
    shutil.rmtree(root)


def refused(store_root: Path, data: bytes, match: str) -> None:
    """Loading ``data`` fails with InvalidSpec matching ``match`` and leaves nothing."""
    path = store_root.parent / "in.tar"
    path.write_bytes(data)
    with pytest.raises(InvalidSpec, match=match):
        archives.load(path)
    assert leftovers(store_root) == []
    canary = store_root.parent / "canary"
    assert os.listdir(canary) == ["keep"] and (canary / "keep").read_text() == "original"


GOOD = layer({"bin/hello": b"hello\n"})


def test_a_truncated_archive_is_refused(store_root: Path) -> None:
    data = docker_archive(Img([layer({"big": os.urandom(200_000)})], ["app:v1"]))
    in_manifest = data.index(b'[{"Config"') + 20
    for cut in (len(data) // 3, in_manifest, in_manifest - 600, 700):
        refused(store_root, data[:cut], "truncated|no file|not a tar")


def test_non_tar_input_is_refused(store_root: Path) -> None:
    refused(store_root, b"", "truncated or not a tar")
    refused(store_root, os.urandom(10_000), "truncated or not a tar")
    refused(store_root, b"PK\x03\x04" + bytes(1000), "truncated or not a tar")
    refused(store_root, gzip.compress(b"plain text, not a tar" * 100), "truncated or not a tar")


def test_a_tar_that_is_not_an_image_archive_is_refused(store_root: Path) -> None:
    refused(store_root, layer({"etc/passwd": b"x"}), "neither manifest.json nor index.json")


def test_a_manifest_pointing_outside_the_archive_is_refused(store_root: Path) -> None:
    img = Img([GOOD])
    for config, layers in (
        ("../x.json", [f"{sha(GOOD)[7:]}/layer.tar"]),
        (f"{img.id[7:]}.json", ["../../etc/passwd"]),
        (f"{img.id[7:]}.json", ["/etc/passwd"]),
        (f"a/../../{img.id[7:]}.json", [f"{sha(GOOD)[7:]}/layer.tar"]),
    ):
        manifest = [{"Config": config, "RepoTags": ["app:v1"], "Layers": layers}]
        refused(store_root, docker_archive(img, manifest=manifest), "outside|absolute")


def test_an_archive_symlink_leaving_the_archive_is_refused(store_root: Path) -> None:
    img = Img([GOOD])
    manifest = [{"Config": f"{img.id[7:]}.json", "RepoTags": [], "Layers": ["evil/layer.tar"]}]
    for target in ("../../../etc/passwd", "/etc/passwd"):
        link = entry("evil/layer.tar", tarfile.SYMTYPE, linkname=target)
        data = docker_archive(img, extra=(link,), manifest=manifest)
        refused(store_root, data, "outside|absolute")


def test_a_layer_with_hostile_entries_is_refused(store_root: Path) -> None:
    canary = str(store_root.parent / "canary")
    hostile = {
        "'..' component": tar_of(entry("../../canary/x", data=b"pwned")),
        "absolute path": tar_of(entry(canary + "/x", data=b"pwned")),
        "symbolic link": tar_of(
            entry("escape", tarfile.SYMTYPE, linkname=canary),
            entry("escape/x", data=b"pwned"),
        ),
        "device node": tar_of(entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)),
        "not in the archive": tar_of(entry("passwd", tarfile.LNKTYPE, linkname="shadow")),
        "absolute link target": tar_of(entry("pw", tarfile.LNKTYPE, linkname="/etc/shadow")),
    }
    for why, lay in hostile.items():
        refused(store_root, docker_archive(Img([lay], ["app:v1"])), why)


def test_a_symlinked_parent_swapped_in_mid_archive_is_refused(store_root: Path) -> None:
    canary = str(store_root.parent / "canary")
    lay = tar_of(
        entry("a", tarfile.DIRTYPE),
        entry("a/first", data=b"fine"),
        entry("a", tarfile.SYMTYPE, linkname=canary),  # replaces the directory ...
        entry("a/keep", data=b"pwned"),  # ... and this would write through it
    )
    refused(store_root, docker_archive(Img([lay], ["app:v1"])), "symbolic link")


def test_a_layer_whose_digest_is_not_its_diff_id_is_refused(store_root: Path) -> None:
    other = layer({"bin/other": b"not what the config says"})
    img = Img([GOOD], ["app:v1"], config=Img([other]).config)
    refused(store_root, docker_archive(img), "not the expected diff id")


def test_an_oci_blob_not_matching_its_digest_is_refused(store_root: Path) -> None:
    img = Img([GOOD], ["app:v1"])
    files = oci_files(img, gzip_layers=True)
    blob = next(n for n, d in files.items() if d[:2] == b"\x1f\x8b")
    files[blob] = gzip.compress(GOOD, mtime=12345)  # same content, other bytes
    data = tar_of(*(entry(n, data=d) for n, d in files.items()))
    refused(store_root, data, "does not match its digest")
    config = f"blobs/sha256/{img.id[7:]}"
    files = oci_files(img)
    files[config] = files[config].replace(b"amd64", b"arm64")
    refused(
        store_root,
        tar_of(*(entry(n, data=d) for n, d in files.items())),
        "does not match its digest",
    )


def test_enormous_declared_sizes_are_refused_before_reading(store_root: Path) -> None:
    img = Img([GOOD], ["app:v1"])
    refused(store_root, oci_archive(img, lie={"layer": {"size": 1 << 50}}), "declares")
    refused(store_root, oci_archive(img, lie={"config": {"size": 1 << 40}}), "declares")
    # A tar header claiming a 64 GiB member with no data behind it.
    info, _ = entry("manifest.json")
    info.size = 1 << 36
    refused(store_root, info.tobuf(tarfile.PAX_FORMAT) + bytes(4096), "truncated or not a tar")
    # A manifest.json genuinely larger than any manifest may be.
    huge = docker_archive(
        img,
        extra=(entry("pad.json", data=b" " * (17 << 20)),),
        manifest=[{"Config": "pad.json", "Layers": []}],
    )
    refused(store_root, huge, "too large")


def test_a_missing_config_is_refused(store_root: Path) -> None:
    img = Img([GOOD])
    manifest = [
        {"Config": "nothere.json", "RepoTags": ["app:v1"], "Layers": [f"{sha(GOOD)[7:]}/layer.tar"]}
    ]
    refused(store_root, docker_archive(img, manifest=manifest), "no image config")
    files = oci_files(img)
    del files[f"blobs/sha256/{img.id[7:]}"]
    refused(store_root, tar_of(*(entry(n, data=d) for n, d in files.items())), "no image config")


def test_a_config_whose_layer_count_differs_is_refused(store_root: Path) -> None:
    img = Img([GOOD], config=Img([GOOD, layer({"x": b"x"})]).config)
    refused(store_root, docker_archive(img), "lists 1 layers but its config has 2")


def test_a_failure_in_the_second_image_removes_the_first_images_layers(
    store_root: Path,
) -> None:
    first = Img([GOOD, layer({"etc/motd": b"hi"})], ["first:v1"])
    bad = tar_of(entry("dev/kmem", tarfile.CHRTYPE, devmajor=1, devminor=2))
    second = Img([layer({"ok": b"ok"}), bad], ["second:v1"])
    refused(store_root, docker_archive(first, second), "device node")


def test_an_oci_layout_directory_with_a_blob_symlinked_outside_is_refused(
    store_root: Path,
) -> None:
    img = Img([GOOD], ["app:v1"])
    layout = store_root.parent / "layout"
    for name, data in oci_files(img).items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    blob = layout / "blobs" / "sha256" / sha(GOOD)[7:]
    blob.unlink()
    blob.symlink_to(store_root.parent / "canary" / "keep")
    with pytest.raises(InvalidSpec, match="outside"):
        archives.load(layout)
    assert leftovers(store_root) == []


def test_a_bad_tag_in_the_manifest_is_refused_before_anything_is_stored(
    store_root: Path,
) -> None:
    refused(store_root, docker_archive(Img([GOOD], ["team/UPPER:v1"])), "must be lowercase")
    refused(store_root, docker_archive(Img([GOOD], ["app@sha256:" + "a" * 64])), "digest")
    manifest = json.loads(json.dumps([{"Config": "x", "Layers": "notalist"}]))
    refused(store_root, docker_archive(Img([GOOD]), manifest=manifest), "list of Layers")


# --- enormous sizes and setuid files: load (an admin's images) and import ---------------

ZEROS = layer({"zeros": bytes(16 << 20)})  # 16 MiB of layer that gzip makes 16 KiB


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", str(2 << 20))
    return 2 << 20


def test_a_gzipped_archive_that_unpacks_past_the_limit_is_refused_while_spooling(
    store_root: Path, small_limit: int
) -> None:
    """Issue 4, enormous sizes: a gzip bomb of a whole archive stops at the limit."""
    bomb = gzip.compress(docker_archive(Img([GOOD, ZEROS], ["bomb:v1"])), mtime=0)
    assert len(bomb) < 64 << 10
    refused(store_root, bomb, "unpacks to more than 2097152 bytes")


def test_a_gzip_bomb_layer_in_an_oci_archive_leaves_no_half_image(
    store_root: Path, small_limit: int
) -> None:
    """The first layer is stored, the bomb layer refused mid-stream: both are gone."""
    refused(
        store_root,
        oci_archive(Img([GOOD, ZEROS], ["bomb:v1"]), gzip_layers=True),
        "MOORAGE_MAX_UNPACKED_BYTES",
    )


def test_import_of_a_gzip_bomb_is_refused_and_leaves_no_layer(
    store_root: Path, small_limit: int
) -> None:
    with pytest.raises(InvalidSpec, match="MOORAGE_MAX_UNPACKED_BYTES"):
        images.import_tar(io.BytesIO(gzip_bomb(16, 1 << 20)), "bomb:v1")
    assert leftovers(store_root) == []


SETUID = tar_of(
    entry("bin", tarfile.DIRTYPE), entry("bin/su", data=b"#!/bin/sh\n", mode=0o6755, uid=0, gid=0)
)


def _su_mode(reference: str) -> int:
    return stat.S_IMODE(os.lstat(images.resolve(reference).layer_dirs()[-1] / "bin/su").st_mode)


def test_load_keeps_setuid_bits_as_an_admins_images_need_them(store_root: Path) -> None:
    archives.load(_written(store_root, docker_archive(Img([SETUID], ["suid:v1"]))))
    assert _su_mode("suid:v1") == 0o6755


def test_import_keeps_setuid_for_a_trusted_caller_and_strips_it_for_anyone_else(
    store_root: Path,
) -> None:
    """Issue 4, setuid files from non-admin sources: the dashboard imports a non-admin's
    upload with trusted=False; the CLI (root) keeps Docker's behaviour."""
    images.import_tar(io.BytesIO(SETUID), "suid:admin", trusted=True)
    assert _su_mode("suid:admin") == 0o6755
    untrusted = gzip.compress(
        tar_of(entry("bin", tarfile.DIRTYPE), entry("bin/su", data=b"#!/bin/sh\n#2\n", mode=0o6755))
    )
    images.import_tar(io.BytesIO(untrusted), "suid:user")  # a dashboard user's upload
    assert _su_mode("suid:user") == 0o755


def _written(store_root: Path, data: bytes) -> Path:
    path = store_root.parent / "in.tar"
    path.write_bytes(data)
    return path
