"""Linux capabilities (capabilities(7)) for container processes.

Knows the names and numbers of capabilities, Docker's default set, and how to turn
``--cap-add``/``--cap-drop``/``--privileged`` into the masks that ``apply`` installs
with prctl(PR_CAPBSET_DROP) and capset(2). Owns nothing on disk.
"""

from __future__ import annotations

import functools

from runtime import syscalls
from runtime.errors import InvalidSpec, KernelError

NAMES: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
NUMBER = {name: number for number, name in enumerate(NAMES)}

# Docker's default set (moby oci/caps/defaults.go).
DEFAULT: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)


@functools.cache  # the kernel's constant; effective_set asks once per capability name
def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def _held() -> int:
    """This process's permitted capabilities, as /proc/self/status shows them."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapPrm:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return (1 << (_last_cap() + 1)) - 1


def normalise(name: str) -> str:
    """'net_admin', 'CAP_NET_ADMIN' and 'NET_ADMIN' all mean NET_ADMIN; 'ALL' stays."""
    upper = name.strip().upper()
    if upper.startswith("CAP_"):
        upper = upper[4:]
    if upper != "ALL" and upper not in NUMBER:
        raise InvalidSpec(f"invalid capability: {name}")
    return upper


def effective_set(
    cap_add: tuple[str, ...], cap_drop: tuple[str, ...], privileged: bool
) -> tuple[str, ...]:
    """The capability names a container gets, as Docker computes them."""
    last = _last_cap()
    every = tuple(n for n in NAMES if NUMBER[n] <= last)
    if privileged:
        # All we hold, not all the kernel knows: capset(2) refuses a permitted set
        # larger than the engine's own (a host that runs us with a trimmed set).
        held = _held()
        return tuple(n for n in every if held & (1 << NUMBER[n]))
    adds = {normalise(c) for c in cap_add}
    drops = {normalise(c) for c in cap_drop}
    base = set(DEFAULT)
    if "ALL" in drops:
        base = set()
    base -= drops
    if "ALL" in adds:
        base = set(every) - (drops - {"ALL"})
    else:
        base |= adds
    return tuple(n for n in NAMES if n in base)


def mask(names: tuple[str, ...]) -> int:
    result = 0
    for name in names:
        result |= 1 << NUMBER[name]
    return result


def drop_bounding(names: tuple[str, ...]) -> None:
    """Shrink the bounding set to ``names``; needs CAP_SETPCAP, so call it before setuid."""
    allowed = mask(names)
    for number in range(_last_cap() + 1):
        if not allowed & (1 << number):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number)
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    except KernelError:  # ambient capabilities are absent before Linux 4.3
        pass


def set_process_sets(names: tuple[str, ...], keep: bool) -> None:
    """Root keeps ``names`` as effective and permitted capabilities; any other user gets
    empty sets (as runc does for non-root users) under the same bounding set, so a
    setuid-root binary cannot regain more than the container was given."""
    allowed = mask(names) if keep else 0
    syscalls.capset(allowed, allowed, 0)  # Docker leaves the inheritable set empty
