"""Terminals: ptys inside a container's devpts, and the caller's raw-mode relay.

``open_in_container`` runs inside the container's mount namespace (init or an exec
helper): it opens ``/dev/ptmx`` of the container's own devpts instance, so ``tty`` in
the container prints ``/dev/pts/0``, and sends the master to the monitor or the CLI
over a unix socket (SCM_RIGHTS). ``raw_terminal`` puts the caller's terminal in raw
mode for ``run -it``/``attach``/``exec -it``. Owns no files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import termios
import tty as tty_module
from collections.abc import Iterator

TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def open_in_container(console_socket: int) -> int:
    """Open a pty pair in the current devpts; send the master away; return the slave."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    sock = socket.socket(fileno=console_socket)
    socket.send_fds(sock, [b"m"], [master])
    sock.close()
    os.close(master)
    return slave


def become_controlling(slave: int) -> None:
    """Make ``slave`` this session's controlling terminal and stdio 0, 1, 2."""
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def receive_master(sock: socket.socket) -> int:
    """The master fd sent by ``open_in_container``, or -1 if the sender died first."""
    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    return fds[0] if fds else -1


def window_size(fd: int) -> tuple[int, int]:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return 24, 80


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        # TCSANOW, not setraw's default TCSAFLUSH: keys typed before we got here are kept.
        tty_module.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class DetachDetector:
    """Watches typed bytes for ctrl-p ctrl-q; holds back a lone ctrl-p until it knows."""

    def __init__(self, keys: bytes = DETACH_KEYS) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[: self.matched]
                self.matched = 0
                if byte == self.keys[0]:
                    self.matched = 1
                    continue
            out.append(byte)
        return bytes(out), False
