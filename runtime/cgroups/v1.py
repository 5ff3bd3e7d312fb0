"""The cgroup driver for v1 and hybrid hosts.

Drives: the v1 cgroupfs hierarchies (cgroups(7)) cpu, cpuacct, cpuset, memory, devices,
freezer, blkio and pids, found through /proc/self/mountinfo whether each is mounted on
its own or co-mounted (``cpu,cpuacct``). Owns ``<mount>/<prefix>/<name>`` in every
hierarchy and creates ``<mount>/<prefix>`` when missing. Never removes the prefix
directory (other containers share it), never touches cgroups outside it, and never kills
on ``destroy``.

memory.use_hierarchy is left alone: it only matters for limits set on a parent, and we
set limits on the leaf only (kernels since 5.18 force it to 1 anyway).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import signal
from pathlib import Path

from runtime import paths
from runtime.cgroups.base import (
    Cgroup,
    CgroupStats,
    Resources,
    kernel_errors,
    make_dir,
    memory_plus_swap,
    mountinfo,
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
from runtime.errors import Conflict, KernelError, MissingFeature, NotFound

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
FREEZE_TIMEOUT = 10.0
DESTROY_TIMEOUT = 2.0
# Files a host may lack without the request being wrong: docker drops --memory-swap with a
# warning when swap accounting is off.
OPTIONAL_FILES = {"memory.memsw.limit_in_bytes"}


def parse_mountinfo(text: str) -> dict[str, Path]:
    """Controller name → mount point of its v1 hierarchy, from /proc/self/mountinfo."""
    mounts: dict[str, Path] = {}
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] != "cgroup":
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
        for option in tail[2].split(","):
            if option in CONTROLLERS:
                mounts.setdefault(option, point)
    return mounts


@functools.cache
def mounts() -> dict[str, Path]:
    return parse_mountinfo(mountinfo())


def plan(r: Resources, current_memory: int) -> list[tuple[str, str]]:
    """The (control file, value) writes that apply ``r``, in the order the kernel needs.

    ``current_memory`` is the memory.limit_in_bytes in force, which decides whether the
    memory or the memory+swap limit must move first. Device rules replace the whole list
    (deny all, then allow each), as on create.
    """
    writes: list[tuple[str, str]] = []
    memory = [("memory.limit_in_bytes", str(r.memory))] if r.memory is not None else []
    total = memory_plus_swap(r)
    memsw = [("memory.memsw.limit_in_bytes", str(total))] if total is not None else []
    # The kernel keeps memsw >= memory after every write: raise memsw first, lower it last.
    if total is not None and (total == -1 or total > current_memory):
        writes += memsw + memory
    else:
        writes += memory + memsw
    if r.cpu_shares:
        writes.append(("cpu.shares", str(r.cpu_shares)))
    if r.cpu_period is not None:
        writes.append(("cpu.cfs_period_us", str(r.cpu_period)))
    if r.cpu_quota is not None:
        writes.append(("cpu.cfs_quota_us", str(r.cpu_quota if r.cpu_quota > 0 else -1)))
    if r.cpuset_cpus:
        writes.append(("cpuset.cpus", r.cpuset_cpus))
    if r.cpuset_mems:
        writes.append(("cpuset.mems", r.cpuset_mems))
    if r.pids_limit is not None:
        writes.append(("pids.max", str(r.pids_limit) if r.pids_limit > 0 else "max"))
    if r.devices is not None:
        writes.append(("devices.deny", "a"))
        writes += [("devices.allow", rule.text()) for rule in r.devices]
    return writes


class V1Cgroup(Cgroup):
    def __init__(self, name: str, mount_points: dict[str, Path] | None = None) -> None:
        super().__init__(name)
        self._mounts = mounts() if mount_points is None else mount_points

    def _dir(self, controller: str) -> Path:
        if controller not in self._mounts:
            raise MissingFeature(
                "cgroup v1", errno.ENOTSUP, f"the {controller} controller is not mounted"
            )
        return self._mounts[controller] / paths.prefix() / self.name

    def _dirs(self) -> list[Path]:
        # dict keeps order and folds co-mounted controllers into one directory.
        return list(dict.fromkeys(self._dir(c) for c in CONTROLLERS if c in self._mounts))

    def _optional(self, controller: str) -> Path | None:
        return self._dir(controller) if controller in self._mounts else None

    def exists(self) -> bool:
        return any(d.is_dir() for d in self._dirs())

    def create(self, resources: Resources) -> None:
        if self.exists():
            raise Conflict(f"cgroup {self.name} already exists.")
        made: list[Path] = []
        try:
            for directory in self._dirs():
                make_dir(directory)
                made.append(directory)
            self._inherit_cpuset()
            self._apply(resources)
        except BaseException as e:
            undo_create(self.name, made, e, DESTROY_TIMEOUT)
            if isinstance(e, FileExistsError):
                raise Conflict(f"cgroup {self.name} already exists.") from e
            if isinstance(e, OSError):
                raise KernelError.from_oserror("create cgroup", e) from e
            raise

    def _inherit_cpuset(self) -> None:
        """A new cpuset starts with no cpus or mems and refuses tasks: copy the parent's."""
        cpuset = self._optional("cpuset")
        if cpuset is None:
            return
        for directory in (cpuset.parent, cpuset):
            for file in ("cpuset.cpus", "cpuset.mems"):
                if not read_text(directory / file):
                    write_text(directory / file, read_text(directory.parent / file))

    def update(self, resources: Resources) -> None:
        with kernel_errors(self.name, "update cgroup"):
            if not self.exists():
                raise NotFound(f"No such cgroup: {self.name}.")
            self._apply(resources)

    def _apply(self, resources: Resources) -> None:
        memory = self._optional("memory")
        current = read_int(memory / "memory.limit_in_bytes") if memory else 0
        for file, value in plan(resources, current):
            path = self._dir(file.split(".")[0]) / file
            if file in OPTIONAL_FILES and not path.exists():
                continue
            try:
                write_text(path, value)
            except OSError as e:
                available = ""
                if file.startswith("cpuset."):
                    available = read_text(path.parent.parent / f"cpuset.effective_{file[7:]}")
                raise refusal(path, value, e, available) from e

    def self_attach_files(self) -> tuple[str, ...]:
        return tuple(str(directory / "tasks") for directory in self._dirs())

    def add_process(self, pid: int) -> None:
        with kernel_errors(self.name, "add process to cgroup"):
            for directory in self._dirs():
                try:
                    write_text(directory / "cgroup.procs", str(pid))
                except ProcessLookupError as e:
                    raise NotFound(f"No such process: {pid}.") from e

    def pids(self) -> list[int]:
        with kernel_errors(self.name, "read cgroup.procs"):
            return read_pids(self._dirs()[0] / "cgroup.procs")

    def _freezer_state(self) -> Path:
        return self._dir("freezer") / "freezer.state"

    def freeze(self) -> None:
        state = self._freezer_state()

        def frozen() -> bool:
            # Writing again nudges tasks that were busy when the first write came.
            write_text(state, "FROZEN")
            return read_text(state) == "FROZEN"

        with kernel_errors(self.name, "freeze cgroup"):
            if not wait_for(frozen, FREEZE_TIMEOUT):
                write_text(state, "THAWED")
                raise KernelError("freeze cgroup", errno.ETIMEDOUT, f"{self.name} did not freeze")

    def thaw(self) -> None:
        with kernel_errors(self.name, "thaw cgroup"):
            write_text(self._freezer_state(), "THAWED")

    def is_frozen(self) -> bool:
        with kernel_errors(self.name, "read freezer.state"):
            return read_text(self._freezer_state()) == "FROZEN"

    def oom_kill_count(self) -> int:
        memory = self._dir("memory")
        if not memory.is_dir():
            raise NotFound(f"No such cgroup: {self.name}.")
        return read_keyed(memory / "memory.oom_control").get("oom_kill", 0)

    def stats(self) -> CgroupStats:
        with kernel_errors(self.name, "read cgroup stats"):
            if not self.exists():
                raise FileNotFoundError(errno.ENOENT, "no cgroup", self.name)
            return self._stats()

    def _stats(self) -> CgroupStats:
        cpuacct, memory = self._optional("cpuacct"), self._optional("memory")
        pids, blkio = self._optional("pids"), self._optional("blkio")
        percpu: list[int] = []
        user = system = 0
        if cpuacct:
            percpu = [int(n) for n in read_text(cpuacct / "cpuacct.usage_percpu").split()]
            user, system = _user_system_ns(cpuacct)
        read, written = _blkio_bytes(blkio) if blkio else (0, 0)
        mem_stat = read_keyed(memory / "memory.stat") if memory else {}
        return CgroupStats(
            cpu_total_ns=read_int(cpuacct / "cpuacct.usage") if cpuacct else 0,
            cpu_percpu_ns=percpu,
            cpu_user_ns=user,
            cpu_system_ns=system,
            memory_usage=read_int(memory / "memory.usage_in_bytes") if memory else 0,
            memory_limit=read_limit(memory / "memory.limit_in_bytes") if memory else None,
            memory_cache=mem_stat.get("total_inactive_file", 0),
            pids_current=read_int(pids / "pids.current") if pids else 0,
            pids_limit=read_limit(pids / "pids.max") if pids else None,
            blkio_read_bytes=read,
            blkio_write_bytes=written,
        )

    def kill_all(self, sig: int) -> None:
        # An empty cgroup has no process left to fork, so there is nothing to freeze (the
        # usual case after a container's init exited: freeze and thaw cost a few ms).
        if not self.pids():
            return
        # Freezing first means no process can fork a child we have not seen yet.
        freeze = sig == signal.SIGKILL and "freezer" in self._mounts and not self.is_frozen()
        if freeze:
            self.freeze()
        try:
            signal_all(self.pids(), sig)
        finally:
            if freeze:
                self.thaw()

    def destroy(self) -> None:
        freezer = self._optional("freezer")
        if freezer and freezer.is_dir() and self.is_frozen():
            self.thaw()  # frozen tasks cannot exit, so the cgroup would never empty
        remove_dirs(self.name, self._dirs(), DESTROY_TIMEOUT)
        remove_prefix_dirs(d.parent for d in self._dirs())


def _user_system_ns(cpuacct: Path) -> tuple[int, int]:
    if (cpuacct / "cpuacct.usage_user").exists():
        return read_int(cpuacct / "cpuacct.usage_user"), read_int(cpuacct / "cpuacct.usage_sys")
    # Older kernels only have cpuacct.stat, in clock ticks.
    ticks = read_keyed(cpuacct / "cpuacct.stat")
    per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return ticks.get("user", 0) * per_tick, ticks.get("system", 0) * per_tick


def _blkio_bytes(blkio: Path) -> tuple[int, int]:
    """Read and written bytes; the throttle file is the one kernels without CFQ keep."""
    for name in ("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"):
        try:
            lines = read_text(blkio / name).splitlines()
        except FileNotFoundError:
            continue
        totals = {"Read": 0, "Write": 0}
        for parts in (line.split() for line in lines):
            if len(parts) == 3 and parts[1] in totals:
                totals[parts[1]] += int(parts[2])
        return totals["Read"], totals["Write"]
    return 0, 0


def list_names(mount_points: dict[str, Path] | None = None) -> list[str]:
    names: set[str] = set()
    for point in set((mounts() if mount_points is None else mount_points).values()):
        base = point / paths.prefix()
        if base.is_dir():
            names.update(entry.name for entry in base.iterdir() if entry.is_dir())
    return sorted(names)
