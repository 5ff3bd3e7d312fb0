"""The volume store on disk: create, get, list, remove and prune, without containers.

The session points ``MOORAGE_ROOT`` at a private directory; each test works under its
own ``paths.volumes()`` by moving ``MOORAGE_ROOT`` to ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import paths, volumes
from runtime.errors import InvalidSpec, NotFound
from runtime.volumes import store


@pytest.fixture(autouse=True)
def _private_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOORAGE_ROOT", str(tmp_path))
    yield


def test_a_created_volume_has_a_data_dir_metadata_and_dockers_inspect_shape() -> None:
    volume = volumes.create("myvol", {"team": "a"}, {"type": "tmpfs", "o": "size=1m"})
    assert volume.mountpoint == paths.volumes() / "myvol" / "_data"
    assert volume.mountpoint.is_dir()
    doc = volumes.get("myvol").inspect()
    assert set(doc) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert doc["Labels"] == {"team": "a"} and doc["Options"] == {"type": "tmpfs", "o": "size=1m"}
    assert doc["CreatedAt"].endswith("Z") and doc["Scope"] == "local"


def test_creating_an_existing_name_returns_the_volume_unchanged() -> None:
    first = volumes.create("same", {"v": "1"})
    (first.mountpoint / "keep").write_text("x")
    again = volumes.create("same", {"v": "2"})
    assert again.labels == {"v": "1"} and (again.mountpoint / "keep").exists()


def test_a_volume_without_a_name_gets_64_hex_digits() -> None:
    name = volumes.create().name
    assert len(name) == 64 and int(name, 16) >= 0


def test_bad_names_options_and_drivers_are_refused() -> None:
    with pytest.raises(InvalidSpec, match='create a/b: "a/b" includes invalid characters'):
        volumes.create("a/b")
    with pytest.raises(InvalidSpec, match='invalid option key: "foo"'):
        volumes.create("v1", options={"foo": "bar"})
    with pytest.raises(InvalidSpec, match="supports only type=tmpfs"):
        volumes.create("v2", options={"type": "nfs", "device": ":/export"})
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        volumes.create("v3", driver="nfs")
    assert volumes.list_volumes() == []


def test_list_is_sorted_and_skips_staging_and_trash_directories() -> None:
    for name in ("bb", "aa"):
        volumes.create(name)
    (paths.volumes() / ".staging-123" / "_data").mkdir(parents=True)
    assert [v.name for v in volumes.list_volumes()] == ["aa", "bb"]


def test_get_of_a_missing_or_path_like_name_is_not_found() -> None:
    for name in ("nosuch", "../etc", ".lock", ""):
        with pytest.raises(NotFound, match="no such volume"):
            volumes.get(name)


def test_remove_deletes_the_data_and_force_ignores_a_missing_volume() -> None:
    volume = volumes.create("gone")
    (volume.mountpoint / "f").write_text("data")
    volumes.remove("gone")
    assert not volume.directory.exists()
    with pytest.raises(NotFound):
        volumes.remove("gone")
    volumes.remove("gone", force=True)


def test_prune_takes_anonymous_volumes_unless_all_and_counts_their_bytes() -> None:
    anon = volumes.create(labels={volumes.ANONYMOUS_LABEL: ""})
    (anon.mountpoint / "f").write_bytes(b"x" * 1000)
    volumes.create("named", {"keep": "no"})
    volumes.create("kept", {"keep": "yes"})
    removed, reclaimed = volumes.prune()
    assert removed == [anon.name] and reclaimed == 1000
    removed, _ = volumes.prune(all=True, labels=("keep=no",))
    assert removed == ["named"]
    removed, _ = volumes.prune(all=True, labels=("!keep",))
    assert removed == []
    assert [v.name for v in volumes.list_volumes()] == ["kept"]


def test_label_filters_match_keys_values_and_negations() -> None:
    labels = {"a": "1", "b": ""}
    assert store.all_labels_match(labels, ("a", "a=1", "b", "!c"))
    assert not store.all_labels_match(labels, ("a=2",))
    assert not store.all_labels_match(labels, ("!a",))
