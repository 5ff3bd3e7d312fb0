"""Container lifecycle: the state machine and its on-disk record.

A container's state is ``state.json`` in its directory, written with
write-temp-then-rename under ``state.lock`` (flock(2)), so a reader never sees half a
file and the monitor and the CLI never lose each other's updates. Verbs serialise on a
second lock, ``op.lock``, held for the whole operation; the monitor never takes it, so a
verb can wait for the monitor without deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.errors import InvalidState

CREATED, RUNNING, PAUSED, RESTARTING, EXITED, DEAD, REMOVING = (
    "created",
    "running",
    "paused",
    "restarting",
    "exited",
    "dead",
    "removing",
)

# Allowed transitions: from-state → states it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({RUNNING, EXITED, REMOVING}),
    RUNNING: frozenset({PAUSED, RESTARTING, EXITED, REMOVING, DEAD}),
    PAUSED: frozenset({RUNNING, EXITED, REMOVING, DEAD}),
    RESTARTING: frozenset({RUNNING, EXITED, REMOVING, DEAD}),
    EXITED: frozenset({RUNNING, REMOVING, EXITED}),
    DEAD: frozenset({REMOVING}),
    REMOVING: frozenset({DEAD}),
}
ACTIVE = frozenset({RUNNING, PAUSED, RESTARTING})


@dataclass
class State:
    status: str = CREATED
    pid: int = 0  # host pid of the container's init, 0 when not running
    monitor_pid: int = 0
    monitor_start: int = 0  # the monitor's start time in clock ticks, against pid reuse
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    manually_stopped: bool = False
    boot_id: str = ""
    lost: bool = False  # its monitor died under it; restart policies still apply

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def check_transition(current: str, target: str, who: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidState(f"cannot move container {who} from {current} to {target}")


def write_json(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as JSON."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


@contextlib.contextmanager
def flocked(path: Path, shared: bool = False) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load(directory: Path) -> State:
    return State.from_json(read_json(directory / "state.json"))


def save(directory: Path, state: State) -> None:
    write_json(directory / "state.json", state.to_json())


@contextlib.contextmanager
def updating(directory: Path) -> Iterator[State]:
    """Read-modify-write the state under the state lock (no write if nothing changed)."""
    with flocked(directory / "state.lock"):
        state = load(directory)
        before = state.to_json()
        yield state
        if state.to_json() != before:
            save(directory, state)


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int:
    """Start time of ``pid`` in clock ticks since boot, 0 if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def process_alive(pid: int, start_time: int) -> bool:
    """``pid`` is still the process that started at ``start_time`` and has not exited.

    A zombie has exited: a detached monitor's parent is PID 1, which may take a second
    or more to reap it, and until then /proc still lists it with its start time.
    """
    if pid <= 0 or process_start_time(pid) != start_time:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X")


def now() -> float:
    return time.time()
