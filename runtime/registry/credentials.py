"""Registry credentials and registry settings in the engine's config file.

Kernel interfaces: open(2)/rename(2) (``store.write_atomic``: a temp file in the same
directory, mode 0600, renamed into place) and flock(2) on ``config.json.lock``.

Owns ``<MOORAGE_ROOT>/config.json`` (or ``$MOORAGE_CONFIG``), shaped like the docker
CLI's ``~/.docker/config.json``::

    {"auths": {"127.0.0.1:5000": {"auth": "<base64 user:password>"}},
     "insecure-registries": ["registry.lan:5000"]}

It lives with the engine, not in a home directory, because Moorage is daemonless and
runs as root: the CLI, the Celery worker and the dashboard share one engine and so one
set of credentials. The file is always mode 0600. It never stores a password anywhere
else and never prints one.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime import paths
from runtime.errors import KernelError
from runtime.images import store


def config_path() -> Path:
    configured = os.environ.get("MOORAGE_CONFIG")
    return Path(configured) if configured else paths.root() / "config.json"


def read_config() -> dict[str, Any]:
    try:
        with open(config_path(), "rb") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise KernelError(
            "read the config file", errno.EUCLEAN, f"{config_path()} is not JSON"
        ) from e
    except OSError as e:
        raise KernelError.from_oserror("read the config file", e) from e
    return doc if isinstance(doc, dict) else {}


@contextlib.contextmanager
def _editing() -> Iterator[dict[str, Any]]:
    path = config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise KernelError.from_oserror("lock the config file", e) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        doc = read_config()
        yield doc
        store.write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")
    finally:
        os.close(fd)


def get(domain: str) -> tuple[str, str] | None:
    """(username, password) stored for ``domain``, or None."""
    entry = (read_config().get("auths") or {}).get(domain)
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def put(domain: str, username: str, password: str) -> None:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    with _editing() as doc:
        auths = doc.setdefault("auths", {})
        auths[domain] = {"auth": token}


def remove(domain: str) -> bool:
    """Forget ``domain``'s credentials; False if there were none."""
    if get(domain) is None and domain not in (read_config().get("auths") or {}):
        return False
    with _editing() as doc:
        (doc.get("auths") or {}).pop(domain, None)
    return True
