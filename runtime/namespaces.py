"""Namespaces for a container's init: which to create, which to join (namespaces(7)).

``enter_for_init`` runs in the freshly forked container init, before anything else:
it creates private mount, UTS, IPC and network namespaces or joins another container's
(``container:NAME`` modes), as the spec's modes say. The PID namespace is made by the
monitor with ``unshare(CLONE_NEWPID)`` before it forks, because that flag only affects
children. ``join_all`` is what ``exec`` uses to enter a running container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime import syscalls
from runtime.errors import KernelError

NS_FLAGS = {
    "mnt": syscalls.CLONE_NEWNS,
    "uts": syscalls.CLONE_NEWUTS,
    "ipc": syscalls.CLONE_NEWIPC,
    "net": syscalls.CLONE_NEWNET,
    "pid": syscalls.CLONE_NEWPID,
    "cgroup": syscalls.CLONE_NEWCGROUP,
}


@dataclass(frozen=True)
class Modes:
    """Resolved namespace modes: 'private', 'host', or a host pid whose namespace to join."""

    net: str | int = "private"
    ipc: str | int = "private"
    pid: str | int = "private"
    uts: str | int = "private"


def enter_for_init(modes: Modes) -> None:
    flags = syscalls.CLONE_NEWNS
    joins: list[tuple[str, int]] = []
    for kind in ("uts", "ipc", "net"):
        mode = getattr(modes, kind)
        if mode == "private":
            flags |= NS_FLAGS[kind]
        elif isinstance(mode, int):
            joins.append((kind, mode))
    for kind, pid in joins:
        join(pid, kind)
    syscalls.unshare(flags)


def join(pid: int, kind: str) -> None:
    path = f"/proc/{pid}/ns/{kind}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError.from_oserror(f"open {kind} namespace", e) from e
    try:
        syscalls.setns(fd, NS_FLAGS[kind])
    finally:
        os.close(fd)


def same(pid: int, kind: str) -> bool:
    """Whether ``pid`` shares our ``kind`` namespace (so joining it is a no-op)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}") == os.readlink(f"/proc/self/ns/{kind}")
    except OSError:
        return False


def join_all(pid: int) -> None:
    """Enter every namespace of ``pid`` that differs from ours (for exec)."""
    fds: list[tuple[int, str]] = []
    try:
        # Open all first: after entering the mount namespace, /proc is the container's.
        for kind in ("cgroup", "ipc", "uts", "net", "pid", "mnt"):
            if not same(pid, kind):
                fds.append((os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), kind))
        for fd, kind in fds:
            syscalls.setns(fd, NS_FLAGS[kind])
    except OSError as e:
        raise KernelError.from_oserror("enter container namespaces", e) from e
    finally:
        for fd, _ in fds:
            os.close(fd)


def reset_pid_namespace_for_children() -> None:
    """Undo an earlier unshare(CLONE_NEWPID) so the next one may succeed (restarts)."""
    join(os.getpid(), "pid")
