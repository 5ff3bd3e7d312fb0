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


def link_prefix() -> str:
    """Prefix of every network link the engine names (veths, user-network bridges).

    Short, because link names must fit in 15 bytes; tests set ``mt-``."""
    return os.environ.get("MOORAGE_LINK_PREFIX", "mg-")


def default_bridge() -> str:
    """The kernel bridge of the default ``bridge`` network (Docker's ``docker0``)."""
    return os.environ.get("MOORAGE_BRIDGE", "moorage0")


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
