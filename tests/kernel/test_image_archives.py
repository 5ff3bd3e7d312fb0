"""save and load: docker-archive and OCI layouts, round trips through the real CLI, and
interop with Debian's skopeo in both directions.

Each test gets a private MOORAGE_ROOT (the CLI subprocesses inherit it) holding the
bootstrapped busybox and a two-layer image ``app:v1`` whose second layer adds a file,
deletes one (a ``.wh.`` whiteout) and empties a directory (an opaque whiteout), so a
round trip that loses the layer bytes or the OCI whiteout rules shows up when it runs.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import images
from runtime.errors import NotFound
from runtime.images import archives, bootstrap, references, store
from runtime.images import config as image_config
from tests.kernel.archive_corpus import Img, entry, layer, leftovers, oci_files, sha, tar_of

pytestmark = pytest.mark.kernel
CLI = [sys.executable, "-m", "runtime.cli"]


def moorage(
    *args: str, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        CLI + list(args),
        input=input,
        capture_output=True,
        timeout=120,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, f"moorage {' '.join(args)}: {done.stderr.decode()}"
    return done


@pytest.fixture
def store_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="archives-", dir=os.environ["MOORAGE_ROOT"]))
    monkeypatch.setenv("MOORAGE_ROOT", str(base / "root"))
    try:
        bootstrap.find()
    except NotFound as e:
        pytest.skip(str(e))
    yield base / "root"
    # `run --rm` returns on the exit code; the monitor removes the container just after.
    # Wait for that, so the store is not deleted under a monitor still tearing down.
    containers = base / "root" / "containers"
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline
        and containers.is_dir()
        and any(not p.name.startswith(".") for p in containers.iterdir())
    ):
        time.sleep(0.1)
    shutil.rmtree(base)


def make_app(tag: str = "app:v1") -> images.Image:
    """busybox plus a layer with a new file, a whiteout and an opaque directory."""
    base = images.bootstrap_busybox()
    top = tar_of(
        entry("hello", data=b"hello from layer two\n"),
        entry("etc/.wh.group"),
        entry("var", tarfile.DIRTYPE),
        entry("var/.wh..wh..opq"),
        entry("var/fresh", data=b"only me\n"),
    )
    added = store.add_layer(
        io.BytesIO(top), base.chain_ids()[-1], allow_devices=False, allow_setuid=False
    )
    history = base.config["history"] + [
        {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c echo hi > /hello"}
    ]
    doc = image_config.new_image(
        diff_ids=base.diff_ids() + [added.diff_id],
        container_config={"Env": [bootstrap.PATH_ENV], "Cmd": ["cat", "/hello"]},
        history=history,
        created="2024-01-01T00:00:00Z",
    )
    image_id = store.put_config(image_config.encode(doc))
    references.set_tag(references.parse(tag), image_id)
    return images.resolve(image_id)


def remove_image(image_id: str) -> None:
    """What rmi will do: untag, drop the config, drop layers no other image uses."""
    for name, target in references.tags().items():
        if target == image_id:
            references.remove_tag(references.parse(name))
    chains = images.resolve(image_id).chain_ids()
    store.remove_config(image_id)
    for chain in reversed(chains):
        if not store.images_using_layer(chain):
            store.remove_layer(chain)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}  # type: ignore[union-attr]


def test_saved_layers_hash_to_the_configs_diff_ids(store_root: Path) -> None:
    app = make_app()
    out = store_root.parent / "app.tar"
    moorage("save", "-o", str(out), "app:v1")
    files = members(out)
    [entry_] = json.loads(files["manifest.json"])
    assert entry_["RepoTags"] == ["app:v1"]
    assert sha(files[entry_["Config"]]) == app.id
    assert [sha(files[name]) for name in entry_["Layers"]] == app.diff_ids()
    repositories = json.loads(files["repositories"])
    assert repositories == {"app": {"v1": app.chain_ids()[-1][7:]}}


def test_save_rmi_load_run_keeps_the_id_history_and_whiteouts(store_root: Path) -> None:
    app = make_app()
    out = store_root.parent / "app.tar"
    moorage("save", "-o", str(out), "app:v1")
    remove_image(app.id)
    with pytest.raises(NotFound):
        images.resolve("app:v1")
    done = moorage("load", "-i", str(out))
    assert done.stdout.decode() == "Loaded image: app:v1\n"
    loaded = images.resolve("app:v1")
    assert loaded.id == app.id
    assert loaded.config["history"] == app.config["history"]
    ran = moorage(
        "run",
        "--rm",
        "--network",
        "none",
        "app:v1",
        "sh",
        "-c",
        "cat /hello; ls /var; test -e /etc/group || echo group-gone",
    )
    assert ran.stdout.decode() == "hello from layer two\nfresh\ngroup-gone\n"


def test_save_of_two_tags_and_an_id_loads_all_of_them(store_root: Path) -> None:
    app = make_app()
    images.tag("app:v1", "app:v2")
    busybox = images.resolve("busybox")
    out = store_root.parent / "two.tar"
    moorage("save", "-o", str(out), "app:v1", "app:v2", busybox.id)
    manifest = json.loads(members(out)["manifest.json"])
    assert [m["RepoTags"] for m in manifest] == [["app:v1", "app:v2"], None]
    remove_image(app.id)
    remove_image(busybox.id)
    assert leftovers(store_root) == []
    lines = moorage("load", "-i", str(out)).stdout.decode().splitlines()
    assert lines == [
        "Loaded image: app:v1",
        "Loaded image: app:v2",
        f"Loaded image ID: {busybox.id}",
    ]
    assert images.resolve("app:v2").id == app.id


def test_save_of_a_repository_name_includes_every_tag(store_root: Path) -> None:
    make_app()
    images.tag("app:v1", "app:v2")
    images.tag("busybox", "app:other")
    out = store_root.parent / "all.tar"
    moorage("save", "-o", str(out), "app")
    tags = [m["RepoTags"] for m in json.loads(members(out)["manifest.json"])]
    assert sorted(sum(tags, [])) == ["app:other", "app:v1", "app:v2"]


def test_save_to_a_pipe_and_load_from_stdin_also_gzip_compressed(store_root: Path) -> None:
    app = make_app()
    data = moorage("save", "app:v1").stdout
    again = moorage("save", "app:v1").stdout
    assert data == again  # deterministic archives
    for payload in (data, gzip.compress(data)):
        remove_image(app.id)
        assert moorage("load", input=payload).stdout == b"Loaded image: app:v1\n"
        assert images.resolve("app:v1").id == app.id


def test_save_refuses_to_write_to_a_terminal_or_an_unknown_image(store_root: Path) -> None:
    done = moorage("save", "nosuch:image", check=False)
    assert done.returncode != 0 and b"No such image: nosuch:image" in done.stderr
    assert moorage("save", "--format", "zip", "busybox", check=False).returncode != 0


def test_loading_over_a_tag_renames_the_old_image_like_docker(store_root: Path) -> None:
    app = make_app()
    out = store_root.parent / "app.tar"
    moorage("save", "-o", str(out), "app:v1")
    images.tag("busybox", "app:v1")
    busybox = images.resolve("busybox")
    lines = moorage("load", "-i", str(out)).stdout.decode().splitlines()
    assert lines == [
        f"The image app:v1 already exists, renaming the old one with ID "
        f"{busybox.id} to empty string",
        "Loaded image: app:v1",
    ]
    assert images.resolve("app:v1").id == app.id


@pytest.mark.parametrize("fmt", ["oci", "oci-dir"])
def test_oci_layout_round_trip(store_root: Path, fmt: str) -> None:
    app = make_app()
    out = store_root.parent / f"app-{fmt}"
    moorage("save", "--format", fmt, "-o", str(out), "app:v1")
    files = (
        members(out)
        if fmt == "oci"
        else {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    )
    index = json.loads(files["index.json"])
    [desc] = index["manifests"]
    assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/app:v1"
    manifest = json.loads(files[f"blobs/sha256/{desc['digest'][7:]}"])
    assert [x["digest"] for x in manifest["layers"]] == app.diff_ids()
    remove_image(app.id)
    assert moorage("load", "-i", str(out)).stdout == b"Loaded image: app:v1\n"
    assert images.resolve("app:v1").config == app.config
    ran = moorage("run", "--rm", "--network", "none", "app:v1")
    assert ran.stdout == b"hello from layer two\n"


def test_a_docker_25_archive_with_gzip_layers_and_blobs_paths_loads(store_root: Path) -> None:
    """Docker 25+ saves an OCI layout plus manifest.json naming blobs/sha256/... files."""
    lay = layer({"bin/x": b"x"})
    img = Img([lay], ["team/app:v3"])
    files = oci_files(img, gzip_layers=True)
    blob = next(n for n, d in files.items() if d[:2] == b"\x1f\x8b")
    files["manifest.json"] = json.dumps(
        [{"Config": f"blobs/sha256/{img.id[7:]}", "RepoTags": ["team/app:v3"], "Layers": [blob]}]
    ).encode()
    path = store_root.parent / "d25.tar"
    path.write_bytes(tar_of(*(entry(n, data=d) for n, d in files.items())))
    [loaded] = archives.load(path)
    assert loaded.tags == ("team/app:v3",) and loaded.image_id == img.id
    # The store keeps the uncompressed tar, which is what the diff id names.
    assert sha(store.layer_tar(sha(lay)).read_bytes()) == sha(lay)


def test_a_legacy_archive_whose_repeated_layer_is_a_symlink_loads(store_root: Path) -> None:
    """docker save before 25 and skopeo link a repeated layer to its first copy."""
    lay = layer({"bin/x": b"x"})
    img = Img([lay], ["app:legacy"])
    manifest = [
        {"Config": f"{img.id[7:]}.json", "RepoTags": ["app:legacy"], "Layers": ["b/layer.tar"]}
    ]
    path = store_root.parent / "legacy.tar"
    path.write_bytes(
        tar_of(
            entry(f"{sha(lay)[7:]}.tar", data=lay),
            entry("b", tarfile.DIRTYPE),
            entry("b/layer.tar", tarfile.SYMTYPE, linkname=f"../{sha(lay)[7:]}.tar"),
            entry(f"{img.id[7:]}.json", data=img.config),
            entry("manifest.json", data=json.dumps(manifest).encode()),
        )
    )
    [loaded] = archives.load(path)
    assert loaded.tags == ("app:legacy",)


def test_a_busybox_layer_stored_without_its_tar_is_rebuilt_for_save(store_root: Path) -> None:
    busybox = images.bootstrap_busybox()
    [chain] = busybox.chain_ids()
    store.layer_tar(chain).unlink()
    out = store_root.parent / "bb.tar"
    archives.save(["busybox"], out)
    assert store.layer_tar(chain).is_file()
    app = make_app()
    top = app.chain_ids()[-1]
    store.layer_tar(top).unlink()
    with pytest.raises(NotFound, match="has no stored tarball"):
        archives.save(["app:v1"], out)
    assert members(out)["manifest.json"]  # the earlier archive is intact


# --- skopeo ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    probe = subprocess.run([path, "--version"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"skopeo does not run: {probe.stderr.decode().strip()}")
    return path


def run_skopeo(skopeo: str, *args: str) -> str:
    done = subprocess.run(
        [skopeo, "--insecure-policy", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"skopeo {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_skopeo_reads_moorages_docker_archive_and_copies_it_to_oci(
    store_root: Path, skopeo: str
) -> None:
    app = make_app()
    out = store_root.parent / "app.tar"
    moorage("save", "-o", str(out), "app:v1")
    info = json.loads(run_skopeo(skopeo, "inspect", f"docker-archive:{out}"))
    assert info["Layers"] == app.diff_ids()
    layout = store_root.parent / "sk-oci"
    run_skopeo(skopeo, "copy", f"docker-archive:{out}", f"oci:{layout}:v9")
    remove_image(app.id)
    [loaded] = archives.load(layout)
    assert loaded.tags == ()  # a bare ref name ('v9') names no repository
    ran = moorage("run", "--rm", "--network", "none", loaded.image_id)
    assert ran.stdout == b"hello from layer two\n"


def test_skopeo_reads_moorages_oci_layout(store_root: Path, skopeo: str) -> None:
    app = make_app()
    out = store_root.parent / "app-oci"
    moorage("save", "--format", "oci-dir", "-o", str(out), "app:v1")
    info = json.loads(run_skopeo(skopeo, "inspect", f"oci:{out}:v1"))
    assert info["Layers"] == app.diff_ids()


def test_skopeo_made_archives_load_and_run(store_root: Path, skopeo: str) -> None:
    """Scenario: an archive made by skopeo loads and runs (issue 4, done-when)."""
    app = make_app()
    source = store_root.parent / "src-oci"
    moorage("save", "--format", "oci-dir", "-o", str(source), "app:v1")
    made = store_root.parent / "sk.tar"
    run_skopeo(skopeo, "copy", f"oci:{source}:v1", f"docker-archive:{made}:made/by:skopeo")
    oci_made = store_root.parent / "sk-oci.tar"
    run_skopeo(skopeo, "copy", f"oci:{source}:v1", f"oci-archive:{oci_made}:made/by:oci")
    remove_image(app.id)
    assert moorage("load", "-i", str(made)).stdout == b"Loaded image: made/by:skopeo\n"
    assert moorage("load", "-i", str(oci_made)).stdout == b"Loaded image: made/by:oci\n"
    for ref in ("made/by:skopeo", "made/by:oci"):
        ran = moorage("run", "--rm", "--network", "none", ref)
        assert ran.stdout == b"hello from layer two\n"


def test_save_rmi_load_brings_busybox_back_with_the_same_id(store_root: Path) -> None:
    """Scenario S25 (set-b): save -o, tar tf, rmi, load -i, images shows the same id."""
    busybox = images.bootstrap_busybox()
    out = store_root.parent / "myfile.tar"
    moorage("save", "-o", str(out), "busybox:latest")
    listing = subprocess.run(
        ["tar", "tf", str(out)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "manifest.json" in listing and "repositories" in listing
    assert any(name.endswith("/layer.tar") for name in listing)
    moorage("rmi", "busybox")
    assert moorage("images", "-q", "busybox").stdout == b""
    assert moorage("load", "-i", str(out)).stdout == b"Loaded image: busybox:latest\n"
    shown = moorage("images", "--no-trunc", "-q", "busybox").stdout.decode().split()
    assert shown == [busybox.id]


def test_a_failed_save_leaves_no_file_and_a_full_directory_is_refused(store_root: Path) -> None:
    app = make_app()
    store.layer_tar(app.chain_ids()[-1]).unlink()
    out = store_root.parent / "never.tar"
    done = moorage("image", "save", "-o", str(out), "app:v1", check=False)
    assert done.returncode != 0 and b"has no stored tarball" in done.stderr
    assert not out.exists() and list(store_root.parent.glob(".never*")) == []
    full = store_root.parent / "full"
    full.mkdir()
    (full / "mine").write_text("keep")
    done = moorage("save", "--format", "oci-dir", "-o", str(full), "busybox", check=False)
    assert done.returncode != 0 and b"not an empty directory" in done.stderr
    assert [p.name for p in full.iterdir()] == ["mine"]
