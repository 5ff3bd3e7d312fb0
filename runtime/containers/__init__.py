"""Container verbs: one public function each. The CLI, the dashboard's Celery tasks and
its consumers call these and nothing deeper.

- ``create`` (creation.py): spec + image → a container directory in state ``created``
- ``start``, ``stop``, ``kill``, ``restart``, ``pause``, ``unpause``, ``wait``
  (lifecycle.py)
- ``remove``, ``prune``, ``gc`` (teardown.py)
- ``inspect``, ``list_containers``, ``top``, ``sample``/``cpu_percent`` (stats),
  ``logs`` (views.py)
- ``rename`` (renaming.py); ``reconcile``, ``reconcile_all`` (recovery.py)
- ``exec_process`` lives in ``runtime.exec``; the monitor in ``runtime.monitor``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exports load on first use (PEP 562): the monitor imports ``runtime.containers.store``
# at every container start and must not pay for every verb's imports.
_EXPORTS = {
    "create": "creation",
    "start": "lifecycle",
    "stop": "lifecycle",
    "kill": "lifecycle",
    "restart": "lifecycle",
    "pause": "lifecycle",
    "unpause": "lifecycle",
    "wait": "lifecycle",
    "operation": "lifecycle",
    "remove": "teardown",
    "prune": "teardown",
    "gc": "teardown",
    "reconcile": "recovery",
    "reconcile_all": "recovery",
    "inspect": "views",
    "list_containers": "views",
    "top": "views",
    "sample": "views",
    "cpu_percent": "views",
    "logs": "views",
    "rename": "renaming",
    "resolve": "store",
}
_SUBMODULES = {"store", "views", "lifecycle", "teardown", "recovery", "creation", "renaming"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"runtime.containers.{_EXPORTS[name]}")
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"runtime.containers.{name}")
    raise AttributeError(f"module 'runtime.containers' has no attribute {name!r}")
