"""runtime.archive against hostile tar streams, with the real chroot, mknod and xattrs.

Every hostile archive aims at a canary directory next to the destination (or at /etc);
each test checks that the canary is untouched and that the error names the entry.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import random
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime import archive
from runtime.errors import InvalidSpec, KernelError
from runtime.images import packing
from tests.kernel.archive_corpus import gzip_bomb

pytestmark = pytest.mark.kernel


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = (
        kind,
        len(data) if kind == tarfile.REGTYPE else 0,
        1_600_000_000,
    )
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_of(*entries: tuple) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out.seek(0)
    return out


@dataclass
class Scene:
    dest: Path
    canary: Path

    def untouched(self) -> bool:
        return sorted(os.listdir(self.dest.parent)) == ["canary", "dest"] and sorted(
            os.listdir(self.canary)
        ) == ["keep"]


@pytest.fixture(scope="module")
def chroot_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    probe = tmp_path_factory.mktemp("probe")
    try:
        archive.extract(tar_of(entry("f", data=b"x")), probe)
    except KernelError as e:
        if e.errno == errno.EPERM:
            pytest.skip("this process cannot chroot")
        raise
    finally:
        shutil.rmtree(probe)


@pytest.fixture
def scene(tmp_path: Path, chroot_works: None) -> Iterator[Scene]:
    (tmp_path / "dest").mkdir()
    (tmp_path / "canary").mkdir()
    (tmp_path / "canary" / "keep").write_text("canary\n")
    yield Scene(tmp_path / "dest", tmp_path / "canary")
    shutil.rmtree(tmp_path / "dest")
    shutil.rmtree(tmp_path / "canary")


def refused(scene: Scene, source: io.BytesIO, match: str, **options: object) -> None:
    with pytest.raises(InvalidSpec, match=match):
        archive.extract(source, scene.dest, **options)  # type: ignore[arg-type]
    assert scene.untouched()


def test_a_dotdot_entry_is_refused_by_name(scene: Scene) -> None:
    refused(scene, tar_of(entry("ok"), entry("../canary/escape")), r"'../canary/escape'.*'\.\.'")
    refused(scene, tar_of(entry("a/../../canary/escape")), r"'\.\.'")


def test_an_absolute_entry_is_refused(scene: Scene) -> None:
    refused(scene, tar_of(entry(str(scene.canary / "abs"))), "absolute path")


@pytest.mark.parametrize("target", ["/etc", "canary"])
def test_a_file_through_a_symlink_to_outside_is_refused(scene: Scene, target: str) -> None:
    link = "/etc" if target == "/etc" else str(scene.canary)
    hostile = tar_of(entry("out", tarfile.SYMTYPE, linkname=link), entry("out/moorage-escape"))
    refused(scene, hostile, "'out/moorage-escape' goes through the symbolic link '/out'")
    assert not Path("/etc/moorage-escape").exists()


def test_a_hardlink_to_etc_passwd_is_refused(scene: Scene) -> None:
    links_before = os.stat("/etc/passwd").st_nlink
    refused(scene, tar_of(entry("pw", tarfile.LNKTYPE, linkname="/etc/passwd")), "absolute link")
    refused(scene, tar_of(entry("pw", tarfile.LNKTYPE, linkname="../../../etc/passwd")), r"'\.\.'")
    assert os.stat("/etc/passwd").st_nlink == links_before


def test_a_hardlink_to_a_name_not_in_the_archive_is_refused(scene: Scene) -> None:
    refused(scene, tar_of(entry("pw", tarfile.LNKTYPE, linkname="etc/passwd")), "does not exist")


def test_a_directory_swapped_for_a_symlink_mid_archive_cannot_redirect_later_entries(
    scene: Scene,
) -> None:
    hostile = tar_of(
        entry("a", tarfile.DIRTYPE),
        entry("a", tarfile.SYMTYPE, linkname=str(scene.canary)),
        entry("a/file", data=b"owned\n"),
    )
    refused(scene, hostile, "'a/file' goes through the symbolic link")


def test_device_nodes_are_refused_unless_allowed(scene: Scene) -> None:
    null = entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    refused(scene, tar_of(null), "'dev/null' is a device node")
    archive.extract(tar_of(null), scene.dest, allow_devices=True)
    st = os.lstat(scene.dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_setuid_and_setgid_bits_are_stripped_unless_allowed(scene: Scene) -> None:
    suid = entry("bin/su", data=b"#!/bin/sh\n", mode=0o6755)
    archive.extract(tar_of(suid), scene.dest)
    assert stat.S_IMODE(os.lstat(scene.dest / "bin/su").st_mode) == 0o755
    archive.extract(tar_of(suid), scene.dest, allow_setuid=True)
    assert stat.S_IMODE(os.lstat(scene.dest / "bin/su").st_mode) == 0o6755


def test_a_declared_size_beyond_max_bytes_is_refused_before_any_data_is_read(
    scene: Scene,
) -> None:
    info, _ = entry("huge")
    info.size = 10 << 30  # a header alone, claiming 10 GiB
    refused(scene, io.BytesIO(info.tobuf(tarfile.PAX_FORMAT)), "'huge'.*limit", max_bytes=1 << 20)


def test_content_adding_up_past_max_bytes_is_refused(scene: Scene) -> None:
    half = b"x" * (600 << 10)
    refused(
        scene, tar_of(entry("one", data=half), entry("two", data=half)), "'two'", max_bytes=1 << 20
    )


def test_a_truncated_archive_is_reported(scene: Scene) -> None:
    whole = tar_of(entry("big", data=os.urandom(100_000))).getvalue()
    refused(scene, io.BytesIO(whole[:50_000]), "truncated or not a tar file")
    refused(scene, io.BytesIO(whole[:700]), "truncated or not a tar file")


def test_random_bytes_are_not_a_tar(scene: Scene) -> None:
    noise = random.Random(7).randbytes(8192)
    refused(scene, io.BytesIO(noise), "truncated or not a tar file")
    refused(scene, io.BytesIO(b""), "truncated or not a tar file")


def test_garbage_after_the_entries_is_reported(scene: Scene) -> None:
    info, data = entry("f", data=b"hello")
    stream = info.tobuf(tarfile.PAX_FORMAT) + data.ljust(512, b"\0") + b"\xff" * 512
    refused(scene, io.BytesIO(stream), "truncated or not a tar file")


def test_a_corrupt_gzip_stream_is_refused(scene: Scene) -> None:
    packed = gzip.compress(tar_of(entry("f", data=os.urandom(50_000))).getvalue())
    refused(scene, io.BytesIO(packed[:-2000]), "corrupt or truncated")


def test_a_whiteout_naming_dotdot_is_refused(scene: Scene) -> None:
    refused(scene, tar_of(entry("a", tarfile.DIRTYPE), entry("a/.wh...")), "whiteout")


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, None])
def test_compressed_archives_are_recognized_by_their_magic(scene: Scene, compress: object) -> None:
    plain = tar_of(entry("f", data=b"hello\n")).getvalue()
    packed = compress(plain) if callable(compress) else plain
    assert archive.extract(io.BytesIO(packed), scene.dest) == 6
    assert (scene.dest / "f").read_bytes() == b"hello\n"


def build_tree(root: Path) -> None:
    (root / "dir").mkdir(mode=0o750)
    (root / "dir/file").write_bytes(b"content\n")
    os.chmod(root / "dir/file", 0o640)
    os.chown(root / "dir/file", 1234, 5678)
    os.link(root / "dir/file", root / "hard")
    os.symlink("/dir/file", root / "abs-link")
    os.symlink("dir/../hard", root / "rel-link")
    os.mkfifo(root / "fifo", 0o600)
    (root / "suid").write_bytes(b"")
    os.chmod(root / "suid", 0o4755)
    os.setxattr(root / "dir/file", "user.note", b"\xffbinary")
    os.mknod(root / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (root / "opaque").mkdir()
    (root / "opaque/kept").write_text("kept\n")
    os.setxattr(root / "opaque", archive.OVERLAY_OPAQUE_XATTR, b"y")
    os.utime(root / "dir/file", ns=(1_500_000_000_000_000_000,) * 2)
    os.utime(root / "dir", ns=(1_400_000_000_000_000_000,) * 2)


def test_packing_then_extract_preserves_modes_owners_links_and_whiteouts(scene: Scene) -> None:
    src = scene.dest / "src"
    out = scene.dest / "out"
    src.mkdir()
    out.mkdir()
    build_tree(src)
    packed = io.BytesIO()
    with packing.open_writer(packed) as tf:
        packing.pack_tree(tf, str(src), packing.Options(oci_whiteouts=True))
    names = tarfile.open(fileobj=io.BytesIO(packed.getvalue())).getnames()
    assert ".wh.gone" in names and "opaque/.wh..wh..opq" in names and "gone" not in names
    packed.seek(0)
    archive.extract(packed, out, allow_setuid=True)

    f = os.lstat(out / "dir/file")
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid) == (0o640, 1234, 5678)
    assert f.st_mtime_ns == 1_500_000_000_000_000_000
    assert os.lstat(out / "dir").st_mtime_ns == 1_400_000_000_000_000_000
    assert stat.S_IMODE(os.lstat(out / "dir").st_mode) == 0o750
    assert os.lstat(out / "hard").st_ino == f.st_ino
    assert os.readlink(out / "abs-link") == "/dir/file"
    assert os.readlink(out / "rel-link") == "dir/../hard"
    assert stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(out / "suid").st_mode) == 0o4755
    assert os.getxattr(out / "dir/file", "user.note") == b"\xffbinary"
    gone = os.lstat(out / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(out / "opaque", archive.OVERLAY_OPAQUE_XATTR) == b"y"
    assert (out / "opaque/kept").read_text() == "kept\n"
    assert not (out / "opaque/.wh..wh..opq").exists()


def test_packing_does_not_follow_symlinks(scene: Scene) -> None:
    os.symlink(scene.canary, scene.dest / "link")
    packed = io.BytesIO()
    with packing.open_writer(packed) as tf:
        packing.pack_tree(tf, str(scene.dest), packing.Options())
    names = tarfile.open(fileobj=io.BytesIO(packed.getvalue())).getnames()
    assert names == ["link"]


def test_apply_mode_deletes_what_whiteouts_name(scene: Scene) -> None:
    (scene.dest / "gone").write_text("old\n")
    (scene.dest / "opq").mkdir()
    (scene.dest / "opq/old").write_text("old\n")
    layer = tar_of(
        entry("opq", tarfile.DIRTYPE),
        entry("opq/new", data=b"new\n"),
        entry("opq/.wh..wh..opq"),
        entry(".wh.gone"),
    )
    archive.extract(layer, scene.dest, whiteouts="apply")
    assert sorted(os.listdir(scene.dest)) == ["opq"]
    assert os.listdir(scene.dest / "opq") == ["new"]


def test_keep_mode_writes_whiteouts_as_plain_files(scene: Scene) -> None:
    archive.extract(tar_of(entry(".wh.gone")), scene.dest, whiteouts="keep")
    assert (scene.dest / ".wh.gone").is_file()


def test_a_later_entry_replaces_an_earlier_one(scene: Scene) -> None:
    layer = tar_of(entry("x", data=b"first"), entry("x", tarfile.DIRTYPE), entry("x/y", data=b"2"))
    assert archive.extract(layer, scene.dest) == 6
    assert (scene.dest / "x/y").read_bytes() == b"2"


# --- enormous input: refused while it streams -----------------------------------------


def written(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(root) for f in fs)


def test_a_gzip_bomb_is_refused_while_it_streams_under_the_configured_limit(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 4, enormous sizes: 64 KiB of gzip that would unpack to 32 MiB stops at the
    2 MiB of MOORAGE_MAX_UNPACKED_BYTES, with no more than that written."""
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", str(2 << 20))
    bomb = gzip_bomb(32, 1 << 20)
    assert len(bomb) < 64 << 10
    with pytest.raises(InvalidSpec, match="MOORAGE_MAX_UNPACKED_BYTES"):
        archive.extract(io.BytesIO(bomb), scene.dest)
    assert written(scene.dest) <= 2 << 20
    assert sorted(os.listdir(scene.dest.parent)) == ["canary", "dest"]


def test_headers_that_add_up_past_the_limit_are_refused_though_no_file_has_content(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pax records are read into memory and dropped: only the stream count sees them."""
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", str(1 << 20))
    padded = [entry(f"empty-{i}", pax_headers={"comment": "x" * (600 << 10)}) for i in range(4)]
    refused(scene, tar_of(*padded), "unpacks to more than 1048576 bytes")


def test_more_entries_than_the_limit_are_refused(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_MAX_ARCHIVE_ENTRIES", "10")
    with pytest.raises(InvalidSpec, match="more than 10 entries"):
        archive.extract(tar_of(*(entry(f"f{i}") for i in range(11))), scene.dest)
    assert len(os.listdir(scene.dest)) <= 10
    assert archive.extract(tar_of(*(entry(f"g{i}") for i in range(10))), scene.dest) == 0


def test_an_extended_header_over_a_mebibyte_is_refused_before_it_is_read(scene: Scene) -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 1 << 30  # tarfile would read 1 GiB into memory
    refused(scene, io.BytesIO(info.tobuf(tarfile.USTAR_FORMAT)), "extended header")


def test_the_default_limit_is_the_free_space_up_to_16_gib_and_bad_settings_are_refused(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOORAGE_MAX_UNPACKED_BYTES", raising=False)
    st = os.statvfs(scene.dest)
    limit = archive.byte_limit(scene.dest)  # free space moves while others run: roughly
    assert limit <= 16 << 30 and abs(limit - min(16 << 30, st.f_bavail * st.f_frsize)) < 64 << 20
    monkeypatch.setenv("MOORAGE_MAX_UNPACKED_BYTES", "lots")
    with pytest.raises(InvalidSpec, match="MOORAGE_MAX_UNPACKED_BYTES"):
        archive.extract(tar_of(entry("f")), scene.dest)
    assert os.listdir(scene.dest) == []
