"""cgroups: one interface, two drivers, chosen by probing the host.

Drives: /proc/self/mountinfo to tell a pure cgroup v2 host (``/sys/fs/cgroup`` is itself
cgroup2) from a v1 or hybrid one. ``open_cgroup(name)`` returns the driver for this
host: ``v1.V1Cgroup`` or ``v2.V2Cgroup``; both implement ``base.Cgroup``. Owns nothing
on disk itself; never writes a control file.

Every cgroup lives at ``<mount>/<paths.prefix()>/<name>``, the name being the
container id, so ``list_names()`` finds leftovers after a crash.
"""

from __future__ import annotations

import errno
import functools

from runtime.cgroups import base, v1, v2
from runtime.cgroups.base import (
    DEFAULT_DEVICE_RULES,
    Cgroup,
    CgroupStats,
    DeviceRule,
    Resources,
)
from runtime.errors import MissingFeature

__all__ = [
    "DEFAULT_DEVICE_RULES",
    "Cgroup",
    "CgroupStats",
    "DeviceRule",
    "Resources",
    "list_names",
    "open_cgroup",
    "probe",
    "version",
]


def probe(mountinfo: str) -> int:
    """2 if /sys/fs/cgroup is a cgroup2 mount, 1 if v1 hierarchies are mounted."""
    v1_seen = False
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, fstype = before.split(), after.split()[:1]
        if len(fields) < 5 or not fstype:
            continue
        if fstype[0] == "cgroup2" and fields[4] == "/sys/fs/cgroup":
            return 2
        v1_seen = v1_seen or fstype[0] == "cgroup"
    if v1_seen:
        return 1
    raise MissingFeature("probe cgroups", errno.ENOENT, "no cgroup hierarchy is mounted")


@functools.cache
def version() -> int:
    """1 on v1 and hybrid hosts, 2 on pure v2 hosts; probed once per process."""
    return probe(base.mountinfo())


def open_cgroup(name: str) -> Cgroup:
    """The cgroup for container ``name``, whether or not it exists yet."""
    return v1.V1Cgroup(name) if version() == 1 else v2.V2Cgroup(name)


def list_names() -> list[str]:
    """Names of the cgroups under our prefix, for gc and leftover checks."""
    return v1.list_names() if version() == 1 else v2.list_names()
