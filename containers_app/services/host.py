"""Host facts and counts for the dashboard's front page.

Reads uname(2), /proc/meminfo, the cgroup probe and the sizes of the engine's stores.
Disk usage walks the stores, so it is cached for a minute.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.db.models import Count

from containers_app import permissions
from containers_app.models import ContainerMirror
from runtime import cgroups, paths

_CACHE: dict[str, tuple[float, int]] = {}
DISK_TTL = 60.0


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root, onerror=lambda e: None):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue  # removed while we walked
    return total


def _cached_size(root: Path) -> int:
    key = str(root)
    hit = _CACHE.get(key)
    if hit and time.monotonic() - hit[0] < DISK_TTL:
        return hit[1]
    size = _tree_size(root)
    _CACHE[key] = (time.monotonic(), size)
    return size


def _memory_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def facts() -> dict[str, Any]:
    """Kernel, cgroup version, CPUs, memory and disk used by the engine's stores."""
    try:
        cgroup_version: int | str = cgroups.version()
    except OSError:
        cgroup_version = "unknown"
    return {
        "kernel": os.uname().release,
        "cgroup_version": cgroup_version,
        "cpus": os.cpu_count() or 1,
        "memory": _memory_bytes(),
        "disk": {
            "images": _cached_size(paths.images()),
            "containers": _cached_size(paths.containers()),
            "volumes": _cached_size(paths.volumes()),
        },
    }


def counts(user: Any) -> dict[str, int]:
    """Visible containers per state, plus "total"."""
    rows = permissions.visible(user, ContainerMirror.objects.all())
    by_state = {r["state"]: r["n"] for r in rows.values("state").annotate(n=Count("id"))}
    by_state["total"] = sum(by_state.values())
    return by_state
