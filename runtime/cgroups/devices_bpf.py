"""Device access control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program.

Drives: bpf(2) (BPF_PROG_LOAD, BPF_PROG_ATTACH with attach type BPF_CGROUP_DEVICE)
through ctypes. cgroup v2 has no devices.allow file; instead the kernel runs this program
on every open or mknod of a device node by a task in the cgroup, and denies access
unless it returns 1. Owns the one program attached to a container's cgroup directory: it
is attached without flags, so attaching again replaces it, and the kernel frees it with
the cgroup. Never pins programs in bpffs and never touches other cgroups' programs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from runtime.cgroups.base import WILDCARD, DeviceRule
from runtime.errors import KernelError, MissingFeature

_SYSCALL_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD, _BPF_PROG_ATTACH = 5, 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, where access_type
# is (access << 16) | type.
_DEVICE_TYPES = {"b": 1, "c": 2}
_ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
_ALL_ACCESS = 7

# Opcodes (linux/bpf.h, linux/bpf_common.h).
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_AND32_K = 0x54
_RSH32_K = 0x74
_MOV32_X = 0xBC
_MOV32_K = 0xB4
_JNE_K = 0x55  # if dst != imm: pc += off
_JNE_X = 0x5D  # if dst != src: pc += off
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: Sequence[DeviceRule]) -> bytes:
    """Instructions that return 1 for a device access some rule allows, else 0.

    r2 = type, r3 = requested access, r4 = major, r5 = minor; each rule is a block of
    checks that jump past the block's "return 1" on the first mismatch.
    """
    code = [
        _insn(_LDX_MEM_W, dst=2, src=1, off=0),
        _insn(_AND32_K, dst=2, imm=0xFFFF),
        _insn(_LDX_MEM_W, dst=3, src=1, off=0),
        _insn(_RSH32_K, dst=3, imm=16),
        _insn(_LDX_MEM_W, dst=4, src=1, off=4),
        _insn(_LDX_MEM_W, dst=5, src=1, off=8),
    ]
    for rule in rules:
        code += _rule_block(rule)
    code += [_insn(_MOV32_K, dst=0, imm=0), _insn(_EXIT)]
    return b"".join(code)


def _rule_block(rule: DeviceRule) -> list[bytes]:
    checks: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) of each step
    if rule.type != "a":
        checks.append((_JNE_K, 2, 0, _DEVICE_TYPES[rule.type]))
    allowed = sum(_ACCESS_BITS[c] for c in set(rule.access))
    if allowed != _ALL_ACCESS:
        # Allowed only if the requested bits are a subset: (access & allowed) == access.
        checks += [(_MOV32_X, 1, 3, 0), (_AND32_K, 1, 0, allowed), (_JNE_X, 1, 3, 0)]
    if rule.major != WILDCARD:
        checks.append((_JNE_K, 4, 0, rule.major))
    if rule.minor != WILDCARD:
        checks.append((_JNE_K, 5, 0, rule.minor))
    length = len(checks) + 2
    block = []
    for index, (code, dst, src, imm) in enumerate(checks):
        off = length - index - 1 if code in (_JNE_K, _JNE_X) else 0
        block.append(_insn(code, dst=dst, src=src, off=off, imm=imm))
    return block + [_insn(_MOV32_K, dst=0, imm=1), _insn(_EXIT)]


def attach(cgroup_dir: Path, rules: Sequence[DeviceRule]) -> None:
    """Allow only ``rules`` to the tasks of ``cgroup_dir``, replacing an earlier program."""
    prog_fd = _load(program(rules))
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        os.close(prog_fd)
        raise KernelError.from_oserror("open cgroup", e) from e
    try:
        _bpf(_BPF_PROG_ATTACH, struct.pack("<IIIII", dir_fd, prog_fd, _BPF_CGROUP_DEVICE, 0, 0))
    except OSError as e:
        raise KernelError.from_oserror("bpf(BPF_PROG_ATTACH)", e) from e
    finally:
        os.close(dir_fd)
        os.close(prog_fd)  # the cgroup holds its own reference now


def _load(code: bytes) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(1 << 16)

    def load(log_level: int) -> int:
        attr = struct.pack(
            "<IIQQIIQII16sII",
            _BPF_PROG_TYPE_CGROUP_DEVICE,
            len(code) // 8,
            ctypes.addressof(insns),
            ctypes.addressof(license),
            log_level,
            len(log) if log_level else 0,
            ctypes.addressof(log) if log_level else 0,
            0,  # kern_version
            0,  # prog_flags
            b"moorage_devices",
            0,  # prog_ifindex
            _BPF_CGROUP_DEVICE,  # expected_attach_type
        )
        return _bpf(_BPF_PROG_LOAD, attr)

    try:
        return load(0)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            raise MissingFeature("bpf(BPF_PROG_LOAD)", e.errno, "no bpf(2) in this kernel") from e
        try:  # load again, with the verifier's log, to say why
            os.close(load(1))
        except OSError:
            pass
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise KernelError("bpf(BPF_PROG_LOAD)", e.errno or 0, detail[0]) from e


def _bpf(cmd: int, attr: bytes) -> int:
    number = _SYSCALL_BPF.get(os.uname().machine)
    if number is None:
        raise MissingFeature("bpf", errno.ENOSYS, f"no syscall number for {os.uname().machine}")
    buffer = ctypes.create_string_buffer(attr, len(attr))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(
        ctypes.c_long(number), ctypes.c_long(cmd), buffer, ctypes.c_uint(len(attr))
    )
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)
