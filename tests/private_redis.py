"""A private redis-server on loopback, for the web tests and the dashboard benches: no
persistence, not daemonized (the caller ends it by pid), its files in the caller's
directory."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path


def start(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],  # fmt: skip
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def answers(port: int) -> bool:
    """True once the server on ``port`` answers PING."""
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
