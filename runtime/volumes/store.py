"""The store of volumes: one directory per volume under ``paths.volumes()``.

``<name>/_data`` is the data a container sees (bind-mounted at start) and
``<name>/volume.json`` its metadata (driver, labels, options, creation time). A volume
appears by rename(2) of a complete staging directory, so a half-made one is never
listed, and disappears by rename to a hidden trash name before the tree is deleted.
Whether a volume is in use is read from the container records (``extra["mounts"]``);
``locked()`` serialises that check against containers being created with volumes.
Never mounts anything on the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import paths
from runtime.errors import InUse, InvalidSpec, KernelError, NotFound
from runtime.state import flocked, read_json, write_json
from runtime.volumes.parsing import check_volume_name

ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker 23+ marks anonymous volumes so
OPTION_KEYS = ("type", "device", "o", "size")  # prune can spare named ones


@dataclass(frozen=True)
class Volume:
    name: str
    created: float
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return paths.volumes() / self.name

    @property
    def mountpoint(self) -> Path:
        return self.directory / "_data"

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def inspect(self) -> dict[str, Any]:
        """``docker volume inspect``'s document."""
        return {
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "Driver": self.driver,
            "Labels": dict(self.labels),
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": dict(self.options),
            "Scope": "local",
        }


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Held while checking users before a removal and while a container claims volumes."""
    paths.volumes().mkdir(parents=True, exist_ok=True)
    with flocked(paths.volumes() / ".lock"):
        yield


def _check_options(options: dict[str, str]) -> None:
    for key in options:
        if key not in OPTION_KEYS:
            raise InvalidSpec(f'invalid option key: "{key}"')
    kind, mount_opts = options.get("type", ""), options.get("o", "").split(",")
    if not options or kind == "tmpfs":
        return
    if "bind" in mount_opts and options.get("device", "").startswith("/"):
        return
    raise InvalidSpec(
        "the local driver here supports only type=tmpfs, or o=bind with an absolute device path"
    )


def create(
    name: str | None = None,
    labels: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    driver: str = "local",
) -> Volume:
    """Create a volume, or return the one of that name (``volume create`` is idempotent)."""
    if driver != "local":
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
    try:
        name = check_volume_name(name) if name else os.urandom(32).hex()
        options = dict(options or {})
        _check_options(options)
    except InvalidSpec as e:
        raise InvalidSpec(f"create {name}: {e}") from None
    try:
        return get(name)
    except NotFound:
        pass
    volume = Volume(
        name=name, created=time.time(), driver=driver, labels=dict(labels or {}), options=options
    )
    staging = paths.volumes() / f".staging-{os.urandom(8).hex()}"
    try:
        (staging / "_data").mkdir(parents=True, mode=0o755)
        os.chmod(staging, 0o701)
        write_json(
            staging / "volume.json",
            {
                "name": name,
                "created": volume.created,
                "driver": driver,
                "labels": volume.labels,
                "options": options,
            },
        )
        os.rename(staging, volume.directory)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if volume.directory.exists():  # a concurrent create of the same name won
            return get(name)
        raise KernelError.from_oserror("create volume", e) from e
    return volume


def get(name: str) -> Volume:
    if not name or name.startswith(".") or "/" in name:
        raise NotFound(f"get {name}: no such volume")
    try:
        data = read_json(paths.volumes() / name / "volume.json")
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"get {name}: no such volume") from None
    return Volume(
        name=data["name"],
        created=data["created"],
        driver=data.get("driver", "local"),
        labels=data.get("labels") or {},
        options=data.get("options") or {},
    )


def list_volumes() -> list[Volume]:
    try:
        names = sorted(
            e.name for e in os.scandir(paths.volumes()) if e.is_dir() and not e.name.startswith(".")
        )
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        try:
            found.append(get(name))
        except NotFound:
            continue  # removed while we listed
    return found


def usage() -> dict[str, list[str]]:
    """Volume name → ids of the containers (running or not) that mount it."""
    from runtime.containers import store as containers

    users: dict[str, list[str]] = {}
    for cid in containers.ids():
        try:
            record = containers.load(cid)
        except NotFound:
            continue
        for mount in record.extra.get("mounts", []):
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(mount["Name"], [])
                if cid not in users[mount["Name"]]:
                    users[mount["Name"]].append(cid)
    return users


def size(volume: Volume) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(volume.mountpoint):
        for filename in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, filename)).st_size
            except OSError:
                continue
    return total


def delete(name: str) -> None:
    """Delete a volume without checking its users; the caller holds ``locked()``."""
    try:
        _delete(get(name))
    except NotFound:
        pass


def _delete(volume: Volume) -> None:
    trash = paths.volumes() / f".trash-{os.urandom(8).hex()}"
    try:
        os.rename(volume.directory, trash)
    except FileNotFoundError:
        return
    except OSError as e:
        raise KernelError.from_oserror("remove volume", e) from e
    shutil.rmtree(trash, ignore_errors=True)


def remove(name: str, force: bool = False) -> None:
    """``volume rm``: refuse a volume any container uses; ``force`` ignores a missing one."""
    with locked():
        try:
            volume = get(name)
        except NotFound:
            if force:
                return
            raise
        users = usage().get(name)
        if users:
            raise InUse(f"remove {name}: volume is in use - [{', '.join(users)}]")
        _delete(volume)


def remove_unused(names: list[str]) -> list[str]:
    """Remove those of ``names`` no container uses any more (``rm -v``); return them."""
    removed = []
    with locked():
        users = usage()
        for name in names:
            if users.get(name):
                continue
            try:
                _delete(get(name))
            except NotFound:
                continue
            removed.append(name)
    return removed


def prune(all: bool = False, labels: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """Remove unused volumes: anonymous ones only, or every one with ``all`` (Docker 23+).

    ``labels`` are ``label=`` filters (``key`` or ``key=value``, ``!`` negates).
    Returns the names removed and the bytes reclaimed.
    """
    removed: list[str] = []
    reclaimed = 0
    with locked():
        users = usage()
        for volume in list_volumes():
            if users.get(volume.name) or not (all or volume.anonymous):
                continue
            if not all_labels_match(volume.labels, labels):
                continue
            reclaimed += size(volume)
            _delete(volume)
            removed.append(volume.name)
    return removed, reclaimed


def all_labels_match(labels: dict[str, str], filters: tuple[str, ...]) -> bool:
    for item in filters:
        negate = item.startswith("!")
        key, sep, value = item.lstrip("!").partition("=")
        hit = key in labels and (not sep or labels[key] == value)
        if hit == negate:
            return False
    return True
