"""The cgroup interface both drivers implement, and cgroupfs file access.

Drives: cgroups(7) control files (one value per ``write(2)``). Owns nothing on disk by
itself; the drivers in ``v1`` and ``v2`` own the directories. Never decides policy
(defaults, minimums): limits come in as a ``Resources`` value and the kernel's refusals
go back out as ``InvalidSpec``.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import CleanupError, InvalidSpec, KernelError, MoorageError, NotFound

WILDCARD = -1
# A v1 limit at or above this is the kernel's "no limit" (PAGE_COUNTER_MAX * page size).
UNLIMITED_THRESHOLD = 1 << 62
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@functools.cache
def mountinfo() -> str:
    """/proc/self/mountinfo, read once per process: the version probe and the v1 driver
    both need it (a container's monitor, at every start)."""
    with open("/proc/self/mountinfo") as f:
        return f.read()


@dataclass(frozen=True)
class DeviceRule:
    """One allow rule, as in runc: type 'a', 'c' or 'b'; -1 is the wildcard '*'."""

    type: str
    major: int
    minor: int
    access: str

    def __post_init__(self) -> None:
        if (
            self.type not in ("a", "b", "c")
            or not self.access
            or set(self.access) - set("rwm")
            or min(self.major, self.minor) < WILDCARD
        ):
            raise InvalidSpec(f"Invalid device rule {self.text()!r}: expected e.g. 'c 1:3 rwm'.")

    def text(self) -> str:
        """The rule as devices.allow (v1) spells it: ``c 1:3 rwm``."""
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def _char(major: int, minor: int, access: str = "rwm") -> DeviceRule:
    return DeviceRule("c", major, minor, access)


# What a Docker container may use: moby's default spec (null, zero, urandom, random,
# tty, console) followed by runc's AllowedDevices, which runc appends to every spec
# (mknod of anything, full, pts, ptmx, tun). Moby's fuse (10:229) deny is left out:
# after "deny all" it changes nothing.
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    _char(WILDCARD, WILDCARD, "m"),
    DeviceRule("b", WILDCARD, WILDCARD, "m"),
    _char(1, 3),  # null
    _char(1, 5),  # zero
    _char(1, 7),  # full
    _char(1, 8),  # random
    _char(1, 9),  # urandom
    _char(5, 0),  # tty
    _char(5, 1),  # console
    _char(5, 2),  # ptmx
    _char(136, WILDCARD),  # pts
    _char(10, 200),  # net/tun
)


@dataclass(frozen=True)
class Resources:
    """Limits as the docker CLI takes them; ``None`` leaves a limit as it is."""

    memory: int | None = None
    memory_swap: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    devices: tuple[DeviceRule, ...] | None = None


@dataclass(frozen=True)
class CgroupStats:
    """One sample. ``None`` limits mean unlimited; counters a host lacks read as 0."""

    cpu_total_ns: int
    cpu_percpu_ns: list[int]
    cpu_user_ns: int
    cpu_system_ns: int
    memory_usage: int
    memory_limit: int | None
    memory_cache: int
    pids_current: int
    pids_limit: int | None
    blkio_read_bytes: int
    blkio_write_bytes: int


class Cgroup(ABC):
    """A container's cgroup, named for its id, under the engine's prefix."""

    name: str

    def __init__(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise InvalidSpec(f"Invalid cgroup name {name!r}: use letters, digits, '_', '.', '-'.")
        self.name = name

    @abstractmethod
    def create(self, resources: Resources) -> None:
        """Make the cgroup and apply ``resources``; on failure leave nothing behind.

        Raises Conflict if it exists, InvalidSpec for a value the kernel refuses,
        MissingFeature when a limit needs a controller the host lacks.
        """

    @abstractmethod
    def update(self, resources: Resources) -> None:
        """Apply the limits of ``resources`` that are not None (docker update)."""

    @abstractmethod
    def add_process(self, pid: int) -> None:
        """Move host ``pid`` into the cgroup, in every hierarchy."""

    def self_attach_files(self) -> tuple[str, ...]:
        """Files a single-threaded process writes "0" to, to move itself in; empty when
        only ``add_process`` will do. On v1 that skips what moving a whole thread group
        costs: the kernel waits for an RCU grace period (5-20 ms) on each start."""
        return ()

    @abstractmethod
    def pids(self) -> list[int]:
        """Host pids of the processes directly in the cgroup."""

    @abstractmethod
    def freeze(self) -> None:
        """Freeze every process, returning once the kernel reports the cgroup frozen."""

    @abstractmethod
    def thaw(self) -> None: ...

    @abstractmethod
    def is_frozen(self) -> bool: ...

    @abstractmethod
    def oom_kill_count(self) -> int:
        """How many processes the OOM killer has killed in this cgroup."""

    @abstractmethod
    def stats(self) -> CgroupStats: ...

    @abstractmethod
    def kill_all(self, sig: int) -> None:
        """Send ``sig`` to every process in the cgroup."""

    @abstractmethod
    def destroy(self) -> None:
        """Remove the cgroup; kills nothing. Idempotent; CleanupError if it stays busy."""

    @abstractmethod
    def exists(self) -> bool: ...


# Why the kernel may refuse a value, per control file, for the user's sentence.
_HINTS = {
    "memory.memsw.limit_in_bytes": "the memory+swap limit must not be below the memory limit",
    "memory.limit_in_bytes": "the memory limit must not exceed the memory+swap limit",
    "cpu.cfs_period_us": "the CPU period must be between 1000 and 1000000 microseconds",
    "cpu.cfs_quota_us": "the CPU quota must be at least 1000 microseconds",
    "cpu.max": "the CPU quota must be at least 1000 and the period 1000 to 1000000 microseconds",
    "cpuset.cpus": "the requested CPUs are not available",
    "cpuset.mems": "the requested memory nodes are not available",
}


def read_text(path: Path) -> str:
    with open(path) as f:
        return f.read().strip()


def read_int(path: Path, default: int = 0) -> int:
    """An integer file; ``default`` when the host lacks the file."""
    try:
        return int(read_text(path))
    except FileNotFoundError:
        return default


def read_limit(path: Path) -> int | None:
    """A limit file; ``None`` for "max", v1's huge "no limit" value, or a missing file."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return None
    if text == "max" or int(text) >= UNLIMITED_THRESHOLD:
        return None
    return int(text)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file such as memory.stat or cgroup.events; empty when absent."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return {}
    pairs = (line.split() for line in text.splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in read_text(path).split()]


def write_text(path: Path, value: str) -> None:
    """One write(2) of ``value``; no O_CREAT, so a missing control file is ENOENT."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def refusal(path: Path, value: str, exc: OSError, available: str = "") -> MoorageError:
    if exc.errno == errno.EBUSY and path.name.startswith("memory."):
        reason = "the container already uses more memory than that"
    elif exc.errno in (errno.EINVAL, errno.ERANGE, errno.EBUSY, errno.EOVERFLOW):
        reason = _HINTS.get(path.name, "the kernel rejects this value")
    else:
        return KernelError.from_oserror(f"write {value!r} to {path.name}", exc)
    if available:
        reason += f" (available: {available})"
    return InvalidSpec(f"Cannot set {path.name} to {value}: {reason}.")


@contextmanager
def kernel_errors(name: str, operation: str) -> Iterator[None]:
    """Translate OSError at the driver's boundary; a vanished file means a vanished cgroup."""
    try:
        yield
    except FileNotFoundError as e:
        raise NotFound(f"No such cgroup: {name}.") from e
    except OSError as e:
        raise KernelError.from_oserror(operation, e) from e


def undo_create(name: str, made: list[Path], first: BaseException, timeout: float) -> None:
    """Remove what a failed create made, keeping the first failure if that fails too."""
    try:
        remove_dirs(name, reversed(made), timeout)
        remove_prefix_dirs(directory.parent for directory in made)
    except MoorageError as e:
        raise CleanupError(f"Could not remove cgroup {name} after a failed create", first) from e


def memory_plus_swap(r: Resources) -> int | None:
    """The memory+swap total to apply; docker's default is twice ``--memory``."""
    if r.memory_swap is not None or r.memory is None:
        return r.memory_swap
    return -1 if r.memory == -1 else 2 * r.memory


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited since cgroup.procs was read


def remove_dirs(name: str, dirs: Iterable[Path], timeout: float) -> None:
    """rmdir each directory; ENOENT is success, EBUSY is retried until ``timeout``."""
    remaining = list(dirs)

    def removed_all() -> bool:
        nonlocal remaining
        remaining = [d for d in remaining if not _rmdir(d)]
        return not remaining

    if not wait_for(removed_all, timeout, interval=0.02):
        raise CleanupError(f"cgroup {name} is still in use after {timeout:g} s: {remaining[0]}.")


def make_dir(directory: Path) -> None:
    """mkdir a cgroup and, when missing, its prefix directory.

    Another container's destroy may remove the empty prefix directory between the two
    mkdirs; once ours is inside, it cannot, so a vanished parent is simply retried.
    """
    for _ in range(5):
        directory.parent.mkdir(exist_ok=True)
        try:
            directory.mkdir()
            return
        except FileNotFoundError:
            continue
    directory.mkdir()  # let the error out


def remove_prefix_dirs(dirs: Iterable[Path]) -> None:
    """Remove the prefix directories when no other container's cgroup is left in them."""
    for directory in dirs:
        try:
            os.rmdir(directory)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                raise KernelError.from_oserror("rmdir cgroup prefix", e) from e


def _rmdir(path: Path) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno == errno.EBUSY:
            return False  # processes (or zombies not yet reaped) still inside
        raise KernelError.from_oserror("rmdir cgroup", e) from e
    return True
