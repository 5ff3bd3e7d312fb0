"""What ``moorage run`` pays for at import: modules on its path keep heavy imports for
the verbs that need them, and removal skips the network verbs when there is nothing to
undo. Imports are checked in a fresh interpreter, since this one has loaded everything.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import paths
from runtime.network import endpoints

CID = "c" * 64


def _loaded_after(statement: str, candidates: list[str]) -> list[str]:
    code = (
        f"import sys\n{statement}\nprint(' '.join(m for m in {candidates!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return out.stdout.split()


def test_resolving_an_image_loads_neither_bootstrap_config_nor_layers() -> None:
    heavy = [
        "runtime.images.bootstrap",
        "runtime.images.config",
        "runtime.images.layers",
        "calendar",
        "shlex",
    ]
    assert _loaded_after("import runtime.images", heavy) == []


def test_the_lazy_image_submodules_are_still_attributes_of_the_package() -> None:
    loaded = _loaded_after(
        "import runtime.images as i; i.config.now; i.layers.parent_of; i.bootstrap.find",
        ["runtime.images.bootstrap", "runtime.images.config", "runtime.images.layers"],
    )
    assert len(loaded) == 3


def test_units_syscalls_and_the_volume_store_skip_fractions_platform_and_secrets() -> None:
    heavy = ["fractions", "decimal", "platform", "secrets"]
    statement = "import runtime.units, runtime.syscalls, runtime.capabilities, runtime.volumes"
    assert _loaded_after(statement, heavy) == []


@pytest.fixture()
def container_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MOORAGE_ROOT", str(tmp_path))
    directory = paths.container(CID)
    directory.mkdir(parents=True)
    yield directory


def test_a_container_on_no_network_has_nothing_for_removal_to_undo(container_dir: Path) -> None:
    endpoints.save_config(CID, endpoints.NetworkConfig())
    assert not endpoints.has_networks(CID)


def test_a_container_attached_to_a_network_has_network_state_to_undo(container_dir: Path) -> None:
    config = endpoints.NetworkConfig(attachments=[endpoints.Attachment("n" * 64)])
    endpoints.save_config(CID, config)
    assert endpoints.has_networks(CID)


def test_a_container_already_gone_has_nothing_to_undo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_ROOT", str(tmp_path))
    assert not endpoints.has_networks(CID)
