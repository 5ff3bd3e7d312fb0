"""runtime.images against a real store: busybox from the host, import, tag, resolve.

Each test gets its own MOORAGE_ROOT (under the session's test root) and removes it.
Unpacking needs chroot, mknod and trusted xattrs, so these run as root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import images, paths
from runtime.errors import InvalidSpec, NotFound
from runtime.images import bootstrap, references, store

pytestmark = pytest.mark.kernel


@pytest.fixture
def store_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="images-", dir=os.environ["MOORAGE_ROOT"]))
    monkeypatch.setenv("MOORAGE_ROOT", str(root))
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def host_busybox() -> bootstrap.HostBusybox:
    try:
        return bootstrap.find()
    except NotFound as e:
        pytest.skip(str(e))


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def leftovers(root: Path) -> list[str]:
    """Layers, blobs, tags and staging directories in the store."""
    image = root / "image"
    found = [str(p) for sub in ("layers", "blobs/sha256") for p in (image / sub).glob("*")]
    found += [str(p) for p in (root / "tmp").glob("*")]
    return found + list(references.tags())


def test_bootstrapped_busybox_runs_in_a_chroot_of_its_layer(
    store_root: Path, host_busybox: bootstrap.HostBusybox
) -> None:
    image = images.bootstrap_busybox()
    [layer] = image.layer_dirs()
    ran = subprocess.run(
        ["chroot", str(layer), "/bin/busybox", "echo", "ok"], capture_output=True, text=True
    )
    assert (ran.returncode, ran.stdout) == (0, "ok\n")
    shell = subprocess.run(
        ["chroot", str(layer), "/bin/sh", "-c", "id -un; ls /usr/bin /usr/sbin /sbin"],
        capture_output=True,
        text=True,
        env={"PATH": bootstrap.PATH_ENV.removeprefix("PATH=")},
    )
    assert shell.returncode == 0 and shell.stdout.startswith("root\n"), shell.stderr
    assert stat.S_IMODE(os.lstat(layer / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.lstat(layer / "root").st_mode) == 0o700
    assert "nobody:x:65534:65534:" in (layer / "etc/passwd").read_text()
    assert os.readlink(layer / "bin/ls") == "busybox"
    assert image.config["config"] == {"Env": [bootstrap.PATH_ENV], "Cmd": ["sh"]}
    assert image.repo_tags == ("busybox:latest",)


def test_busybox_resolves_by_name_full_id_and_prefix(
    store_root: Path, host_busybox: bootstrap.HostBusybox
) -> None:
    image = images.bootstrap_busybox()
    hex_id = image.id.removeprefix("sha256:")
    for ref in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        image.id,
        hex_id,
        image.short_id(),
        hex_id[:1],
        f"sha256:{hex_id[:5]}",
    ):
        assert images.resolve(ref).id == image.id, ref
    with pytest.raises(NotFound, match=r"^No such image: nosuch:latest$"):
        images.resolve("nosuch")
    with pytest.raises(NotFound, match="No such image: busybox:nope"):
        images.resolve("busybox:nope")
    with pytest.raises(InvalidSpec, match="must be lowercase"):
        images.resolve("BusyBox")


def test_bootstrapping_twice_gives_the_same_image(
    store_root: Path, host_busybox: bootstrap.HostBusybox
) -> None:
    first = images.bootstrap_busybox()
    second = images.bootstrap_busybox("localhost:5000/busybox:copy")
    assert second.id == first.id
    assert second.repo_tags == ("busybox:latest", "localhost:5000/busybox:copy")
    assert len(list((store_root / "image/layers").iterdir())) == 1
    assert images.ensure_busybox().id == first.id
    assert list((store_root / "tmp").iterdir()) == []


def test_an_ambiguous_id_prefix_is_not_found(store_root: Path) -> None:
    seen: dict[str, str] = {}
    for n in range(17):  # 17 ids over 16 first digits: two must share one
        doc = {
            "created": "2024-01-01T00:00:00Z",
            "comment": str(n),
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        image_id = store.put_config(json.dumps(doc).encode())
        if image_id[7] in seen:
            break
        seen[image_id[7]] = image_id
    with pytest.raises(NotFound, match=f"No such image: {image_id[7]} .*2 images"):
        images.resolve(image_id[7])


def test_import_applies_changes_and_records_docker_history(store_root: Path) -> None:
    plain = rootfs_tar({"bin/hello": b"#!/bin/sh\necho hello\n"})
    changes = [
        'CMD ["sh"]',
        'ENV A=1 B="two words"',
        "WORKDIR app",
        "EXPOSE 80 53/udp",
        "LABEL team=ops",
        "USER nobody",
        "STOPSIGNAL SIGINT",
        "VOLUME /data",
    ]
    image = images.import_tar(io.BytesIO(gzip.compress(plain)), "imported:v1", changes=changes)
    assert image.config["config"] == {
        "Cmd": ["sh"],
        "Env": ["A=1", "B=two words"],
        "WorkingDir": "/app",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Labels": {"team": "ops"},
        "User": "nobody",
        "StopSignal": "SIGINT",
        "Volumes": {"/data": {}},
    }
    [row] = image.config["history"]
    assert row == {"created": image.created, "created_by": "", "comment": "Imported from -"}
    assert image.config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(plain).hexdigest()]
    assert image.repo_tags == ("imported:v1",) and image.size == 21
    assert images.resolve("imported:v1").id == image.id
    assert (image.layer_dirs()[0] / "bin/hello").read_bytes() == b"#!/bin/sh\necho hello\n"
    shown = image.inspect()
    assert shown["Comment"] == "Imported from -" and shown["Config"]["Cmd"] == ["sh"]
    assert shown["RootFS"] == {"Type": "layers", "Layers": image.config["rootfs"]["diff_ids"]}


def test_import_with_a_message_and_a_shell_form_cmd(store_root: Path) -> None:
    tar = io.BytesIO(rootfs_tar({"f": b"x"}))
    image = images.import_tar(tar, changes=["CMD echo hi"], message="from a test")
    assert image.config["config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert image.config["history"][0]["comment"] == "from a test"
    assert image.repo_tags == ()


def test_a_bad_change_is_refused_before_anything_is_stored(store_root: Path) -> None:
    with pytest.raises(InvalidSpec, match="FROM is not a valid change command"):
        images.import_tar(io.BytesIO(rootfs_tar({"f": b"x"})), "app", changes=["FROM busybox"])
    assert leftovers(store_root) == []


@pytest.mark.parametrize("kind", ["random bytes", "escaping entry", "truncated gzip"])
def test_a_failed_import_leaves_no_layer_blob_tag_or_staging_dir(
    store_root: Path, kind: str
) -> None:
    if kind == "random bytes":
        data = random.Random(3).randbytes(10_000)
    elif kind == "escaping entry":
        data = rootfs_tar({"ok": b"fine", "../escape": b"bad"})
    else:
        data = gzip.compress(rootfs_tar({"big": random.Random(4).randbytes(50_000)}))[:-5000]
    with pytest.raises(InvalidSpec):
        images.import_tar(io.BytesIO(data), "junk:latest")
    assert leftovers(store_root) == []
    assert not (store_root / "escape").exists() and not (paths.tmp() / "escape").exists()


def test_the_same_tarball_imported_twice_shares_one_layer(store_root: Path) -> None:
    data = rootfs_tar({"f": b"same"})
    first = images.import_tar(io.BytesIO(data), changes=["CMD a"])
    second = images.import_tar(io.BytesIO(data), changes=["CMD b"])
    assert first.id != second.id and first.layer_dirs() == second.layer_dirs()
    assert len(list((store_root / "image/layers").iterdir())) == 1
    [chain] = first.chain_ids()
    assert sorted(store.images_using_layer(chain)) == sorted([first.id, second.id])


def test_tag_points_another_name_at_an_image(store_root: Path) -> None:
    image = images.import_tar(io.BytesIO(rootfs_tar({"f": b"x"})), "app:v1")
    images.tag("app:v1", "localhost:5000/team/app:v2")
    images.tag(image.short_id(), "app")
    assert images.resolve("localhost:5000/team/app:v2").repo_tags == (
        "app:latest",
        "app:v1",
        "localhost:5000/team/app:v2",
    )
    with pytest.raises(InvalidSpec, match="digest"):
        images.tag("app:v1", "app@sha256:" + "a" * 64)
    with pytest.raises(NotFound):
        images.tag("nosuch", "other")


def test_list_images_shows_the_newest_first(
    store_root: Path, host_busybox: bootstrap.HostBusybox
) -> None:
    busybox = images.bootstrap_busybox()
    imported = images.import_tar(io.BytesIO(rootfs_tar({"f": b"x"})))
    assert [i.id for i in images.list_images()] == [imported.id, busybox.id]


def test_a_dynamically_linked_or_missing_busybox_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="dynamically linked.*busybox-static"):
        bootstrap.find(Path(os.path.realpath(sys.executable)))
    with pytest.raises(NotFound, match="missing.*busybox-static"):
        bootstrap.find(tmp_path / "busybox")
