"""The attach protocol between a container's monitor and its clients.

The monitor listens on ``$MOORAGE_RUN/<id[:32]>.sock`` (a unix stream socket, mode 0600).
Everything on it is framed like Docker's multiplexed attach stream: an 8-byte header
``[kind, 0, 0, 0, length (big-endian u32)]`` then the payload. Kinds: 0 stdin,
1 stdout, 2 stderr, 3 control (a JSON object). A client's first frame is a control
request: ``{"op": "attach", "stdin": true, "stdout": true, "stderr": true}``,
``{"op": "wait"}``, ``{"op": "signal", "signal": 15}``, ``{"op": "resize", ...}``.
The monitor answers ``{"exit": N, "oom": bool}`` when the process ends. Detach keys are
the client's business: it just hangs up.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

from runtime import paths
from runtime.errors import InvalidState, KernelError

STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxI")


SOCKET_ID_LENGTH = 32  # 128 bits of the id: unique, and short enough for sun_path


def socket_path(cid: str) -> Path:
    """Unix socket paths are limited to 107 bytes, so the name carries half the id."""
    return paths.run_root() / f"{cid[:SOCKET_ID_LENGTH]}.sock"


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def control(message: dict[str, Any]) -> bytes:
    return frame(CONTROL, json.dumps(message).encode())


class FrameReader:
    """Incremental decoder: feed bytes, get (kind, payload) frames."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + length:
                break
            frames.append((kind, self._buffer[HEADER.size : HEADER.size + length]))
            self._buffer = self._buffer[HEADER.size + length :]
        return frames


def not_running(cid: str) -> InvalidState:
    """The refusal for a container whose monitor cannot be reached (or just hung up)."""
    return InvalidState(f"container {cid[:12]} is not running")


class Client:
    """A blocking connection to a monitor, used by the CLI."""

    def __init__(self, cid: str, request: dict[str, Any], timeout: float | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(socket_path(cid)))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self.sock.close()
            raise not_running(cid) from e
        except OSError as e:
            self.sock.close()
            raise KernelError.from_oserror("connect to container monitor", e) from e
        self.sock.sendall(control(request))
        self.reader = FrameReader()
        self._pending: list[tuple[int, bytes]] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: int, payload: bytes) -> None:
        self.sock.sendall(frame(kind, payload))

    def send_control(self, message: dict[str, Any]) -> None:
        self.sock.sendall(control(message))

    def recv(self) -> tuple[int, bytes] | None:
        """Next frame, or None when the monitor hung up."""
        while not self._pending:
            frames = self.recv_some()
            if frames is None:
                return None
            self._pending.extend(frames)
        return self._pending.pop(0)

    def recv_some(self) -> list[tuple[int, bytes]] | None:
        """Every frame one read of the socket completes (maybe none); None on hang-up.

        For select loops: the socket is readable once per chunk, and a chunk may hold
        several frames, so a loop must take them all rather than one per wake-up.
        """
        if self._pending:
            frames, self._pending = self._pending, []
            return frames
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""  # the monitor exited with our request unread: it hung up
        if not data:
            return None
        return self.reader.feed(data)

    def wait_exit(self) -> dict[str, Any]:
        """Read until the control frame that reports the exit."""
        while True:
            item = self.recv()
            if item is None:
                return {}
            kind, payload = item
            if kind == CONTROL:
                message = json.loads(payload)
                if "exit" in message or "error" in message or "ok" in message:
                    return dict(message)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(cid: str, message: dict[str, Any], timeout: float | None = 10.0) -> dict[str, Any]:
    """One request, one answer."""
    with Client(cid, message, timeout) as client:
        return client.wait_exit()


def remove_socket(cid: str) -> None:
    try:
        os.unlink(socket_path(cid))
    except FileNotFoundError:
        pass
