"""Exec sessions the monitor runs for clients of its attach socket.

A browser terminal is served by a multithreaded web server, which must not fork into
namespaces itself (DESIGN.md). So a client asks the container's monitor, which is
single-threaded and root, with a control frame ``{"op": "exec", "argv": [...], "user",
"workdir", "env", "rows", "cols"}``: the monitor starts the process with a TTY through
``runtime.exec`` and relays the pty over that same connection with the attach framing
(stdin frames in, stdout frames out, ``resize`` controls, and a last control frame
``{"exit": code}``). The client leaving closes the master, which hangs up the session
like a closed terminal window (SIGHUP to its foreground processes).

An ``ExecSession`` is the monitor's handle on one such process: the pty master and a
pidfd for the exec helper, whose exit status is the process's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
from typing import Any

from runtime import exec as exec_module
from runtime.errors import InvalidSpec


class ExecSession:
    def __init__(self, cid: str, request: dict[str, Any]) -> None:
        argv = request.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise InvalidSpec("exec needs a command: a list of strings")
        env = request.get("env") or []
        process = exec_module.exec_process(
            cid,
            argv,
            use_tty=True,
            user=request.get("user") or None,
            workdir=request.get("workdir") or None,
            env=tuple(str(e) for e in env),
        )
        self.helper_pid = process.helper_pid
        self.master_fd = process.master_fd
        self.pidfd = os.pidfd_open(process.helper_pid)
        os.set_blocking(self.master_fd, False)
        if request.get("rows") and request.get("cols"):
            self.resize(int(request["rows"]), int(request["cols"]))

    def resize(self, rows: int, cols: int) -> None:
        if self.master_fd >= 0:
            fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        """Type ``data``; what the pty cannot take now is dropped, as a stuck terminal would."""
        if self.master_fd < 0:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.master_fd, view) :]
        except (BlockingIOError, OSError):
            pass

    def read(self) -> bytes | None:
        """Output ready now; b"" once the pty is closed for good, None when nothing is ready."""
        try:
            return os.read(self.master_fd, 65536)
        except BlockingIOError:
            return None
        except OSError as e:  # EIO: the last process holding the slave is gone
            if e.errno != errno.EIO:
                raise
            return b""

    def hang_up(self) -> None:
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1

    def reap(self) -> int:
        """The exit code, once the pidfd said the helper exited."""
        _, status = os.waitpid(self.helper_pid, 0)
        os.close(self.pidfd)
        self.pidfd = -1
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code
