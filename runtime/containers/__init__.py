"""Container verbs: one public function each. The CLI, the dashboard's Celery tasks and
its consumers call these and nothing deeper.

- ``create`` (create.py): spec + image → a container directory in state ``created``
- ``start``, ``stop``, ``kill``, ``restart``, ``pause``, ``unpause``, ``wait``
  (lifecycle.py)
- ``remove``, ``prune``, ``gc`` (teardown.py)
- ``inspect``, ``list_containers``, ``top``, ``sample``/``cpu_percent`` (stats),
  ``logs`` (views.py)
- ``rename`` (here)
- ``exec_process`` lives in ``runtime.exec``; the monitor in ``runtime.monitor``.
"""

from __future__ import annotations

from runtime.containers import store
from runtime.containers.create import create
from runtime.containers.lifecycle import kill, operation, pause, restart, start, stop, unpause, wait
from runtime.containers.reconcile import reconcile, reconcile_all
from runtime.containers.teardown import gc, prune, remove
from runtime.containers.views import cpu_percent, inspect, list_containers, logs, sample, top
from runtime.errors import Conflict
from runtime.names import validate_name

__all__ = ["create", "start", "stop", "kill", "restart", "pause", "unpause", "wait", "remove",
           "prune", "gc", "inspect", "list_containers", "top", "sample", "cpu_percent", "logs",
           "rename", "reconcile", "reconcile_all", "resolve"]

resolve = store.resolve


def rename(ref: str, new_name: str) -> str:
    new_name = validate_name(new_name)
    with operation(ref) as cid:
        record = store.load(cid)
        if record.name == new_name:
            raise Conflict("Renaming a container with the same name as its current name")
        store.claim_name(new_name, cid)
        old = record.name
        record.name = new_name
        store.save(record)
        store.release_name(old, cid)
        return cid
