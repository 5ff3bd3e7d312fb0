"""The on-disk record of containers: one directory per id, plus a name index.

``$MOORAGE_ROOT/containers/<id>/`` holds ``config.json`` (the ``Record``: spec, image,
resolved command and environment), ``state.json`` (``runtime.state``), the overlay
``upper``/``work`` dirs, the ``init`` layer with generated ``/etc`` files, and the
json-file log. ``containers/.names/<name>`` is a symlink to the id: creating it with
symlink(2) is atomic, which is what makes names unique under concurrent ``run``.
Lookup by name, full id or unique id prefix lives here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import paths, state
from runtime.errors import NameInUse, NotFound
from runtime.spec import ContainerSpec
from runtime.state import read_json, write_json


@dataclass
class Record:
    id: str
    name: str
    created: float
    spec: ContainerSpec
    image_id: str
    image_ref: str
    path: str  # argv[0]
    args: list[str]  # argv[1:]
    env: list[str]  # image ENV merged with -e, without PATH/HOSTNAME defaults
    workdir: str
    user: str
    hostname: str
    stop_signal: str
    stop_timeout: int
    labels: dict[str, str]
    image_config: dict[str, Any]  # the image's Config block, for inspect
    layer_dirs: list[str]  # lowest first
    extra: dict[str, Any] = field(default_factory=dict)  # room for networking/volumes

    @property
    def directory(self) -> Path:
        return paths.container(self.id)

    @property
    def argv(self) -> list[str]:
        return [self.path, *self.args]

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["spec"] = self.spec.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        values = dict(data)
        values["spec"] = ContainerSpec.from_json(values["spec"])
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


def names_dir() -> Path:
    return paths.containers() / ".names"


def save(record: Record) -> None:
    write_json(record.directory / "config.json", record.to_json())


def load(cid: str) -> Record:
    try:
        return Record.from_json(read_json(paths.container(cid) / "config.json"))
    except FileNotFoundError:
        raise NotFound(f"No such container: {cid}") from None


def ids() -> list[str]:
    try:
        return [
            e.name
            for e in os.scandir(paths.containers())
            if len(e.name) == 64 and (Path(e.path) / "config.json").exists()
        ]
    except FileNotFoundError:
        return []


def records_and_states() -> Iterator[tuple[str, Record, state.State]]:
    """(id, record, recorded state) of every stored container, in id order, as last
    written (``views.reconcile`` checks liveness too); one removed meanwhile is skipped."""
    for cid in sorted(ids()):
        try:
            yield cid, load(cid), state.load(paths.container(cid))
        except (NotFound, OSError, ValueError):
            continue


def claim_name(name: str, cid: str) -> None:
    names_dir().mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(cid, names_dir() / name)
    except FileExistsError:
        owner = os.readlink(names_dir() / name)
        raise NameInUse(
            f'Conflict. The container name "/{name}" is already in use by '
            f'container "{owner}". You have to remove (or rename) that container '
            "to be able to reuse that name."
        ) from None


def release_name(name: str, cid: str) -> None:
    link = names_dir() / name
    try:
        if os.readlink(link) == cid:
            link.unlink()
    except FileNotFoundError:
        pass


def name_taken(name: str) -> bool:
    return os.path.lexists(names_dir() / name)


def resolve(ref: str) -> str:
    """Full id for a name, a full id, or a unique id prefix (as Docker resolves them)."""
    ref = ref.lstrip("/") if ref else ref
    if not ref:
        raise NotFound("No such container: ")
    if len(ref) == 64 and (paths.container(ref) / "config.json").exists():
        return ref
    link = names_dir() / ref
    if os.path.islink(link):
        cid = os.readlink(link)
        if (paths.container(cid) / "config.json").exists():
            return cid
    if all(c in "0123456789abcdef" for c in ref):
        matches = [cid for cid in ids() if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(
                f"No such container: {ref} (multiple containers match this "
                "prefix; use more characters)"
            )
    raise NotFound(f"No such container: {ref}")
