"""``moorage cp`` in both directions, on running and stopped containers, with Docker's
archive semantics, and hostile input refused (issue 4: cp; scenarios set-b S25)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime import containers
from runtime.images import copying
from tests.kernel.conftest import Moorage


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x\n", **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def _entry(name: str, kind: bytes, **fields: object) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info, None


@pytest.fixture(params=["running", "stopped"])
def box(request: pytest.FixtureRequest, moorage: Moorage) -> str:
    """A container with a symlink to /etc and a file only it has, running or stopped."""
    script = (
        "ln -s /etc /hostetc; ln -s /etc/debian_version /leak; "
        "echo container-only > /etc/only-here; mkdir -p /data/sub; "
        "echo d > /data/sub/f; "
    )
    if request.param == "running":
        moorage.ok("run", "-d", "--name", "box", "busybox", "sh", "-c", script + "sleep 300")
        moorage.ok("exec", "box", "test", "-f", "/data/sub/f")  # the script has run
    else:
        moorage.ok("run", "--name", "box", "busybox", "sh", "-c", script)
    return request.param


def test_cp_out_reads_the_containers_files_never_the_hosts(
    box: str, moorage: Moorage, tmp_path: Path
) -> None:
    """A container symlink to /etc resolves inside the container, whatever its state."""
    moorage.ok("cp", "box:/hostetc/only-here", str(tmp_path))
    assert (tmp_path / "only-here").read_text() == "container-only\n"
    moorage.ok("cp", "box:/hostetc/hostname", str(tmp_path / "h"))
    assert (tmp_path / "h").read_text() != Path("/etc/hostname").read_text()
    assert os.path.exists("/etc/debian_version")  # the host has it, the container not
    leaked = moorage("cp", "-L", "box:/leak", str(tmp_path / "leak"))
    assert leaked.code == 1 and "Could not find the file" in leaked.err
    assert not (tmp_path / "leak").exists()
    moorage.ok("cp", "box:/leak", str(tmp_path / "link"))  # without -L: the link itself
    assert os.readlink(tmp_path / "link") == "/etc/debian_version"
    moorage.ok("cp", "box:/etc/hosts", str(tmp_path))  # the container's generated file
    assert "localhost" in (tmp_path / "hosts").read_text()


def test_cp_out_follows_docker_archive_rules(box: str, moorage: Moorage, tmp_path: Path) -> None:
    moorage.ok("cp", "box:/data", str(tmp_path / "new"))  # dir to a missing path
    assert (tmp_path / "new" / "sub" / "f").read_text() == "d\n"
    moorage.ok("cp", "box:/data", str(tmp_path / "new"))  # dir into an existing dir
    assert (tmp_path / "new" / "data" / "sub" / "f").exists()
    (tmp_path / "flat").mkdir()
    moorage.ok("cp", "box:/data/.", str(tmp_path / "flat"))  # contents only
    assert sorted(os.listdir(tmp_path / "flat")) == ["sub"]
    (tmp_path / "file").write_text("old")
    failed = moorage("cp", "box:/data", str(tmp_path / "file"))
    assert failed.code == 1 and "cannot copy a directory to a file" in failed.err
    moorage.ok("cp", "box:/data/sub/f", str(tmp_path / "file"))  # file over a file
    assert (tmp_path / "file").read_text() == "d\n"
    assert os.stat(tmp_path / "file").st_uid == os.getuid()
    stream = moorage.popen("cp", "box:/data", "-", stdout=-1, stderr=-1)
    data, _ = stream.communicate(timeout=60)
    assert stream.returncode == 0
    assert tarfile.open(fileobj=io.BytesIO(data)).getnames() == ["data", "data/sub", "data/sub/f"]


def test_cp_in_follows_docker_archive_rules(box: str, moorage: Moorage, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "a").write_text("a\n")
    (tmp_path / "one").write_text("one\n")
    moorage.ok("cp", str(tmp_path / "one"), "box:/data/")  # file into a dir
    moorage.ok("cp", str(src), "box:/fresh")  # dir to a missing path
    moorage.ok("cp", str(src), "box:/data")  # dir into a dir
    moorage.ok("cp", str(src) + "/.", "box:/data/sub")  # contents only
    moorage.ok("cp", str(tmp_path / "one"), "box:/etc/passwd")  # over a lower-layer file
    failed = moorage("cp", str(tmp_path / "one"), "box:/nowhere/")
    assert failed.code == 1
    out = tmp_path / "back"
    moorage.ok("cp", "-a", "box:/", str(out))
    assert (out / "data" / "one").read_text() == "one\n"
    assert (out / "fresh" / "inner" / "a").read_text() == "a\n"
    assert (out / "data" / "src" / "inner" / "a").exists()
    assert (out / "data" / "sub" / "inner" / "a").exists()
    assert (out / "etc" / "passwd").read_text() == "one\n"
    assert os.stat(out / "data" / "one").st_uid == 0
    assert moorage.ok("run", "--rm", "busybox", "cat", "/etc/passwd") != "one\n"


def test_cp_into_a_stopped_container_is_seen_when_it_starts(
    moorage: Moorage, tmp_path: Path
) -> None:
    moorage.ok("create", "--name", "later", "busybox", "cat", "/etc/group", "/new")
    (tmp_path / "group").write_text("copied-up\n")
    (tmp_path / "new").write_text("new\n")
    moorage.ok("cp", str(tmp_path / "group"), "later:/etc/group")
    moorage.ok("cp", str(tmp_path / "new"), "later:/")
    assert moorage.ok("start", "-a", "later") == "copied-up\nnew\n"
    assert moorage.ok("diff", "later").splitlines() == ["C /etc", "C /etc/group", "A /new"]


def test_cp_of_a_tar_on_stdin_extracts_into_a_directory(moorage: Moorage) -> None:
    moorage.ok("run", "-d", "--name", "tgt", "busybox", "sleep", "300")
    data = _tar(_file("dir/f", b"from-tar\n"))
    done = moorage.popen("cp", "-", "tgt:/tmp", stdin=-1, stdout=-1, stderr=-1)
    _, err = done.communicate(data, timeout=60)
    assert done.returncode == 0, err
    assert moorage.ok("exec", "tgt", "cat", "/tmp/dir/f") == "from-tar\n"


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ((_file("../escape", b"bad"),), "'..'"),
        ((_file("/abs", b"bad"),), "absolute"),
        (
            (_entry("ln", tarfile.SYMTYPE, linkname="/etc"), _file("ln/evil", b"bad")),
            "symbolic link",
        ),
        ((_entry("hard", tarfile.LNKTYPE, linkname="../../etc/hostname"),), "'..'"),
        ((_entry("dev", tarfile.CHRTYPE, devmajor=1, devminor=3),), "device node"),
    ],
)
def test_cp_of_a_hostile_tar_is_refused(
    moorage: Moorage, members: tuple, reason: str, tmp_path: Path
) -> None:
    moorage.ok("create", "--name", "victim", "busybox")
    done = moorage.popen("cp", "-", "victim:/tmp", stdin=-1, stdout=-1, stderr=-1)
    _, err = done.communicate(_tar(*members), timeout=60)
    assert done.returncode == 1 and reason in err.decode()
    assert not Path("/escape").exists() and not Path("/abs").exists()
    assert not Path("/etc/evil").exists()


def test_cp_of_garbage_on_stdin_is_not_a_tar(moorage: Moorage) -> None:
    moorage.ok("create", "--name", "victim2", "busybox")
    done = moorage.popen("cp", "-", "victim2:/tmp", stdin=-1, stdout=-1, stderr=-1)
    _, err = done.communicate(b"this is not a tar file at all" * 40, timeout=60)
    assert done.returncode == 1 and b"not a tar" in err


def test_cp_between_two_containers_or_two_host_paths_is_refused(moorage: Moorage) -> None:
    assert "not supported" in moorage("cp", "a:/x", "b:/y").err
    assert "at least one container" in moorage("cp", "/x", "/y").err


def _upper_mode(name: str, path: str) -> int:
    record = containers.store.load(containers.store.resolve(name))
    return stat.S_IMODE(os.lstat(record.directory / "upper" / path).st_mode)


def test_cp_in_strips_setuid_unless_archive_mode_from_a_trusted_caller(moorage: Moorage) -> None:
    """Issue 4, setuid files from non-admin sources: a setuid-root file lands without
    its bits; ``cp -a`` from the CLI (root) keeps them; an untrusted caller (a dashboard
    user who is not an admin) gets them stripped even in archive mode."""
    moorage.ok("create", "--name", "suid", "busybox")
    su = _tar(_file("su", b"#!/bin/sh\n", mode=0o6755, uid=0, gid=0))
    for flags, where in (([], "tmp"), (["-a"], "root")):
        done = moorage.popen("cp", *flags, "-", f"suid:/{where}", stdin=-1, stdout=-1, stderr=-1)
        _, err = done.communicate(su, timeout=60)
        assert done.returncode == 0, err
    assert _upper_mode("suid", "tmp/su") == 0o755
    assert _upper_mode("suid", "root/su") == 0o6755
    copying.copy_in("suid", io.BytesIO(su), "/etc", archive_mode=True)  # not trusted
    assert _upper_mode("suid", "etc/su") == 0o755


def test_cp_of_a_tar_past_the_size_limit_is_refused_mid_stream(
    moorage: Moorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 4, enormous sizes: the limit (set low here) holds for cp in as for load."""
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", str(1 << 20))
    moorage.ok("create", "--name", "full", "busybox")
    big = _tar(*(_file(f"part{i}", bytes(512 << 10)) for i in range(8)))
    done = moorage.popen("cp", "-", "full:/tmp", stdin=-1, stdout=-1, stderr=-1)
    _, err = done.communicate(big, timeout=60)
    assert done.returncode == 1 and b"MOORAGE_MAX_UNPACKED_BYTES" in err
    upper = containers.store.load(containers.store.resolve("full")).directory / "upper/tmp"
    assert sum(f.stat().st_size for f in upper.iterdir()) <= 1 << 20
