"""Mount planning: from a container's storage options to the mounts its monitor makes.

``validate`` parses ``-v``/``--mount``/``--tmpfs``/``--volumes-from`` and checks the
containers named exist, touching nothing. ``prepare`` (called by ``containers.create``
under ``store.locked()``) creates the volumes needed (named ones on first use, anonymous
ones for ``-v /path`` and the image's ``VOLUME``s), creates missing ``-v`` host
directories as Docker does, and returns the record entries: ``binds`` and ``tmpfs``
(kwargs of ``rootfs.BindMount``/``rootfs.TmpfsMount``, mounted inside the container's
mount namespace at each start), ``mounts`` (``inspect``'s ``Mounts``, also what
``--volumes-from`` and the in-use check read) and ``anonymous_volumes`` (for
``rm -v``). An empty volume is seeded with the image's content at its target when it
is mounted (``copy_up``), like Docker. Never mounts anything itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidSpec, KernelError, MoorageError, NotFound
from runtime.spec import ContainerSpec
from runtime.volumes import store
from runtime.volumes.parsing import (
    MountRequest,
    VolumesFrom,
    parse_mount,
    parse_tmpfs,
    parse_volume,
    parse_volumes_from,
    tmpfs_options,
)


@dataclass
class Requests:
    explicit: list[MountRequest]
    volumes_from: list[tuple[VolumesFrom, str]]  # with the resolved container id


@dataclass
class Prepared:
    binds: list[dict[str, Any]] = field(default_factory=list)
    tmpfs: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    anonymous_volumes: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # volumes made by this prepare

    def extra(self) -> dict[str, Any]:
        return {
            "binds": self.binds,
            "tmpfs": self.tmpfs,
            "mounts": self.mounts,
            "anonymous_volumes": self.anonymous_volumes,
        }


def validate(spec: ContainerSpec) -> Requests:
    """Every storage option parsed, or InvalidSpec with Docker's reason; no side effects."""
    from runtime.containers import store as containers

    explicit = (
        [parse_volume(v) for v in spec.volumes]
        + [parse_mount(m) for m in spec.mounts]
        + [parse_tmpfs(t) for t in spec.tmpfs]
    )
    seen: set[str] = set()
    for request in explicit:
        if request.target in seen:
            raise InvalidSpec(f"Duplicate mount point: {request.target}")
        seen.add(request.target)
    sources = []
    for raw in spec.volumes_from:
        item = parse_volumes_from(raw)
        try:
            sources.append((item, containers.resolve(item.container)))
        except NotFound:
            raise InvalidSpec(f"No such container: {item.container}") from None
    return Requests(explicit, sources)


def with_anonymous_volumes(spec: ContainerSpec, image_config: dict[str, Any]) -> dict[str, Any]:
    """The image's Config block with the ``-v /path`` targets added to ``Volumes``: the
    container's ``Config.Volumes`` as Docker shows it (and commits it). Named volumes,
    binds and ``--mount`` stay out of it, as the docker CLI leaves them out."""
    anonymous = [request.target for request in map(parse_volume, spec.volumes) if request.anonymous]
    if not anonymous:
        return image_config
    shown = dict(image_config.get("Volumes") or {})
    shown.update({target: {} for target in anonymous})
    return dict(image_config, Volumes=shown)


def prepare(spec: ContainerSpec, image_config: dict[str, Any]) -> Prepared:
    """Create what the container's mounts need; all or nothing. Hold ``store.locked()``."""
    requests = validate(spec)
    out = Prepared()
    try:
        _prepare(out, requests, image_config)
    except (OSError, MoorageError):
        discard(out)
        raise
    return out


def discard(prepared: Prepared) -> None:
    """Undo ``prepare`` for a container that will not exist after all. Hold the lock."""
    for name in prepared.created:
        store.delete(name)


def _prepare(out: Prepared, requests: Requests, image_config: dict[str, Any]) -> None:
    from runtime.containers import store as containers

    by_target: dict[str, MountRequest | dict[str, Any]] = {}
    inherited_anonymous: set[str] = set()
    # --volumes-from first; the container's own mounts win over inherited ones.
    for source, cid in requests.volumes_from:
        record = containers.load(cid)
        inherited_anonymous.update(record.extra.get("anonymous_volumes", []))
        for mount in record.extra.get("mounts", []):
            if mount.get("Type") not in ("volume", "bind"):
                continue
            rw = mount.get("RW", True) if not source.mode else source.mode == "rw"
            by_target[mount["Destination"]] = dict(mount, RW=rw)
    for request in requests.explicit:
        by_target[request.target] = request
    for target in sorted(image_config.get("Volumes") or {}):
        target = os.path.normpath(target)
        if target.startswith("/") and target != "/" and target not in by_target:
            by_target[target] = MountRequest(type="volume", target=target, origin="image")
    for target in sorted(by_target, key=lambda t: (t.count("/"), t)):
        item = by_target[target]
        if isinstance(item, dict):
            _inherit(out, item, inherited_anonymous)
        elif item.type == "tmpfs":
            out.tmpfs.append({"target": target, "flags": item.tmpfs_flags, "data": item.tmpfs_data})
            if item.origin == "--mount":
                out.mounts.append(_doc("tmpfs", "", target, item.mode, not item.readonly))
        elif item.type == "bind":
            _bind(out, item)
        else:
            _volume(out, item)


def _bind(out: Prepared, item: MountRequest) -> None:
    if not os.path.lexists(item.source):
        if not item.create_source:
            raise InvalidSpec(
                f'invalid mount config for type "bind": bind source path does '
                f"not exist: {item.source}"
            )
        try:
            os.makedirs(item.source, mode=0o755, exist_ok=True)
        except OSError as e:
            raise KernelError.from_oserror("create bind source", e) from e
    out.binds.append(
        {
            "source": item.source,
            "target": item.target,
            "readonly": item.readonly,
            "create_file": not os.path.isdir(item.source),
        }
    )
    out.mounts.append(_doc("bind", item.source, item.target, item.mode, not item.readonly))


def _volume(out: Prepared, item: MountRequest) -> None:
    labels = dict(item.volume_labels)
    if item.anonymous:
        labels[store.ANONYMOUS_LABEL] = ""
    try:
        volume = store.get(item.source) if item.source else None
    except NotFound:
        volume = None
    if volume is None:
        volume = store.create(item.source or None, labels, item.volume_options)
        out.created.append(volume.name)
    if item.anonymous:
        out.anonymous_volumes.append(volume.name)
    _mount_volume(out, volume, item.target, item.readonly, copy_up=not item.nocopy)
    out.mounts.append(
        _doc(
            "volume", str(volume.mountpoint), item.target, item.mode, not item.readonly, volume.name
        )
    )


def _inherit(out: Prepared, mount: dict[str, Any], anonymous: set[str]) -> None:
    target, readonly = mount["Destination"], not mount.get("RW", True)
    if mount["Type"] == "bind":
        out.binds.append(
            {
                "source": mount["Source"],
                "target": target,
                "readonly": readonly,
                "create_file": not os.path.isdir(mount["Source"]),
            }
        )
    else:
        volume = store.get(mount["Name"])  # in use by its container, so still there
        if volume.name in anonymous:
            out.anonymous_volumes.append(volume.name)
        _mount_volume(out, volume, target, readonly, copy_up=False)
    out.mounts.append(dict(mount))


def _mount_volume(
    out: Prepared, volume: store.Volume, target: str, readonly: bool, copy_up: bool
) -> None:
    options = volume.options
    if options.get("type") == "tmpfs":
        flags, data = tmpfs_options(options.get("o", ""))
        out.tmpfs.append({"target": target, "flags": flags, "data": data})
        return
    source = (
        options["device"] if "bind" in options.get("o", "").split(",") else str(volume.mountpoint)
    )
    out.binds.append({"source": source, "target": target, "readonly": readonly, "copy_up": copy_up})


def _doc(
    kind: str, source: str, target: str, mode: str, rw: bool, name: str = ""
) -> dict[str, Any]:
    """One entry of ``inspect``'s ``Mounts``, in Docker's shape."""
    doc: dict[str, Any] = {"Type": kind}
    if name:
        doc["Name"] = name
    doc.update({"Source": source, "Destination": target})
    if kind == "volume":
        doc["Driver"] = "local"
    doc.update({"Mode": mode, "RW": rw, "Propagation": "rprivate" if kind == "bind" else ""})
    return doc


def release(extra: dict[str, Any], remove_anonymous: bool) -> list[str]:
    """After a container is gone: its anonymous volumes, if asked and no one else uses them."""
    names = list(extra.get("anonymous_volumes", []))
    if not remove_anonymous or not names:
        return []
    return store.remove_unused(names)


def host_config_mounts(raw_mounts: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """``HostConfig.Mounts`` of ``inspect``: the ``--mount`` options in the API's shape."""
    shown = []
    for raw in raw_mounts:
        request = parse_mount(raw)
        doc: dict[str, Any] = {
            "Type": request.type,
            "Source": request.source,
            "Target": request.target,
        }
        if request.readonly:
            doc["ReadOnly"] = True
        if request.type == "volume" and (
            request.nocopy or request.volume_labels or request.volume_options
        ):
            doc["VolumeOptions"] = {
                "NoCopy": request.nocopy,
                "Labels": dict(request.volume_labels),
                "DriverConfig": {"Name": "local", "Options": dict(request.volume_options)},
            }
        if request.type == "tmpfs" and request.tmpfs_data:
            options = dict(item.split("=", 1) for item in request.tmpfs_data.split(","))
            doc["TmpfsOptions"] = {
                k: v
                for k, v in (
                    ("SizeBytes", int(options["size"]) if "size" in options else None),
                    ("Mode", int(options["mode"], 8) if "mode" in options else None),
                )
                if v
            }
        shown.append(doc)
    return shown or None
