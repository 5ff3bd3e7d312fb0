"""The cgroup driver for hosts with the unified hierarchy only (pure cgroup v2).

Drives: cgroup v2 files (cgroups(7), Documentation/admin-guide/cgroup-v2.rst): limits in
memory.max, memory.swap.max, cpu.max, cpu.weight, cpuset.*, pids.max; cgroup.freeze and
cgroup.events for pause; cgroup.kill; cgroup.subtree_control to hand controllers down.
Device rules go through ``devices_bpf``. Owns ``<mount>/<prefix>/<name>``, and creates
``<mount>/<prefix>`` and enables controllers in its cgroup.subtree_control (and in the
mount root's) when missing. Never removes the prefix directory, never disables a
controller, never kills on ``destroy``.

The mount point is a constructor argument so that tests on a hybrid host can point the
driver at its cgroup2 mount (``/sys/fs/cgroup/unified``).
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from runtime import paths
from runtime.cgroups import devices_bpf
from runtime.cgroups.base import (
    Cgroup,
    CgroupStats,
    Resources,
    kernel_errors,
    make_dir,
    memory_plus_swap,
    read_int,
    read_keyed,
    read_limit,
    read_pids,
    read_text,
    refusal,
    remove_dirs,
    remove_prefix_dirs,
    signal_all,
    undo_create,
    wait_for,
    write_text,
)
from runtime.errors import Conflict, InvalidSpec, KernelError, MissingFeature, NotFound

MOUNT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
FREEZE_TIMEOUT = 10.0
DESTROY_TIMEOUT = 2.0
# memory.swap.max is missing when swap accounting is off; docker then drops the limit.
OPTIONAL_FILES = {"memory.swap.max"}


def cpu_weight(shares: int) -> int:
    """cpu.weight for a --cpu-shares value, as runc converts it ([2, 262144] → [1, 10000])."""
    shares = min(max(shares, 2), 262144)
    return 1 + (shares - 2) * 9999 // 262142


def plan(r: Resources, current_memory: int | None) -> list[tuple[str, str]]:
    """The (control file, value) writes that apply ``r``.

    ``current_memory`` is memory.max in force (``None`` = max): memory.swap.max counts
    swap alone, so a memory+swap total given without ``--memory`` is taken against it.
    """
    writes: list[tuple[str, str]] = []
    if r.memory is not None:
        writes.append(("memory.max", "max" if r.memory == -1 else str(r.memory)))
    total = memory_plus_swap(r)
    if total is not None:
        writes.append(("memory.swap.max", _swap_max(total, _or(r.memory, current_memory))))
    if r.cpu_shares:
        writes.append(("cpu.weight", str(cpu_weight(r.cpu_shares))))
    if r.cpu_quota is not None or r.cpu_period is not None:
        # As runc does: a period alone resets the quota to "max".
        quota = str(r.cpu_quota) if r.cpu_quota and r.cpu_quota > 0 else "max"
        writes.append(("cpu.max", f"{quota} {r.cpu_period}" if r.cpu_period else quota))
    if r.cpuset_cpus:
        writes.append(("cpuset.cpus", r.cpuset_cpus))
    if r.cpuset_mems:
        writes.append(("cpuset.mems", r.cpuset_mems))
    if r.pids_limit is not None:
        writes.append(("pids.max", str(r.pids_limit) if r.pids_limit > 0 else "max"))
    return writes


def _or(value: int | None, default: int | None) -> int | None:
    return default if value is None else value


def _swap_max(total: int, memory: int | None) -> str:
    if total == -1:
        return "max"
    if memory is None or memory == -1:
        raise InvalidSpec("A memory+swap limit needs a memory limit: set --memory as well.")
    if total < memory:
        raise InvalidSpec(
            f"Cannot set memory+swap to {total}: it must not be below the memory limit {memory}."
        )
    return str(total - memory)


class V2Cgroup(Cgroup):
    def __init__(self, name: str, mount: Path = MOUNT) -> None:
        super().__init__(name)
        self.mount = mount

    @property
    def path(self) -> Path:
        return self.mount / paths.prefix() / self.name

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self, resources: Resources) -> None:
        if self.exists():
            raise Conflict(f"cgroup {self.name} already exists.")
        writes = plan(resources, None)  # a bad value is refused before the first mkdir
        made: list[Path] = []
        try:
            make_dir(self.path)
            made.append(self.path)
            # Enabled after the mkdir: with a child inside, the prefix cannot vanish.
            self._enable_controllers({file.split(".")[0] for file, _ in writes})
            self._write_all(writes, resources)
        except BaseException as e:
            undo_create(self.name, made, e, DESTROY_TIMEOUT)
            if isinstance(e, FileExistsError):
                raise Conflict(f"cgroup {self.name} already exists.") from e
            if isinstance(e, OSError):
                raise KernelError.from_oserror("create cgroup", e) from e
            raise

    def _enable_controllers(self, needed: set[str]) -> None:
        """Hand every controller we use down to the prefix directory's children."""
        parent = self.path.parent
        for directory in (self.mount, parent):
            available = read_text(directory / "cgroup.controllers").split()
            enabled = read_text(directory / "cgroup.subtree_control").split()
            for controller in CONTROLLERS:
                if controller in available and controller not in enabled:
                    try:
                        write_text(directory / "cgroup.subtree_control", f"+{controller}")
                    except OSError:
                        pass  # only an error if a limit needs it: checked below
        missing = needed - set(read_text(parent / "cgroup.subtree_control").split())
        if missing:
            raise MissingFeature(
                "enable cgroup v2 controllers",
                errno.ENOTSUP,
                f"{', '.join(sorted(missing))} not available in {parent}",
            )

    def update(self, resources: Resources) -> None:
        with kernel_errors(self.name, "update cgroup"):
            if not self.exists():
                raise NotFound(f"No such cgroup: {self.name}.")
            writes = plan(resources, read_limit(self.path / "memory.max"))
            self._write_all(writes, resources)

    def _write_all(self, writes: list[tuple[str, str]], resources: Resources) -> None:
        for file, value in writes:
            path = self.path / file
            if file in OPTIONAL_FILES and not path.exists():
                continue
            try:
                write_text(path, value)
            except OSError as e:
                available = ""
                if file.startswith("cpuset."):
                    available = read_text(path.parent.parent / f"{file}.effective")
                raise refusal(path, value, e, available) from e
        if resources.devices is not None:
            devices_bpf.attach(self.path, resources.devices)

    def add_process(self, pid: int) -> None:
        with kernel_errors(self.name, "add process to cgroup"):
            try:
                write_text(self.path / "cgroup.procs", str(pid))
            except ProcessLookupError as e:
                raise NotFound(f"No such process: {pid}.") from e

    def pids(self) -> list[int]:
        with kernel_errors(self.name, "read cgroup.procs"):
            return read_pids(self.path / "cgroup.procs")

    def freeze(self) -> None:
        with kernel_errors(self.name, "freeze cgroup"):
            self._require("cgroup.freeze")
            write_text(self.path / "cgroup.freeze", "1")
            if not wait_for(self.is_frozen, FREEZE_TIMEOUT):
                write_text(self.path / "cgroup.freeze", "0")
                raise KernelError("freeze cgroup", errno.ETIMEDOUT, f"{self.name} did not freeze")

    def thaw(self) -> None:
        with kernel_errors(self.name, "thaw cgroup"):
            self._require("cgroup.freeze")
            write_text(self.path / "cgroup.freeze", "0")

    def is_frozen(self) -> bool:
        with kernel_errors(self.name, "read cgroup.events"):
            return read_keyed(self.path / "cgroup.events").get("frozen") == 1

    def _require(self, file: str) -> None:
        if self.exists() and not (self.path / file).exists():
            raise MissingFeature("cgroup v2", errno.ENOTSUP, f"this kernel has no {file}")

    def oom_kill_count(self) -> int:
        if not self.exists():
            raise NotFound(f"No such cgroup: {self.name}.")
        return read_keyed(self.path / "memory.events").get("oom_kill", 0)

    def stats(self) -> CgroupStats:
        with kernel_errors(self.name, "read cgroup stats"):
            if not self.exists():
                raise NotFound(f"No such cgroup: {self.name}.")
            cpu = read_keyed(self.path / "cpu.stat")
            read, written = _io_bytes(self.path / "io.stat")
            return CgroupStats(
                cpu_total_ns=cpu.get("usage_usec", 0) * 1000,
                cpu_percpu_ns=[],  # v2 does not account per CPU
                cpu_user_ns=cpu.get("user_usec", 0) * 1000,
                cpu_system_ns=cpu.get("system_usec", 0) * 1000,
                memory_usage=read_int(self.path / "memory.current"),
                memory_limit=read_limit(self.path / "memory.max"),
                memory_cache=read_keyed(self.path / "memory.stat").get("inactive_file", 0),
                pids_current=read_int(self.path / "pids.current"),
                pids_limit=read_limit(self.path / "pids.max"),
                blkio_read_bytes=read,
                blkio_write_bytes=written,
            )

    def kill_all(self, sig: int) -> None:
        with kernel_errors(self.name, "kill cgroup"):
            if sig == signal.SIGKILL and (self.path / "cgroup.kill").exists():
                # The kernel kills every task, including ones forked meanwhile.
                write_text(self.path / "cgroup.kill", "1")
                return
            signal_all(read_pids(self.path / "cgroup.procs"), sig)

    def destroy(self) -> None:
        if (self.path / "cgroup.freeze").exists() and self.is_frozen():
            self.thaw()  # let the remaining tasks run to their exit
        remove_dirs(self.name, [self.path], DESTROY_TIMEOUT)
        remove_prefix_dirs([self.path.parent])


def _io_bytes(io_stat: Path) -> tuple[int, int]:
    """Sum of rbytes and wbytes over devices in io.stat ("8:0 rbytes=1 wbytes=2 ...")."""
    try:
        lines = read_text(io_stat).splitlines()
    except FileNotFoundError:
        return 0, 0
    totals = {"rbytes": 0, "wbytes": 0}
    for line in lines:
        for key, _, value in (field.partition("=") for field in line.split()[1:]):
            if key in totals:
                totals[key] += int(value)
    return totals["rbytes"], totals["wbytes"]


def list_names(mount: Path = MOUNT) -> list[str]:
    base = mount / paths.prefix()
    if not base.is_dir():
        return []
    return sorted(entry.name for entry in base.iterdir() if entry.is_dir())
