"""Raw Linux syscalls that Python 3.11's ``os`` module lacks, through ctypes.

Drives unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), prctl(2), capset(2)
and timerfd_create(2). Every failure is raised as ``KernelError`` with the errno and the
operation, so callers never see a bare OSError from here. This module owns nothing on
disk and never decides policy: it is the one place where the engine talks to libc
directly.
"""

from __future__ import annotations

import ctypes
import os

from runtime.errors import KernelError

# Named directly: find_library would run ldconfig as a child process on every start.
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

# Namespace flags, from <linux/sched.h>.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Mount flags, from <linux/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# os.uname() is what platform.machine() reads, without importing platform at startup.
_MACHINE = os.uname().machine
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(_MACHINE, 155)
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(_MACHINE, 126)

_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


def _check(result: int, operation: str, detail: str = "") -> None:
    if result != 0:
        raise KernelError(operation, ctypes.get_errno(), detail)


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
        "mount",
        f"{fstype or source} on {target}",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root", new_root)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if result < 0:
        raise KernelError(f"prctl({option})", ctypes.get_errno())
    return int(result)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), data), "capset")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1


def timerfd_create() -> int:
    """A non-blocking, close-on-exec monotonic timerfd (timerfd_create(2)): a timer a
    selector loop can wait on, for deadlines in single-threaded servers."""
    fd = int(_libc.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        raise KernelError("timerfd_create", ctypes.get_errno())
    return fd


def timerfd_settime(fd: int, seconds: float) -> None:
    """Arm ``fd`` to fire once after ``seconds`` (relative); 0 disarms it."""
    whole = int(seconds)
    nanos = int((seconds - whole) * 1e9)
    if seconds > 0 and whole == 0 and nanos == 0:
        nanos = 1  # an all-zero value would disarm instead of firing now
    value = _Itimerspec(_Timespec(0, 0), _Timespec(whole, nanos))
    _check(_libc.timerfd_settime(fd, 0, ctypes.byref(value), None), "timerfd_settime")
