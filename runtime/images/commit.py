"""``docker diff`` and ``docker commit``: a container's overlay upper dir as changes or as
a new image.

Kernel interfaces: the cgroup freezer (through ``containers.pause``) while committing a
running container, and what ``changes``/``layers`` use (lstat, getxattr on the upper
dir). Reads ``<container dir>/upper`` and the container's layer dirs directly: no mount.

Owns nothing on disk besides what ``layers.commit_layer`` stores. The engine's own mount
points (``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``, ``/sbin/docker-init``)
are neither changes nor committed, and volumes are never part of an image: their
content lives outside the upper dir. It never modifies a container.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from runtime import containers, images, paths, state
from runtime.containers import store as containers_store
from runtime.errors import NotFound
from runtime.images import changes, config, layers, store

ENGINE_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def engine_targets(record: containers_store.Record) -> list[str]:
    """Paths (relative to the rootfs) that exist only as the engine's mount points."""
    targets = list(ENGINE_FILES)
    if record.spec.init:
        targets.append("sbin/docker-init")
    return targets


def diff(ref: str) -> list[changes.Change]:
    """The container's changes to its image, as ``docker diff`` lists them."""
    record = containers_store.load(containers_store.resolve(ref))
    lowers = [record.directory / "init"] + [Path(d) for d in reversed(record.layer_dirs)]
    return changes.changes(record.directory / "upper", lowers, engine_targets(record))


class _Parent:
    """What ``layers.create_image`` needs of a parent, rebuilt from a container's record
    when its image was deleted under it (``rmi -f`` keeps the layers it still uses)."""

    def __init__(self, record: containers_store.Record) -> None:
        self.id = ""
        chains = [Path(d).parent.name for d in record.layer_dirs]
        self._diff_ids = [store.layer("sha256:" + chain).diff_id for chain in chains]
        # One anonymous history row per inherited layer keeps history's sizes aligned.
        self.config: dict[str, Any] = {
            "config": dict(record.image_config),
            "history": [
                {"created_by": "", "comment": "inherited from a deleted image"} for _ in chains
            ],
        }

    def diff_ids(self) -> list[str]:
        return list(self._diff_ids)


def container_config(record: containers_store.Record) -> dict[str, Any]:
    """The container's own config, as Docker commits it (its Cmd, not the image's)."""
    spec, image_config = record.spec, record.image_config
    block = dict(image_config)
    if spec.entrypoint is not None:
        block["Entrypoint"] = list(spec.entrypoint) or None
        block["Cmd"] = list(spec.cmd or ()) or None
    elif spec.cmd:
        block["Cmd"] = list(spec.cmd)
    block["Env"] = list(record.env) or None
    for key, value in (("WorkingDir", record.workdir), ("User", record.user)):
        if value:
            block[key] = value
    if record.labels:
        block["Labels"] = dict(record.labels)
    if spec.stop_signal:
        block["StopSignal"] = spec.stop_signal
    return {k: v for k, v in block.items() if v is not None}


@contextlib.contextmanager
def _quiesced(cid: str, pause: bool) -> Iterator[bool]:
    """Freeze a running container for the copy; hold the op lock of a stopped one.
    Yields whether the upper dir stays as it is meanwhile."""
    st = state.load(paths.container(cid))
    if st.status == state.RUNNING and pause:
        containers.pause(cid)
        try:
            yield True
        finally:
            with contextlib.suppress(Exception):  # it may have died meanwhile; stay quiet
                containers.unpause(cid)
    elif st.status in state.ACTIVE:
        yield st.status == state.PAUSED  # --pause=false: copy what is there
    else:
        with containers.operation(cid):
            yield True


def commit(
    ref: str,
    reference: str | None = None,
    *,
    message: str = "",
    author: str = "",
    changes_: Sequence[str] = (),
    pause: bool = True,
) -> images.Image:
    """``docker commit``: the container's upper dir as a new layer on its image."""
    cid = containers_store.resolve(ref)
    record = containers_store.load(cid)
    config.apply_changes({}, changes_)  # bad -c fails before anything is written
    if reference:
        images._tag_reference(reference)
    try:
        parent: Any = images.resolve(record.image_id)
    except NotFound:
        parent = _Parent(record)
    base = container_config(record)
    with _quiesced(cid, pause) as stable:
        layer = layers.commit_layer(
            record.directory / "upper", _top_chain(parent), engine_targets(record), stable=stable
        )
    cmd = base.get("Cmd") or []
    entry: dict[str, Any] = {"created": config.now(), "created_by": " ".join(cmd)}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    extra = {"container": cid, "container_config": dict(base, Hostname=record.hostname)}
    return layers.create_image(
        parent,
        [layer],
        container_config=base,
        changes=changes_,
        history=[entry],
        reference=reference,
        comment=message,
        author=author,
        extra=extra,
    )


def _top_chain(parent: images.Image | _Parent) -> str | None:
    chains = store.chain_ids(parent.diff_ids())
    return chains[-1] if chains else None
