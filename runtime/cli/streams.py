"""Relaying a container's streams to the caller's terminal or pipes.

Used by ``run`` (foreground), ``attach`` and ``exec``: copies the caller's stdin to the
container (watching for the ctrl-p ctrl-q detach keys on a TTY), writes the container's
stdout and stderr to ours, forwards window size changes, and returns the exit code the
monitor reports. Owns nothing; the protocol is ``runtime.attach``.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys

from runtime import attach, tty


class Detached(Exception):
    """The user pressed the detach keys."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay_attach(
    client: attach.Client, use_tty: bool, send_stdin: bool, stdin_once: bool = True
) -> int | None:
    """Pump until the container exits (its code) or the user detaches (Detached)."""
    selector = selectors.DefaultSelector()
    selector.register(client.sock, selectors.EVENT_READ, "socket")
    stdin_fd = sys.stdin.fileno() if send_stdin else -1
    if stdin_fd >= 0:
        try:
            selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
        except PermissionError:
            # epoll(7) refuses regular files and /dev/null (`run -i ... < file`); reading
            # them never blocks, so send it all now.
            while data := os.read(stdin_fd, 65536):
                client.send(attach.STDIN, data)
            if stdin_once and not use_tty:
                client.send_control({"op": "close_stdin"})
            stdin_fd = -1
    detector = tty.DetachDetector()
    resize_r = -1
    previous_handler = None
    if use_tty and os.isatty(1):
        resize_r, resize_w = os.pipe()
        os.set_blocking(resize_w, False)
        previous_handler = signal.signal(signal.SIGWINCH, lambda *_: _poke(resize_w))
        selector.register(resize_r, selectors.EVENT_READ, "resize")
        rows, cols = tty.window_size(1)
        client.send_control({"op": "resize", "rows": rows, "cols": cols})
    try:
        with tty.raw_terminal(stdin_fd if use_tty and stdin_fd >= 0 else -1):
            while True:
                for key, _ in selector.select():
                    if key.data == "stdin":
                        data = os.read(stdin_fd, 65536)
                        if not data:
                            selector.unregister(stdin_fd)
                            if stdin_once and not use_tty:
                                client.send_control({"op": "close_stdin"})
                            continue
                        if use_tty:
                            data, detach = detector.feed(data)
                            if data:
                                client.send(attach.STDIN, data)
                            if detach:
                                raise Detached()
                        else:
                            client.send(attach.STDIN, data)
                    elif key.data == "resize":
                        os.read(resize_r, 64)
                        rows, cols = tty.window_size(1)
                        client.send_control({"op": "resize", "rows": rows, "cols": cols})
                    else:
                        frames = client.recv_some()
                        if frames is None:
                            return None
                        for kind, payload in frames:
                            if kind == attach.STDOUT:
                                _write_all(1, payload)
                            elif kind == attach.STDERR:
                                _write_all(2, payload)
                            elif kind == attach.CONTROL:
                                message = json.loads(payload)
                                if "exit" in message:
                                    return int(message["exit"])
    finally:
        selector.close()
        if previous_handler is not None:
            signal.signal(signal.SIGWINCH, previous_handler)
        if resize_r >= 0:
            os.close(resize_r)


def _poke(fd: int) -> None:
    try:
        os.write(fd, b"x")
    except OSError:
        pass


def relay_pty(master: int, send_stdin: bool) -> None:
    """For ``exec -t``: copy between our terminal and the exec's pty master until EOF."""
    selector = selectors.DefaultSelector()
    selector.register(master, selectors.EVENT_READ, "master")
    stdin_fd = sys.stdin.fileno() if send_stdin else -1
    if stdin_fd >= 0:
        selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
    if os.isatty(1):
        rows, cols = tty.window_size(1)
        tty.set_window_size(master, rows, cols)
        signal.signal(signal.SIGWINCH, lambda *_: tty.set_window_size(master, *tty.window_size(1)))
    try:
        with tty.raw_terminal(stdin_fd):
            while True:
                for key, _ in selector.select():
                    if key.data == "stdin":
                        data = os.read(stdin_fd, 65536)
                        if not data:
                            selector.unregister(stdin_fd)
                            continue
                        _write_all(master, data)
                    else:
                        try:
                            data = os.read(master, 65536)
                        except OSError:
                            data = b""
                        if not data:
                            return
                        _write_all(1, data)
    finally:
        selector.close()
