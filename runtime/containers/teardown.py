"""Removing containers, and finding what a crash left behind.

``remove`` refuses a running container unless forced, then kills it through its
monitor and deletes everything it owns: its directory (overlay upper and work dirs,
log, state), its name, its cgroup and its socket. All steps treat "already gone" as
success, so a second ``rm -f`` racing the first finds nothing to corrupt. ``gc`` finds
kernel objects with our prefix that no container owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from runtime import attach, cgroups, paths, rootfs, state
from runtime.containers import store
from runtime.containers.lifecycle import _cancel_restart, _stop_process, operation
from runtime.containers.recovery import monitor_alive, reconcile
from runtime.errors import CleanupError, Conflict, MoorageError

# Directories of removed containers waiting, under paths.tmp(), to be deleted.
REMOVED_PREFIX = "removed-"


def remove(ref: str, force: bool = False, volumes: bool = False) -> str:
    """``rm``; ``volumes`` (``rm -v``) also removes its anonymous volumes no one else uses."""
    with operation(ref) as cid:
        st = reconcile(cid)
        if st.status in state.ACTIVE:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {cid}. Stop the "
                    "container before attempting removal or force remove"
                )
            with state.updating(paths.container(cid)) as current:
                current.status = state.REMOVING
                current.manually_stopped = True
            if st.status == state.RESTARTING:
                _cancel_restart(cid)
            # After cancel_restart, a pid means the monitor had already launched a new run.
            if st.status != state.RESTARTING or state.load(paths.container(cid)).pid:
                _stop_process(cid, signal.SIGKILL, -1, st.status == state.PAUSED)
            _wait_for_monitor(cid)
        remove_stopped(cid, volumes)
        return cid


def _wait_for_monitor(cid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = state.load(paths.container(cid))
        if not monitor_alive(st):
            return
        time.sleep(0.01)
    raise CleanupError(f"the monitor of container {cid[:12]} did not exit")


def remove_stopped(cid: str, volumes: bool = False, later: list[Path] | None = None) -> None:
    """Delete a stopped container's files, name and leftovers. Idempotent.

    Anonymous volumes go too with ``volumes`` or ``--rm``, as in Docker. With ``later``,
    the container's directory is only moved out of the store, to ``paths.tmp()`` (one
    rename instead of a few dozen unlinks), and its new path appended for the caller to
    delete: the monitor of a ``run --rm`` reports the exit once the container is gone
    and deletes the files after that. ``gc`` deletes what a crash left there."""
    directory = paths.container(cid)
    extra: dict[str, Any] = {}
    try:
        record = store.load(cid)
        name = record.name
        extra = record.extra
        volumes = volumes or record.spec.auto_remove
    except MoorageError:
        name = None
    group = cgroups.open_cgroup(cid)
    if group.exists():
        group.kill_all(signal.SIGKILL)
        group.destroy()
    attach.remove_socket(cid)
    rootfs.unmount_shared_shm(directory / "shm")
    from runtime.network import endpoints as net_endpoints

    if net_endpoints.has_networks(cid):  # none/host: spare loading the network verbs
        from runtime.network import verbs as network_verbs

        network_verbs.forget(cid)  # its veths and IPAM entries
    # Hide the container first (config.json marks it as existing), then delete.
    try:
        os.unlink(directory / "config.json")
    except FileNotFoundError:
        pass
    if name:
        store.release_name(name, cid)
    if later is not None and directory.exists():
        moved = paths.tmp() / f"{REMOVED_PREFIX}{cid}"
        try:
            os.rename(directory, moved)
            later.append(moved)
        except OSError:
            pass  # deleted in place below
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        raise CleanupError(f"could not remove {directory}")
    from runtime import volumes as volume_store

    volume_store.release(extra, volumes)


def prune() -> list[str]:
    """Remove every stopped container; return their ids."""
    removed = []
    for cid in store.ids():
        try:
            st = reconcile(cid)
            if st.status in (state.CREATED, state.EXITED, state.DEAD):
                remove(cid)
                removed.append(cid)
        except MoorageError:
            continue
    return removed


def gc() -> dict[str, list[str]]:
    """Kernel objects and files with our prefix that no live container owns, removed."""
    known = set(store.ids())
    found: dict[str, list[str]] = {"cgroups": [], "sockets": [], "directories": []}
    for name in cgroups.list_names():
        if name not in known or state.load(paths.container(name)).status not in state.ACTIVE:
            group = cgroups.open_cgroup(name)
            group.kill_all(signal.SIGKILL)
            group.destroy()
            found["cgroups"].append(name)
    try:
        for entry in os.scandir(paths.run_root()):
            cid = entry.name.removesuffix(".sock")
            if entry.name.endswith(".sock") and not any(k.startswith(cid) for k in known):
                os.unlink(entry.path)
                found["sockets"].append(cid)
    except FileNotFoundError:
        pass
    try:
        for entry in os.scandir(paths.containers()):
            if len(entry.name) == 64 and entry.name not in known:
                shutil.rmtree(entry.path, ignore_errors=True)
                found["directories"].append(entry.name)
    except FileNotFoundError:
        pass
    for entry in os.scandir(paths.tmp()):  # moved away by a monitor that then died
        cid = entry.name.removeprefix(REMOVED_PREFIX)
        if entry.name.startswith(REMOVED_PREFIX) and len(cid) == 64 and cid not in known:
            shutil.rmtree(entry.path, ignore_errors=True)
            found["directories"].append(cid)
    names = store.names_dir()
    if names.exists():
        for link in names.iterdir():
            if os.readlink(link) not in known:
                link.unlink()
    from runtime.network import gc as network_gc

    found.update(network_gc.collect())
    return found
