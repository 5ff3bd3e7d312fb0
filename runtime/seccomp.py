"""The default seccomp filter: the syscalls Docker's default profile keeps from containers.

Kernel interface: seccomp(2) filters in SECCOMP_MODE_FILTER, built and loaded through
Debian's libseccomp (``libseccomp.so.2``, by ctypes), which knows every architecture's
syscall numbers and writes the BPF program, including the x32 and i386 ABIs a process
could otherwise use to dodge a filter written for x86_64 only.

The filter is a deny list with an ``EPERM`` answer, the effect of Docker's allow-list
profile for what a container may not do with its default capabilities: load kernel
modules, reboot, set the clock, use keyrings, open files by handle, make namespaces
(``unshare``, ``setns``, and ``clone`` with namespace flags, so ``unshare -U`` cannot
reach root-in-a-user-namespace), ``mount``, ``bpf``, ``perf_event_open``,
``userfaultfd`` and the like. As in Docker, a capability given with ``--cap-add`` lets
its syscalls through (SYS_ADMIN: mount, unshare, setns ...; SYS_TIME: the clock ...),
``--privileged`` and ``--security-opt seccomp=unconfined`` load no filter, and
``clone3`` answers ``ENOSYS`` so that C libraries fall back to ``clone``, whose flags a
filter can see.

The library must be loaded (``preload``) before the caller leaves the host's mount
namespace: ``install`` runs after pivot_root, where the container's files are all there is.
Owns nothing on disk.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass

from runtime.errors import InvalidSpec, KernelError, MissingFeature

SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
_SCMP_CMP_MASKED_EQ = 7

# Namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET, NEWTIME.
CLONE_NAMESPACE_FLAGS = (
    0x00020000
    | 0x02000000
    | 0x04000000
    | 0x08000000
    | 0x10000000
    | 0x20000000
    | 0x40000000
    | 0x00000080
)

ALWAYS_BLOCKED: tuple[str, ...] = (
    "add_key",
    "keyctl",
    "request_key",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "vm86",
    "vm86old",
    "kexec_file_load",
    "kexec_load",
    "lookup_dcookie",
    "userfaultfd",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
)

# What each capability lets through, after Docker's profile (moby profiles/seccomp): the
# syscalls on the right are blocked unless the process holds one of the capabilities on
# the left (BPF and PERFMON are 5.8's finer-grained halves of SYS_ADMIN).
BLOCKED_UNLESS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("SYS_ADMIN",): (
        "mount",
        "umount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "name_to_handle_at",
        "quotactl",
        "quotactl_fd",
        "fanotify_init",
    ),
    ("SYS_ADMIN", "BPF"): ("bpf",),
    ("SYS_ADMIN", "PERFMON"): ("perf_event_open",),
    ("DAC_READ_SEARCH",): ("open_by_handle_at",),
    ("SYS_MODULE",): ("init_module", "finit_module", "delete_module"),
    ("SYS_BOOT",): ("reboot",),
    ("SYS_TIME",): (
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_settime64",
        "clock_adjtime",
        "clock_adjtime64",
        "adjtimex",
    ),
    ("SYS_PACCT",): ("acct",),
    ("SYS_RAWIO",): ("iopl", "ioperm"),
    ("SYS_NICE",): ("get_mempolicy", "set_mempolicy", "mbind", "move_pages"),
    ("SYS_PTRACE",): (
        "kcmp",
        "process_vm_readv",
        "process_vm_writev",
        "process_madvise",
        "pidfd_getfd",
    ),
    ("SYSLOG",): ("syslog",),
    ("SYS_TTY_CONFIG",): ("vhangup",),
}


@dataclass(frozen=True)
class Profile:
    """What one process's filter blocks."""

    blocked: tuple[str, ...]
    block_clone_namespaces: bool


def default_profile(capabilities: tuple[str, ...]) -> Profile:
    """Docker's default profile for a process holding ``capabilities``."""
    held = set(capabilities)
    blocked = list(ALWAYS_BLOCKED)
    for allowing, syscalls in BLOCKED_UNLESS.items():
        if held.isdisjoint(allowing):
            blocked.extend(s for s in syscalls if s not in blocked)
    return Profile(tuple(blocked), block_clone_namespaces="SYS_ADMIN" not in held)


def parse_security_options(options: tuple[str, ...]) -> bool:
    """``--security-opt`` values; returns whether the default seccomp filter applies."""
    confined = True
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            key, sep, value = option.partition(":")
        if key == "seccomp" and value == "unconfined":
            confined = False
        elif key == "seccomp":
            raise InvalidSpec(f"seccomp profile files are not supported: {value}")
        elif key == "no-new-privileges" and value in ("", "true", "false"):
            continue
        elif key in ("apparmor", "label") and value in ("unconfined", "disable"):
            continue  # this engine loads no LSM profile, so these ask for what is
        else:
            raise InvalidSpec(f"Invalid --security-opt: {option!r}")
    return confined


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_lib: ctypes.CDLL | None = None


def preload() -> None:
    """Load libseccomp now, while the host's libraries are still in reach."""
    global _lib
    if _lib is not None:
        return
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise MissingFeature(
            "load libseccomp.so.2",
            errno.ENOENT,
            "seccomp filters need Debian's libseccomp2; use --security-opt "
            "seccomp=unconfined to run without",
        ) from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    _lib = lib


def install(profile: Profile) -> None:
    """Load ``profile``'s filter into this process (after no_new_privs is set)."""
    preload()
    lib = _lib
    assert lib is not None
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise KernelError("seccomp_init", errno.ENOMEM, "")
    try:
        # Filter the compat ABIs too, or a 32-bit syscall would walk past the filter.
        for arch in (b"x86", b"x32"):
            token = lib.seccomp_arch_resolve_name(arch)
            if token:
                lib.seccomp_arch_add(ctx, token)  # -EEXIST or -EINVAL: not this host's
        deny = _SCMP_ACT_ERRNO | errno.EPERM
        for name in profile.blocked:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # negative: no such syscall on this architecture
                _add(lib, ctx, deny, number, name)
        if profile.block_clone_namespaces:
            masked = (_ArgCmp * 1)(_ArgCmp(0, _SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0))
            for flag in _single_bits(CLONE_NAMESPACE_FLAGS):
                masked[0].datum_a, masked[0].datum_b = flag, flag
                _add(lib, ctx, deny, lib.seccomp_syscall_resolve_name(b"clone"), "clone", masked)
        clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
        if clone3 >= 0:
            _add(lib, ctx, _SCMP_ACT_ERRNO | errno.ENOSYS, clone3, "clone3")
        result = lib.seccomp_load(ctx)
        if result < 0:
            raise KernelError("seccomp_load", -result, "loading the seccomp filter")
    finally:
        lib.seccomp_release(ctx)


def _single_bits(mask: int) -> list[int]:
    return [1 << bit for bit in range(64) if mask & (1 << bit)]


def _add(
    lib: ctypes.CDLL,
    ctx: int,
    action: int,
    number: int,
    name: str,
    args: ctypes.Array[_ArgCmp] | None = None,
) -> None:
    result = lib.seccomp_rule_add_array(ctx, action, number, len(args) if args else 0, args)
    if result < 0:
        raise KernelError("seccomp_rule_add", -result, f"seccomp rule for {name}")
