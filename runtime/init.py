"""The container's first process, from fork to execve.

The monitor forks this after ``unshare(CLONE_NEWPID)``, so it is PID 1 of the new PID
namespace. It creates (or joins) the other namespaces, joins its cgroup and tells the
monitor it is ready (so the monitor can wire its network); then it builds the root
filesystem, pivots into it, hardens it, sets up its stdio or TTY and drops privileges,
while the monitor works; once the monitor says go, it execs the command. (If it could
not join its cgroup, the monitor moves it there, and all of that waits for the go.) It
never returns: on failure it writes ``<exit code> <message>`` to the error pipe and
exits with that code.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import traceback
from dataclasses import dataclass

from runtime import namespaces, process, rootfs, syscalls, tty
from runtime.errors import ExecFailed, MoorageError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


@dataclass(frozen=True)
class InitPlan:
    rootfs: rootfs.RootfsPlan
    modes: namespaces.Modes
    hostname: str
    domainname: str
    process: process.ProcessSpec
    tty: bool
    private_network: bool  # a new netns whose loopback we bring up
    cgroup_tasks: tuple[str, ...] = ()  # to write "0" to, to join the container's cgroup


@dataclass(frozen=True)
class InitPipes:
    ready_w: int  # init → monitor: namespaces exist, "r" in the cgroup already, "R" not
    go_r: int  # monitor → init: cgroups and network are in place
    error_w: int  # init → monitor: exec failure, closed on successful exec (CLOEXEC)
    console: int  # socket to send the pty master over, or -1
    stdin: int  # fds to become 0, 1, 2 when there is no TTY (-1: /dev/null)
    stdout: int
    stderr: int


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _join_cgroup(tasks_files: tuple[str, ...]) -> bool:
    """Move this (single-threaded) process into the container's cgroup; False leaves it
    to the monitor's ``add_process`` (no files given, or the kernel refused)."""
    if not tasks_files:
        return False
    try:
        for path in tasks_files:
            with open(path, "w") as f:
                f.write("0")
    except OSError:
        return False
    return True


def _prepare(plan: InitPlan, pipes: InitPipes) -> None:
    """Everything between joining the cgroup and dropping privileges."""
    syscalls.unshare(syscalls.CLONE_NEWCGROUP)
    rootfs.mount_rootfs(plan.rootfs)
    rootfs.pivot(plan.rootfs.merged)
    # Before harden: the domain name is written through /proc/sys, which it makes
    # read-only.
    if plan.modes.uts == "private":
        socket.sethostname(plan.hostname)
        if plan.domainname:
            with open("/proc/sys/kernel/domainname", "w") as f:
                f.write(plan.domainname)
    rootfs.harden(plan.rootfs)
    if plan.private_network:
        _loopback_up()
    _stdio(plan, pipes)


def _wait_for_go(pipes: InitPipes) -> None:
    os.close(pipes.ready_w)
    if os.read(pipes.go_r, 1) != b"g":
        os._exit(1)  # the monitor gave up on us
    os.close(pipes.go_r)


def _stdio(plan: InitPlan, pipes: InitPipes) -> None:
    if plan.tty:
        tty.become_controlling(tty.open_in_container(pipes.console))
        return
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(pipes.stdin if pipes.stdin >= 0 else null, 0)
    os.dup2(pipes.stdout if pipes.stdout >= 0 else null, 1)
    os.dup2(pipes.stderr if pipes.stderr >= 0 else null, 2)
    for fd in {null, pipes.stdin, pipes.stdout, pipes.stderr} - {-1, 0, 1, 2}:
        os.close(fd)


def run(plan: InitPlan, pipes: InitPipes) -> None:
    code = 126
    try:
        os.setsid()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        namespaces.enter_for_init(plan.modes)
        if _join_cgroup(plan.cgroup_tasks):
            # In the cgroup already: all but the exec happens while the monitor wires
            # the network (on two cores, a bridged start is ~10 ms shorter). The
            # monitor is root: it reaches this process's network namespace even once
            # the user and capabilities here have changed.
            os.write(pipes.ready_w, b"r")
            _prepare(plan, pipes)
            env = process.become(plan.process)
            _wait_for_go(pipes)
        else:
            # The monitor moves us into the cgroup: only then may the cgroup namespace
            # (and with it everything after) be made.
            os.write(pipes.ready_w, b"R")
            _wait_for_go(pipes)
            _prepare(plan, pipes)
            env = process.become(plan.process)
        process.execute(plan.process, env)
    except ExecFailed as e:
        code = e.exit_code
        message = str(e)
    except MoorageError as e:
        message = str(e)
    except OSError as e:
        message = f"{e.strerror or e}{': ' + str(e.filename) if e.filename else ''}"
    except BaseException:  # noqa: BLE001 - the monitor must hear about any failure
        message = traceback.format_exc(limit=3).strip().splitlines()[-1]
    try:
        os.write(pipes.error_w, f"{code} {message}".encode())
    finally:
        os._exit(code)
