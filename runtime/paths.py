"""Where the engine keeps things.

``MOORAGE_ROOT`` (default ``/var/lib/moorage``) holds durable state: images, containers,
volumes, networks. ``MOORAGE_RUN`` (default ``/run/moorage``) holds run-time files that a
reboot may lose: monitor sockets and locks. Tests point both at temporary directories.
Kernel objects (cgroups, veths) carry the prefix ``MOORAGE_PREFIX`` (default ``moorage``)
so a ``gc`` pass and the test suite's leftover check can find them.
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("MOORAGE_ROOT", "/var/lib/moorage"))


def run_root() -> Path:
    return Path(os.environ.get("MOORAGE_RUN", "/run/moorage"))


def prefix() -> str:
    return os.environ.get("MOORAGE_PREFIX", "moorage")


def images() -> Path:
    return root() / "image"


def containers() -> Path:
    return root() / "containers"


def container(cid: str) -> Path:
    return containers() / cid


def volumes() -> Path:
    return root() / "volumes"


def networks() -> Path:
    return root() / "network"


def tmp() -> Path:
    """Scratch space on the same filesystem as the stores, so renames are atomic."""
    path = root() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
