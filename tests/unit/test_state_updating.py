"""runtime.state.updating: read-modify-write of state.json, skipped when nothing changed."""

from __future__ import annotations

from pathlib import Path

from runtime import state


def test_updating_without_a_change_leaves_the_file_alone(tmp_path: Path) -> None:
    state.save(tmp_path, state.State(status=state.CREATED))
    before = (tmp_path / "state.json").stat().st_ino
    with state.updating(tmp_path) as current:
        current.manually_stopped = False  # already so
    assert (tmp_path / "state.json").stat().st_ino == before


def test_updating_with_a_change_replaces_the_file(tmp_path: Path) -> None:
    state.save(tmp_path, state.State(status=state.CREATED))
    before = (tmp_path / "state.json").stat().st_ino
    with state.updating(tmp_path) as current:
        current.manually_stopped = True
    assert (tmp_path / "state.json").stat().st_ino != before
    assert state.load(tmp_path).manually_stopped is True
