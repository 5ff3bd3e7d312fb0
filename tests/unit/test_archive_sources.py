"""Archive paths and links resolved inside an image archive, never outside it (no root)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from runtime.errors import InvalidSpec
from runtime.images.archives import sources
from runtime.images.archives.sinks import TarSink


def tar(*members: tuple[str, bytes, str]) -> io.BytesIO:
    """(name, data, symlink target or '') -> an in-memory tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "a\0b"])
def test_names_leaving_the_archive_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpec):
        sources.clean(name)


def test_names_are_normalised_inside_the_archive() -> None:
    assert sources.clean("./a//b/../c.tar") == "a/c.tar"


def test_a_relative_symlink_between_members_is_followed() -> None:
    source = sources.TarSource(tar(("blob.tar", b"data", ""), ("d/layer.tar", b"", "../blob.tar")))
    with source.open("d/layer.tar") as f:
        assert f.read() == b"data"
    assert source.size("./d/layer.tar") == 4


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_a_symlink_leaving_the_archive_is_refused(target: str) -> None:
    source = sources.TarSource(tar(("manifest.json", b"[]", ""), ("evil", b"", target)))
    with pytest.raises(InvalidSpec, match="outside|absolute"):
        source.open("evil")
    assert not source.exists("evil")


def test_a_loop_of_symlinks_is_refused() -> None:
    source = sources.TarSource(tar(("a", b"", "b"), ("b", b"", "a")))
    with pytest.raises(InvalidSpec, match="loop"):
        source.size("a")


def test_a_truncated_member_reads_as_invalid_input() -> None:
    data = tar(("big", b"x" * 5000, "")).getvalue()
    with pytest.raises(InvalidSpec, match="truncated"):
        sources.TarSource(io.BytesIO(data[:2048]))


def test_metadata_larger_than_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(b" " * (sources.MAX_METADATA + 1))
    with pytest.raises(InvalidSpec, match="too large"):
        sources.read_small(sources.DirSource(tmp_path), "manifest.json", "manifest")


def test_a_layout_directory_refuses_symlinks_out_of_it(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("secret")
    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / "index.json").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidSpec, match="outside"):
        sources.DirSource(tmp_path / "layout").open("index.json")


def test_the_tar_sink_writes_what_tarfile_reads(tmp_path: Path) -> None:
    (tmp_path / "layer.tar").write_bytes(b"y" * 1_500_000)
    out = io.BytesIO()
    sink = TarSink(out)
    sink.add_dir("d")
    sink.add_bytes("d/VERSION", b"1.0")
    sink.add_file("d/layer.tar", tmp_path / "layer.tar")
    sink.close()
    assert len(out.getvalue()) % tarfile.RECORDSIZE == 0
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        assert tf.getnames() == ["d", "d/VERSION", "d/layer.tar"]
        assert tf.extractfile("d/layer.tar").read() == b"y" * 1_500_000  # type: ignore[union-attr]
