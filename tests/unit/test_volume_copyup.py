"""Copy-up: an empty volume takes the image's content at its mount point, safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runtime.errors import KernelError
from runtime.volumes import copyup


def _image(root: Path) -> Path:
    data = root / "srv" / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "file").write_text("content\n")
    os.chmod(data / "sub" / "file", 0o640)
    os.chmod(data / "sub", 0o751)
    os.symlink("/etc/shadow", data / "link")
    os.mkfifo(data / "pipe")
    os.chmod(data / "pipe", 0o620)
    os.utime(data / "sub" / "file", (1_000_000, 1_000_000))
    os.chmod(data, 0o1777)
    return data


def test_seed_copies_files_links_fifos_modes_and_times(tmp_path: Path) -> None:
    root, volume = tmp_path / "rootfs", tmp_path / "volume"
    volume.mkdir()
    data = _image(root)
    assert copyup.seed(str(root), str(data), str(volume))
    assert (volume / "sub" / "file").read_text() == "content\n"
    assert stat.S_IMODE((volume / "sub" / "file").stat().st_mode) == 0o640
    assert stat.S_IMODE((volume / "sub").stat().st_mode) == 0o751
    assert stat.S_IMODE(volume.stat().st_mode) == 0o1777
    assert (volume / "sub" / "file").stat().st_mtime == 1_000_000
    assert os.readlink(volume / "link") == "/etc/shadow"  # a link, never its target
    assert stat.S_ISFIFO(os.lstat(volume / "pipe").st_mode)
    assert stat.S_IMODE(os.lstat(volume / "pipe").st_mode) == 0o620


def test_a_volume_with_data_is_not_seeded_again(tmp_path: Path) -> None:
    root, volume = tmp_path / "rootfs", tmp_path / "volume"
    volume.mkdir()
    (volume / "mine").write_text("keep")
    data = _image(root)
    assert not copyup.seed(str(root), str(data), str(volume))
    assert os.listdir(volume) == ["mine"]


def test_a_missing_image_directory_seeds_nothing(tmp_path: Path) -> None:
    (tmp_path / "volume").mkdir()
    (tmp_path / "rootfs").mkdir()
    assert not copyup.seed(
        str(tmp_path / "rootfs"), str(tmp_path / "rootfs" / "nope"), str(tmp_path / "volume")
    )


def test_a_symlink_swapped_into_the_path_copies_nothing(tmp_path: Path) -> None:
    """The path was resolved earlier; a symlink found now means someone raced us, and
    the copy must not read what it points at."""
    root, volume, host = tmp_path / "rootfs", tmp_path / "volume", tmp_path / "host"
    volume.mkdir()
    (host / "data").mkdir(parents=True)
    (host / "data" / "secret").write_text("host only")
    root.mkdir()
    os.symlink(str(host), root / "srv")
    try:
        assert not copyup.seed(str(root), str(root / "srv" / "data"), str(volume))
    except KernelError:
        pass  # refusing outright is as good as copying nothing
    assert os.listdir(volume) == []
