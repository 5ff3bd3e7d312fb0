"""``rename``: give a container a new name, atomically claiming it first."""

from __future__ import annotations

from runtime.containers import store
from runtime.containers.lifecycle import operation
from runtime.errors import Conflict
from runtime.names import validate_name


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
