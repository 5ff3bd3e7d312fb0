"""Follow-ups of issue 4: ``system prune`` over every kind of object, ``cp``'s
``Successfully copied`` line, ``system df -v``'s container status, and ``cp`` refused on
a read-only rootfs or mount (scenarios set-b S25 read-only root, set-a volume prune)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import images, volumes
from runtime.volumes import store as volume_store
from tests.kernel.conftest import CLI, Moorage, remove_all_containers

NETWORK = "mfu-prune-net"
REPO = Path(__file__).resolve().parents[2]
HUMAN = r"\d+(?:\.\d+)?(?:B|kB|MB|GB)"


@pytest.fixture(autouse=True)
def _nothing_outlives_a_test(moorage: Moorage) -> Iterator[None]:
    yield
    remove_all_containers()  # first: volumes and networks in use cannot go
    moorage("network", "rm", NETWORK)
    with volumes.locked():
        for volume in volumes.list_volumes():
            volume_store.delete(volume.name)
    for ref in ("mfu-kept:1", "mfu-unused:1"):
        moorage("rmi", "-f", ref)


def _image_ids(moorage: Moorage) -> set[str]:
    return set(moorage.ok("images", "-aq", "--no-trunc").split())


def _volume_names(moorage: Moorage) -> set[str]:
    return set(moorage.ok("volume", "ls", "-q").split())


# --- system prune ----------------------------------------------------------------------


def test_system_prune_asks_with_dockers_prompt_and_does_nothing_on_no(moorage: Moorage) -> None:
    moorage.ok("run", "--network", "none", "--name", "stopped", "busybox", "true")
    result = moorage("system", "prune", "--volumes", input="n\n")
    assert result.code == 0
    assert result.out == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all anonymous volumes not used by at least one container\n"
        "  - all dangling images\n"
        "  - unused build cache\n"
        "\nAre you sure you want to continue? [y/N] "
    )
    assert moorage.ok("ps", "-aq", "-f", "name=stopped").strip()
    prompt = moorage("system", "prune", "-a", input="\n").out
    assert "  - all images without at least one container associated to them\n" in prompt
    assert "  - all build cache\n" in prompt and "anonymous volumes" not in prompt
    assert moorage.ok("ps", "-aq", "-f", "name=stopped").strip()


def test_system_prune_removes_stopped_containers_networks_volumes_and_dangling_images(
    moorage: Moorage,
) -> None:
    """Containers go first, so the dangling image and the anonymous volume a stopped
    container held go in the same call; running containers, tagged images and named
    volumes stay."""
    moorage.ok(
        "run",
        "--network",
        "none",
        "--name",
        "writer",
        "-v",
        "/anon",
        "-v",
        "mfu-named:/named",
        "busybox",
        "sh",
        "-c",
        "head -c 50000 /dev/urandom > /blob",
    )
    writer = moorage.ok("inspect", "-f", "{{.Id}}", "writer").strip()
    anonymous = _volume_names(moorage) - {"mfu-named"}
    assert len(anonymous) == 1
    dangling = moorage.ok("commit", "writer").strip()
    kept = moorage.ok("commit", "writer", "mfu-kept:1").strip()
    assert dangling != kept
    moorage.ok("run", "--network", "none", "--name", "from-dangling", dangling, "true")
    moorage.ok("network", "create", NETWORK)
    moorage.ok("run", "--network", "none", "-d", "--name", "runner", "busybox", "sleep", "300")
    out = moorage.ok("system", "prune", "-f", "--volumes")
    sections = out.split("\n\n")
    assert sections[0].startswith("Deleted Containers:\n") and writer in sections[0]
    assert "Deleted Networks:\n" + NETWORK in out
    # The commits carry /anon as a VOLUME (as Docker's do), so from-dangling made a
    # second anonymous volume: both go, in any order.
    volumes_section = out[out.index("Deleted Volumes:\n") : out.index("Deleted Images:\n")]
    assert f"\n{next(iter(anonymous))}\n" in volumes_section
    # Other dangling images of the session may be listed too; this one must be.
    images_section = out[out.index("Deleted Images:\n") :]
    assert f"\ndeleted: {dangling}\n" in images_section
    assert re.search(rf"\nTotal reclaimed space: {HUMAN}\n$", out)
    assert (
        out.index("Deleted Containers")
        < out.index("Deleted Networks")
        < out.index("Deleted Volumes")
        < out.index("Deleted Images")
    )
    assert not re.search(r"Total reclaimed space: 0B", out)  # the writer's 50 kB at least
    left = moorage.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert left == ["runner"]
    assert dangling not in _image_ids(moorage) and kept in _image_ids(moorage)
    assert _volume_names(moorage) == {"mfu-named"}
    assert NETWORK not in moorage.ok("network", "ls", "--format", "{{.Name}}").split()


def test_system_prune_with_nothing_to_remove_prints_only_the_total(moorage: Moorage) -> None:
    moorage.ok("system", "prune", "-f")  # whatever earlier tests left
    assert moorage.ok("system", "prune", "-f") == "Total reclaimed space: 0B\n"


def test_system_prune_all_removes_unused_tagged_images_but_not_used_ones_or_named_volumes(
    moorage: Moorage, busybox: images.Image
) -> None:
    moorage.ok("run", "--network", "none", "--name", "writer", "busybox", "sh", "-c", "echo x > /x")
    unused = moorage.ok("commit", "writer", "mfu-unused:1").strip()
    moorage.ok("volume", "create", "mfu-named")
    # A running container keeps busybox, which later tests need.
    moorage.ok("run", "--network", "none", "-d", "--name", "runner", "busybox", "sleep", "300")
    out = moorage.ok("system", "prune", "-a", "-f", "--volumes")
    assert "untagged: mfu-unused:1\n" in out and f"deleted: {unused}\n" in out
    assert "Deleted Volumes" not in out  # -a never reaches named volumes here, as in docker
    assert busybox.id in _image_ids(moorage) and unused not in _image_ids(moorage)
    assert _volume_names(moorage) == {"mfu-named"}


# --- cp: Successfully copied -------------------------------------------------------------


def _cp_on_a_terminal(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """``moorage cp ARGS`` with stdout on a pty (docker prints progress only then)."""
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            CLI + ["cp", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=cwd,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
    finally:
        os.close(slave)
        os.close(master)
    return done.returncode, done.stderr


def test_cp_reports_the_bytes_copied_on_stderr_when_stdout_is_a_terminal(
    moorage: Moorage, tmp_path: Path
) -> None:
    moorage.ok(
        "run",
        "--network",
        "none",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/urandom > /blob",
    )
    code, err = _cp_on_a_terminal("box:/blob", str(tmp_path / "blob"))
    assert code == 0, err
    match = re.fullmatch(
        rf"Successfully copied ({HUMAN}) to {re.escape(str(tmp_path))}/blob\n", err
    )
    assert match and match[1].endswith("kB") and 100 <= float(match[1][:-2]) < 130
    assert (tmp_path / "blob").stat().st_size == 100000
    code, err = _cp_on_a_terminal("box:/blob", ".", cwd=tmp_path / "..")
    assert code == 0 and err.endswith(f" to {tmp_path.parent}/.\n"), err  # docker keeps '.'
    (tmp_path / "small").write_text("hi\n")
    code, err = _cp_on_a_terminal(str(tmp_path / "small"), "box:/tmp/")
    assert code == 0 and re.fullmatch(rf"Successfully copied {HUMAN} to box:/tmp/\n", err), err
    assert moorage.ok("cp", "box:/tmp/small", "-")  # it arrived


def test_cp_is_quiet_with_q_or_when_stdout_is_not_a_terminal(
    moorage: Moorage, tmp_path: Path
) -> None:
    moorage.ok("run", "--network", "none", "--name", "box", "busybox", "true")
    code, err = _cp_on_a_terminal("-q", "box:/etc/hostname", str(tmp_path / "a"))
    assert (code, err) == (0, "")
    piped = moorage("cp", "box:/etc/hostname", str(tmp_path / "b"))
    assert (piped.code, piped.err, piped.out) == (0, "", "")
    assert (tmp_path / "b").exists()


# --- system df -v ------------------------------------------------------------------------


def test_system_df_verbose_shows_container_status_like_ps(moorage: Moorage) -> None:
    assert (
        moorage("run", "--network", "none", "--name", "done", "busybox", "sh", "-c", "exit 3").code
        == 3
    )
    moorage.ok("run", "--network", "none", "-d", "--name", "up", "busybox", "sleep", "300")
    moorage.ok("create", "--network", "none", "--name", "fresh", "busybox", "true")
    out = moorage.ok("system", "df", "-v")
    rows = {
        line.split()[-1]: line
        for line in out.split("Containers space usage:\n\n")[1].split("\n\n")[0].splitlines()[1:]
    }
    assert re.search(r"Exited \(3\) (Less than a second|\d+ seconds?) ago", rows["done"])
    assert re.search(r"\bUp (Less than a second|\d+ seconds?)\b", rows["up"])
    assert re.search(r"\bCreated\b", rows["fresh"])
    ps = moorage.ok("ps", "-a", "--format", "{{.Names}}|{{.Command}}").splitlines()
    for name, command in (line.split("|") for line in ps):
        assert command in rows[name]  # the same quoted, truncated COMMAND as ps


# --- cp into read-only places --------------------------------------------------------------


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_cp_into_a_read_only_rootfs_or_mount_is_refused_like_docker(
    moorage: Moorage, tmp_path: Path, running: bool
) -> None:
    host_ro = tmp_path / "ro"
    host_ro.mkdir()
    command = ["sleep", "300"] if running else ["true"]
    moorage.ok(
        "run",
        "--network",
        "none",
        *(["-d"] if running else []),
        "--name",
        "ro",
        "--read-only",
        "-v",
        f"{host_ro}:/data:ro",
        "-v",
        "mfu-rw:/rw",
        "--tmpfs",
        "/tmp",
        "busybox",
        *command,
    )
    source = tmp_path / "f"
    source.write_text("payload\n")
    for dest, message in (
        ("/etc/", "container rootfs is marked read-only"),
        ("/newfile", "container rootfs is marked read-only"),
        ("/tmp/", "container rootfs is marked read-only"),  # as docker
        ("/data/", "mounted volume is marked read-only"),
        # moby looks for the directory first, then at read-only
        ("/data/sub/x", "Could not find the file /data/sub in container ro"),
    ):
        result = moorage("cp", str(source), f"ro:{dest}")
        assert result.code == 1, dest
        assert result.err == f"Error response from daemon: {message}\n", (dest, result.err)
    refused = moorage.popen(
        "cp", "-", "ro:/etc", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, err = refused.communicate(_tar_of("g", b"x\n"), timeout=60)
    assert refused.returncode == 1 and b"container rootfs is marked read-only" in err
    assert os.listdir(host_ro) == []
    moorage.ok("cp", str(source), "ro:/rw/")  # a writable volume takes it
    volume = json.loads(moorage.ok("volume", "inspect", "mfu-rw"))[0]["Mountpoint"]
    assert Path(volume, "f").read_text() == "payload\n"


def test_cp_into_a_read_only_volume_of_a_writable_container_is_refused(
    moorage: Moorage, tmp_path: Path
) -> None:
    moorage.ok(
        "run",
        "--network",
        "none",
        "--name",
        "box",
        "-v",
        "mfu-vol:/v",
        "--mount",
        "type=volume,source=mfu-inner,target=/v/inner,readonly",
        "busybox",
        "true",
    )
    source = tmp_path / "f"
    source.write_text("x\n")
    for dest in ("/v/inner/", "/v/inner/new"):  # the innermost mount decides
        result = moorage("cp", str(source), f"box:{dest}")
        assert (result.code, result.err) == (
            1,
            "Error response from daemon: mounted volume is marked read-only\n",
        ), dest
    moorage.ok("cp", str(source), "box:/v/")
    moorage.ok("cp", str(source), "box:/etc/")  # the rootfs is writable
    assert moorage.ok("cp", "box:/v/f", "-") and moorage.ok("cp", "box:/etc/f", "-")


# --- commit's fast path: diff/ copied from the upper dir -----------------------------------


def _upper_with_every_kind_of_entry(upper: Path) -> None:
    """An overlay upper dir as a container leaves it: files, a whiteout, an opaque dir,
    hard and symbolic links, a fifo, a device, setuid, owners, xattrs, an excluded file."""
    (upper / "etc").mkdir()
    (upper / "etc/hostname").write_text("engine's\n")  # excluded: an engine mount point
    (upper / "data/sub").mkdir(parents=True)
    (upper / "data/sub/f").write_bytes(os.urandom(300_000))
    os.link(upper / "data/sub/f", upper / "data/hard")
    os.symlink("sub/f", upper / "data/link")
    os.mkfifo(upper / "data/fifo")
    os.mknod(upper / "data/null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(upper / "data/gone", 0o000 | 0o020000, os.makedev(0, 0))  # a whiteout
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "opaque", "trusted.overlay.origin", b"host bookkeeping")
    (upper / "opaque/new").write_text("n\n")
    (upper / "suid").write_text("#!/bin/sh\n")
    os.chown(upper / "suid", 1234, 5678)
    os.chmod(upper / "suid", 0o4755)
    os.setxattr(upper / "suid", "user.note", b"kept")
    os.utime(upper / "data/sub", (1_000_000, 1_000_000))


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    seen: dict[tuple[int, int], str] = {}
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            xattrs = (
                {}
                if os.path.islink(path)
                else {
                    n: os.getxattr(path, n, follow_symlinks=False)
                    for n in os.listxattr(path, follow_symlinks=False)
                }
            )
            data = (
                Path(path).read_bytes()
                if os.path.isfile(path) and not os.path.islink(path)
                else os.readlink(path)
                if os.path.islink(path)
                else b""
            )
            first = seen.setdefault((st.st_dev, st.st_ino), rel)
            out[rel] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_rdev,
                data,
                xattrs,
                # ms: the tar keeps mtimes as decimal seconds; whiteouts: none
                None
                if os.path.isdir(path) or (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
                else st.st_mtime_ns // 1_000_000,
                first,
            )
    return out


def test_commit_fast_path_stores_the_same_layer_as_unpacking_its_tar(
    busybox: images.Image, tmp_path: Path
) -> None:
    """The quiesced-container path (tar + kernel copy of the upper dir) must give the
    diff id and the diff/ tree the tar-unpacking path gives."""
    from runtime.images import layers, store

    upper = tmp_path / "upper"
    upper.mkdir()
    _upper_with_every_kind_of_entry(upper)
    made = []
    try:
        slow = layers.commit_layer(upper, None, ["etc/hostname"], stable=False)
        made.append(slow.diff_id)
        slow_tree = _tree(store.layer_path(slow.diff_id) / "diff")
        slow_tar = store.layer_tar(slow.diff_id).read_bytes()
        store.remove_layer(slow.diff_id)
        fast = layers.commit_layer(upper, None, ["etc/hostname"], stable=True)
        made.append(fast.diff_id)
        assert (fast.diff_id, fast.size) == (slow.diff_id, slow.size)
        assert store.layer_tar(fast.diff_id).read_bytes() == slow_tar
        fast_tree = _tree(store.layer_path(fast.diff_id) / "diff")
        assert fast_tree == slow_tree
        assert "etc" not in fast_tree and fast_tree["opaque"][5] == {"trusted.overlay.opaque": b"y"}
        assert fast_tree["data/hard"][7] == fast_tree["data/sub/f"][7]  # one inode
    finally:
        for diff_id in made:
            store.remove_layer(diff_id)


def test_a_committed_image_runs_with_the_deletions_and_links_of_its_container(
    moorage: Moorage,
) -> None:
    moorage.ok(
        "run",
        "--network",
        "none",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "rm /bin/ls; mkdir -p /d; echo hi > /d/f; ln /d/f /d/h; ln -s f /d/s",
    )
    moorage.ok("commit", "changer", "mfu-kept:1")
    out = moorage.ok(
        "run",
        "--rm",
        "--network",
        "none",
        "mfu-kept:1",
        "sh",
        "-c",
        "test -e /bin/ls && echo ls-back; cat /d/s; stat -c %h /d/f",
    )
    assert out == "hi\n2\n"
