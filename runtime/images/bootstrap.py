"""A busybox root filesystem built from the host's static busybox (Debian busybox-static).

Kernel interface: none beyond reading ``/bin/busybox`` (its ELF program headers, to be
sure it needs no dynamic loader) and running it once for ``--list``.

Owns nothing on disk: ``write_rootfs`` writes a tar stream that ``runtime.images`` stores
as a layer. The stream is deterministic (sorted entries, uid/gid 0, every mtime set to
the busybox file's), so the same host binary always gives the same diff id and image id.
It never downloads anything and never uses a dynamically linked busybox.
"""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime.errors import KernelError, NotFound

HOST_BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INSTALL = "install Debian's busybox-static (apt-get install busybox-static)"
_PT_INTERP = 3
_DIRS = {  # path -> mode
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
}
_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    ),
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
}


@dataclass(frozen=True)
class HostBusybox:
    path: Path
    version: str  # '1.35.0'
    applets: tuple[str, ...]  # sorted, without 'busybox' itself
    mtime: int  # seconds; the image's 'created' and every entry's mtime


def needs_loader(path: Path) -> bool:
    """True if the ELF file at ``path`` has a PT_INTERP header, i.e. needs ld.so."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            raise NotFound(f"{path} is not an ELF executable; {_INSTALL}")
        order = "<" if ident[5] == 1 else ">"
        if ident[4] == 2:  # ELFCLASS64
            (phoff,) = struct.unpack_from(order + "Q", ident, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", ident, 54)
        else:
            (phoff,) = struct.unpack_from(order + "I", ident, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", ident, 42)
        for index in range(phnum):
            f.seek(phoff + index * phentsize)
            (p_type,) = struct.unpack(order + "I", f.read(4))
            if p_type == _PT_INTERP:
                return True
    return False


def find(path: Path = HOST_BUSYBOX) -> HostBusybox:
    """The host's static busybox, or NotFound saying how to get one."""
    try:
        if needs_loader(path):
            raise NotFound(
                f"{path} is dynamically linked and cannot run in an empty image; {_INSTALL}"
            )
        mtime = int(os.stat(path).st_mtime)
        listing = subprocess.run([str(path), "--list"], capture_output=True, check=True).stdout
        banner = subprocess.run([str(path)], capture_output=True).stdout
    except FileNotFoundError:
        raise NotFound(f"{path} is missing; {_INSTALL}") from None
    except subprocess.CalledProcessError as e:
        raise NotFound(f"{path} --list failed (exit status {e.returncode}); {_INSTALL}") from e
    except OSError as e:
        raise KernelError.from_oserror(f"inspect {path}", e) from e
    version = re.search(rb"BusyBox v(\S+)", banner)
    applets = {a for a in listing.decode().split() if re.fullmatch(r"[\w\[\].-]+", a)}
    applets -= {"busybox", ".", ".."}
    return HostBusybox(
        path, version.group(1).decode() if version else "unknown", tuple(sorted(applets)), mtime
    )


def write_rootfs(out: BinaryIO, busybox: HostBusybox) -> None:
    """Write the image's single layer as an uncompressed tar to ``out``."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def add(name: str, kind: bytes, mode: int, data: bytes | None = None, link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.linkname = kind, mode, busybox.mtime, link
        info.size = len(data) if data is not None else 0
        entries.append((info, data))

    for name, mode in _DIRS.items():
        add(name, tarfile.DIRTYPE, mode)
    for name, text in _FILES.items():
        add(name, tarfile.REGTYPE, 0o644, text.encode())
    add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.path.read_bytes())
    for applet in busybox.applets:
        add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
    entries.sort(key=lambda entry: entry[0].name.split("/"))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
