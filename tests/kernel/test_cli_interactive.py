"""Terminals through the real ``moorage`` CLI: ``run -it``, detach, ``attach``, ``exec -it``.

Scenario S04 and the terminal parts of S22. Each test gives the CLI a real terminal: a
pty pair from Python's ``pty`` module, the slave as the CLI's stdin, stdout, stderr and
controlling terminal (``setsid -c``), so raw mode, ctrl-c and the window size behave
as they do for a user at a shell. The test types into the master and reads the screen
from it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest

CLI = [sys.executable, "-m", "runtime.cli"]
PROMPT = re.compile(rb"/ # ")


class Terminal:
    """One CLI process on its own pty."""

    def __init__(self, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.master, slave = pty.openpty()
        # Sized before the CLI starts: it reads the size once and passes it on.
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.slave_name = os.ttyname(slave)
        self.proc = subprocess.Popen(
            ["setsid", "-c", *CLI, *args], stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.screen = b""  # everything read so far, for failure messages
        self.unread = b""  # what ``expect`` has not matched yet

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the CLI closed the terminal
            data = b""
        self.screen += data
        self.unread += data
        return bool(data)

    def expect(
        self, pattern: str | bytes | re.Pattern[bytes], timeout: float = 15
    ) -> re.Match[bytes]:
        regex = (
            pattern
            if isinstance(pattern, re.Pattern)
            else re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        )
        deadline = time.monotonic() + timeout
        while not (match := regex.search(self.unread)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{regex.pattern!r} never showed; screen: {self.screen!r}")
        self.unread = self.unread[match.end() :]
        return match

    def send(self, text: str | bytes) -> None:
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def wait_until_raw(self, timeout: float = 15) -> None:
        """Wait for the CLI to put the terminal in raw mode.

        ``attach`` prints nothing until the user types, so this is how a test knows
        the CLI is relaying.
        """
        fd = os.open(self.slave_name, os.O_RDWR | os.O_NOCTTY)
        try:
            deadline = time.monotonic() + timeout
            while termios.tcgetattr(fd)[3] & termios.ICANON:
                assert self.proc.poll() is None, f"the CLI exited; screen: {self.screen!r}"
                assert time.monotonic() < deadline, "the CLI never set raw mode"
                self._read(0.05)
        finally:
            os.close(fd)

    def exit_code(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"the CLI did not exit; screen: {self.screen!r}"
            self._read(0.1)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal(moorage) -> Iterator:
    """``terminal(*args, rows=, cols=)`` starts the CLI on a pty; all are closed after."""
    opened: list[Terminal] = []

    def start(*args: str, rows: int = 24, cols: int = 80) -> Terminal:
        opened.append(Terminal(*args, rows=rows, cols=cols))
        return opened[-1]

    yield start
    for term in opened:
        term.close()


def status(moorage, name: str) -> str:
    return moorage.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").strip()


def test_run_it_gives_a_shell_on_its_own_pts_with_the_short_id_as_hostname(moorage, terminal):
    term = terminal("run", "-it", "--name", "tty1", "busybox", "sh")
    term.expect(PROMPT)
    cid = moorage.ok("inspect", "-f", "{{.Id}}", "tty1").strip()
    term.send("tty; hostname; ps\r")
    assert term.expect(rb"\n(/dev/pts/\d+)\r\n").group(1) == b"/dev/pts/0"
    assert term.expect(rb"([0-9a-f]{12})\r\n").group(1).decode() == cid[:12]
    assert term.expect(rb"\n\s*(\d+) root\s+sh\r\n").group(1) == b"1"
    term.send("exit\r")
    assert term.exit_code() == 0
    assert status(moorage, "tty1").startswith("Exited (0)")


def test_exit_status_of_the_shell_is_the_run_exit_code(moorage, terminal):
    term = terminal("run", "-it", "--name", "tty3", "busybox", "sh")
    term.expect(PROMPT)
    term.send("exit 3\r")
    assert term.exit_code() == 3
    assert status(moorage, "tty3").startswith("Exited (3)")


def test_ctrl_p_ctrl_q_detaches_and_attach_then_exit_stops_it(moorage, terminal):
    term = terminal("run", "-it", "--name", "tty1", "busybox", "sh")
    term.expect(PROMPT)
    term.send(b"\x10\x11")
    assert term.exit_code() == 0
    assert status(moorage, "tty1").startswith("Up ")

    again = terminal("attach", "tty1")
    again.wait_until_raw()
    again.send("echo back-$((40+2))\r")
    again.expect("back-42")
    assert status(moorage, "tty1").startswith("Up ")
    again.send("exit\r")
    assert again.exit_code() == 0
    assert status(moorage, "tty1").startswith("Exited (0)")


def test_exec_it_shell_exit_3_leaves_the_container_up(moorage, terminal):
    moorage.ok("run", "-d", "--name", "busy", "busybox", "sleep", "1000")
    term = terminal("exec", "-it", "busy", "sh")
    term.expect(PROMPT)
    term.send("ps\r")
    term.expect(r"1 root\s+sleep 1000")
    term.send("exit 3\r")
    assert term.exit_code() == 3
    assert status(moorage, "busy").startswith("Up ")


def test_the_window_size_of_the_callers_terminal_reaches_the_container(moorage, terminal):
    term = terminal("run", "-it", "--rm", "busybox", "sh", rows=40, cols=100)
    term.expect(PROMPT)
    term.send("stty size\r")
    assert term.expect(rb"\n(\d+ \d+)\r\n").group(1) == b"40 100"
    term.send("exit\r")
    assert term.exit_code() == 0


def test_piped_stdin_without_a_tty_reaches_the_shell(moorage):
    assert moorage.ok("run", "-i", "--rm", "busybox", "sh", input="echo piped-in\n") == "piped-in\n"


def test_ctrl_c_interrupts_the_foreground_command_not_the_shell(moorage, terminal):
    term = terminal("run", "-it", "--name", "tty4", "busybox", "sh")
    term.expect(PROMPT)
    term.send("sleep 100\r")
    term.expect("sleep 100\r\n")
    time.sleep(0.5)  # let the shell fork and exec sleep
    started = time.monotonic()
    term.send(b"\x03")
    term.send("echo after-$((1+1))\r")
    term.expect("after-2")
    assert time.monotonic() - started < 10
    assert status(moorage, "tty4").startswith("Up ")
    term.send("exit\r")
    assert term.exit_code() == 0


def test_keys_typed_before_the_shell_is_up_are_not_lost(moorage, terminal):
    term = terminal("run", "-it", "--rm", "busybox", "sh")
    term.send("echo typed-$((6*7))\r")
    term.expect("typed-42")
    term.send("exit\r")
    assert term.exit_code() == 0
