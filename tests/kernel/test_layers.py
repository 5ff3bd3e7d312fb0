"""The layer primitive: overlay upper dir -> OCI layer tar -> stored layer -> image."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from runtime import images
from runtime.images import layers, store


def _upper(tmp: Path) -> Path:
    """An upper dir as overlayfs leaves it: a new file, a hardlink, whiteouts, opaque dir."""
    upper = tmp / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "motd").write_text("hello\n")
    os.link(upper / "etc" / "motd", upper / "etc" / "motd.link")
    os.setxattr(upper / "etc" / "motd", "user.note", b"kept")
    os.chown(upper / "etc" / "motd", 1234, 5678)
    os.chmod(upper / "etc" / "motd", 0o4751)
    os.utime(upper / "etc" / "motd", ns=(1_500_000_000_123_000_000, 1_500_000_000_123_000_000))
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "opaque").mkdir()
    (upper / "opaque" / "only").write_text("x")
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.symlink("/etc/motd", upper / "link")
    return upper


def _tar(upper: Path) -> bytes:
    out = io.BytesIO()
    layers.write_changes_tar(upper, out)
    return out.getvalue()


def test_an_upper_dir_becomes_an_oci_layer_tar(tmp_path: Path) -> None:
    data = _tar(_upper(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    names = [n for n in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert "etc/.wh.gone" in members and "etc/gone" not in members
    assert "opaque/.wh..wh..opq" in members
    motd = members["etc/motd"]
    assert (motd.uid, motd.gid, motd.mode) == (1234, 5678, 0o4751)
    assert motd.mtime == pytest.approx(1_500_000_000.123)
    assert motd.pax_headers.get("SCHILY.xattr.user.note") == "kept"
    assert members["etc/motd.link"].islnk() and members["etc/motd.link"].linkname == "etc/motd"
    assert members["link"].issym() and members["link"].linkname == "/etc/motd"
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)


def test_the_same_upper_dir_gives_the_same_bytes(tmp_path: Path) -> None:
    upper = _upper(tmp_path)
    assert _tar(upper) == _tar(upper)


def test_a_committed_layer_hides_the_lower_file_under_overlay(
    tmp_path: Path, busybox: images.Image
) -> None:
    """The whiteout and opaque marker survive the round trip and work under overlayfs."""
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "added").write_text("new\n")
    os.mknod(upper / "etc" / "passwd", stat.S_IFCHR, os.makedev(0, 0))  # delete /etc/passwd
    (upper / "bin").mkdir()
    os.setxattr(upper / "bin", "trusted.overlay.opaque", b"y")  # hide every busybox applet
    (upper / "bin" / "mine").write_text("#!/bin/sh\n")
    parent_chain = busybox.chain_ids()[-1]
    layer = layers.commit_layer(upper, parent_chain)
    assert layer.parent == parent_chain
    assert store.layer(layer.chain_id) == layer
    image = layers.create_image(
        busybox,
        [layer],
        changes=["CMD cat /etc/added"],
        history=[{"created": "2026-01-02T03:04:05Z", "created_by": "test", "comment": "c"}],
        reference="moorage-test/layers:v1",
    )
    try:
        assert image.diff_ids() == busybox.diff_ids() + [layer.diff_id]
        assert image.config["config"]["Cmd"] == ["/bin/sh", "-c", "cat /etc/added"]
        assert image.config["history"][-1]["created_by"] == "test"
        assert image.inspect()["Parent"] == busybox.id
        assert image.repo_tags == ("moorage-test/layers:v1",)
        merged, work = tmp_path / "merged", tmp_path / "work"
        merged.mkdir()
        work.mkdir()
        lower = ":".join(str(d) for d in reversed(image.layer_dirs()))
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(merged)],
            check=True,
        )
        try:
            assert (merged / "etc" / "added").read_text() == "new\n"
            assert not (merged / "etc" / "passwd").exists()
            assert (merged / "etc" / "group").exists()
            assert sorted(os.listdir(merged / "bin")) == ["mine"]
        finally:
            subprocess.run(["umount", str(merged)], check=True)
    finally:
        from runtime.images import removal

        removal.remove("moorage-test/layers:v1")


def test_changes_follow_dockers_overlay_rules(tmp_path: Path) -> None:
    """Whiteouts are D, opaque dirs D, untouched dirs silent, new parents C first."""
    from runtime.images import changes

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "same", "var/lib"):
        (lower / d).mkdir(parents=True)
    (lower / "etc" / "old").write_text("1")
    (lower / "var" / "lib" / "x").write_text("1")
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "old", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "same").mkdir()
    st = os.stat(lower / "same")
    os.chmod(upper / "same", st.st_mode & 0o7777)
    os.utime(upper / "same", ns=(st.st_atime_ns, st.st_mtime_ns))
    (upper / "var" / "lib").mkdir(parents=True)
    os.setxattr(upper / "var" / "lib", "trusted.overlay.opaque", b"y")
    (upper / "sbin").mkdir()
    (upper / "sbin" / "docker-init").write_text("")
    found = [str(c) for c in changes.changes(upper, [lower], ["sbin/docker-init"])]
    assert found == ["C /etc", "D /etc/old", "C /var", "D /var/lib"]
