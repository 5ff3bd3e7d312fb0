"""The warm server behind the ``moorage`` command (its client is ``warm_client``).

One per engine run directory, source tree and interpreter, started by the first
command that finds none. It imports the CLI and the engine once, then for each
connection:

1. checks the caller could have run the command itself, identically: the same user,
   namespaces, root, capabilities, no_new_privs and seccomp mode, and engine source
   unchanged since the server imported it (else it declines, and the command runs in
   the caller's own process);
2. forks a *session*, which reads the request and the caller's stdin, stdout and
   stderr, and forks the *runner*;
3. the runner takes on the caller's streams, arguments, environment, working
   directory, umask and resource limits, and runs ``runtime.cli.main.entry`` as a fresh
   process would: the server's own frames return and the interpreter ends normally;
4. the session relays signals from the caller to the runner, and the runner's exit
   status back; when the caller vanishes the runner is killed, as the command would
   have died with it.

The server is single-threaded (the runner forks container monitors that enter
namespaces), accepts only connections its own uid makes on a 0600 socket, and ends
after ``IDLE`` seconds without a call, when its socket is removed or replaced, or
when the engine's source changes.
"""

from __future__ import annotations

import fcntl
import gc
import io
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass

from runtime.cli.warm_client import PACKAGE, RLIMITS

IDLE = 600.0  # seconds without a call before the server ends
CHECK_EVERY = 5.0  # seconds between checks that the socket is still this server's
# What must match between a caller and the server for the runner to be the process the
# caller would have been.
NAMESPACES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup")
CREDENTIALS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
# Besides every module of the engine: what it imports only where it is needed.
PRELOAD = (
    "calendar",
    "fractions",
    "hashlib",
    "queue",
    "shlex",
    "shutil",
    "subprocess",
    "tarfile",
    "tempfile",
    "threading",
    "urllib.parse",
    "urllib.request",
)


@dataclass
class Request:
    """One command, as the caller would have run it."""

    fds: list[int]
    cwd: bytes
    umask: int
    limits: list[tuple[int, int, int]]
    argv: list[str]
    env: dict[bytes, bytes]

    @classmethod
    def receive(cls, conn: socket.socket) -> Request:
        conn.settimeout(10)  # the client sends all of it at once, right after connecting
        head, ancillary, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(3 * 4))
        fds: list[int] = []
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4]))
        if len(head) < 4 or len(fds) != 3:
            raise ValueError("a request needs a length and three file descriptors")
        size = int.from_bytes(head, "big")
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ValueError("the request ended early")
            body += chunk
        fields = body.split(b"\0")
        cwd, umask, limits, argc = fields[:4]
        count = int(argc)
        argv = [os.fsdecode(arg) for arg in fields[4 : 4 + count]]
        env = dict(item.partition(b"=")[::2] for item in fields[4 + count :] if item)
        return cls(
            fds=fds,
            cwd=cwd,
            umask=int(umask),
            limits=[
                (int(n), int(soft), int(hard))
                for n, soft, hard in (item.split(b":") for item in limits.split())
            ],
            argv=argv,
            env=env,
        )

    def take_on(self) -> None:
        """Become the caller's process: its streams, directory, umask, limits,
        environment and arguments; Python's default signal handling; fresh sys.std*."""
        import resource

        for target, fd in enumerate(self.fds):
            os.dup2(fd, target)
        for fd in self.fds:
            if fd > 2:
                os.close(fd)
        os.chdir(self.cwd)
        os.umask(self.umask)
        for number, soft, hard in self.limits:
            if number < RLIMITS:
                resource.setrlimit(number, (soft, hard))
        os.environ.clear()
        os.environb.update(self.env)
        sys.argv = self.argv
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _reopen_standard_streams()


def _reopen_standard_streams() -> None:
    """New sys.stdin/stdout/stderr over fds 0-2, buffered as Python buffers them at
    start-up: the server's were made for /dev/null (never a tty, so never line
    buffered), and their buffers must not carry anything over."""
    encoding = sys.stdout.encoding
    tty_out = os.isatty(1)
    sys.stdin = io.TextIOWrapper(
        open(0, "rb", closefd=False), encoding=encoding, errors=sys.stdin.errors
    )
    sys.stdout = io.TextIOWrapper(
        open(1, "wb", closefd=False),
        encoding=encoding,
        errors=sys.stdout.errors,
        line_buffering=tty_out,
    )
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )


class Server:
    def __init__(self, path: str) -> None:
        self.path = path
        self.listener: socket.socket | None = None
        self.lock_fd = -1
        self.identity: tuple[int, int] | None = None
        self.sources: dict[str, tuple[int, int]] = {}
        self.own_pid = os.getpid()
        self.own = _caller_profile(self.own_pid)

    def lock(self) -> bool:
        """Hold the path's lock for life, from before the slow imports: clients seeing
        it held start no other server. False when another server holds it."""
        self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self.lock_fd, 0)
        os.write(self.lock_fd, b"%d\n" % os.getpid())  # stop() finds the server by it
        return True

    def listen(self) -> None:
        staging = f"{self.path}.{os.getpid()}"
        if os.path.lexists(staging):
            os.unlink(staging)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)  # the socket is 0600 from the start
        try:
            listener.bind(staging)
            os.chmod(staging, 0o600)
        finally:
            os.umask(old_umask)
        listener.listen(128)
        os.rename(staging, self.path)  # a dead server's socket is replaced at once
        st = os.stat(self.path)
        self.identity = (st.st_dev, st.st_ino)
        self.listener = listener
        self.sources = _source_stamps()

    def serve(self) -> Request | None:
        """Accept calls until it is time to end (None); in a runner, return its request."""
        assert self.listener is not None
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop(): end, tidily
        last_call = time.monotonic()
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        try:
            while True:
                ready = poller.poll(CHECK_EVERY * 1000)
                _reap()
                if not ready:
                    if not self._still_mine() or time.monotonic() - last_call > IDLE:
                        return None
                    continue
                conn, _ = self.listener.accept()
                last_call = time.monotonic()
                reason = self._decline_reason(conn)
                if reason:
                    _send(conn, b"n" + reason.encode() + b"\n")
                    conn.close()
                    if reason == "stale":
                        return None
                    continue
                if os.fork() == 0:
                    self.listener.close()
                    os.close(self.lock_fd)
                    return _session(conn)
                conn.close()
        except SystemExit:
            return None
        finally:
            if os.getpid() == self.own_pid:
                self._release()

    def _release(self) -> None:
        if self._still_mine():
            os.unlink(self.path)
        if self.listener is not None:
            self.listener.close()

    def _still_mine(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.identity

    def _decline_reason(self, conn: socket.socket) -> str:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid != os.geteuid():
            return "another user"
        try:
            theirs = _caller_profile(pid)
        except OSError:
            return "caller gone"
        for key, value in self.own.items():
            if theirs.get(key) != value:
                return f"different {key}"
        if _source_stamps() != self.sources:
            return "stale"
        return ""


def _session(conn: socket.socket) -> Request | None:
    """Fork the runner for this connection and relay until it exits. Returns the
    request in the runner; the session process itself ends here."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        request = Request.receive(conn)
    except (OSError, ValueError):
        os._exit(0)
    runner = os.fork()
    if runner == 0:
        conn.close()
        return request
    for fd in request.fds:
        os.close(fd)  # else a caller's pipe would stay open while the session lives
    conn.settimeout(None)
    pidfd = os.pidfd_open(runner)
    poller = select.poll()
    poller.register(conn, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    caller_gone = False
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                _, status = os.waitpid(runner, 0)
                if not caller_gone:
                    if os.WIFSIGNALED(status):
                        _send(conn, b"s%d\n" % os.WTERMSIG(status))
                    else:
                        _send(conn, b"x%d\n" % os.waitstatus_to_exitcode(status))
                os._exit(0)
            data = conn.recv(4096)
            if not data:  # the caller died: so does the command it was running
                caller_gone = True
                poller.unregister(conn)
                os.kill(runner, signal.SIGKILL)
                continue
            for line in data.split(b"\n"):
                if line.startswith(b"k") and line[1:].isdigit():
                    os.kill(runner, int(line[1:]))


def _caller_profile(pid: int) -> dict[str, object]:
    """What makes a process able to run a command identically to another."""
    profile: dict[str, object] = {}
    for ns in NAMESPACES:
        st = os.stat(f"/proc/{pid}/ns/{ns}")
        profile[f"{ns} namespace"] = (st.st_dev, st.st_ino)
    profile["root"] = os.readlink(f"/proc/{pid}/root")
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in CREDENTIALS:
                profile[key] = value.strip()
    return profile


def _source_stamps() -> dict[str, tuple[int, int]]:
    """Modification stamps of the engine's source files and folders: a change means a
    runner would mix old code already imported with new code imported later."""
    stamps: dict[str, tuple[int, int]] = {}
    for folder, subfolders, files in os.walk(PACKAGE):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        st = os.stat(folder)
        stamps[folder] = (st.st_mtime_ns, st.st_size)
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                st = os.stat(path)
                stamps[path] = (st.st_mtime_ns, st.st_size)
    return stamps


def _send(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass  # the caller is gone


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop(run_dir: str) -> None:
    """End the warm servers of a run directory (the test suite's clean-up): each
    lock file names its server's pid; a lock nobody holds is a dead server's."""
    for name in os.listdir(run_dir):
        if not (name.startswith("cli-") and name.endswith(".sock.lock")):
            continue
        path = os.path.join(run_dir, name)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                continue  # nobody holds it: no server
            except BlockingIOError:
                pass
            pid = int(os.pread(fd, 32, 0).split()[0])
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while True:  # the lock is free once the server has ended
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        deadline = float("inf")
                    time.sleep(0.01)
        finally:
            os.close(fd)


def main(path: str) -> Request | None:
    server = Server(path)
    if not server.lock():
        return None
    _preload()
    server.listen()
    return server.serve()


def _preload() -> None:
    """Import the whole engine, so that no command pays for an import."""
    import importlib
    import pkgutil

    import runtime

    for name in PRELOAD:
        importlib.import_module(name)
    for module in pkgutil.walk_packages(runtime.__path__, "runtime."):
        if not module.name.endswith(("__main__", ".warm_server")):
            importlib.import_module(module.name)
    cli = importlib.import_module("runtime.cli.main")
    for verb in (*cli.FAST_VERBS, None):
        cli.PREBUILT[verb] = cli.build_parser(verb)
    from runtime import seccomp
    from runtime.errors import MissingFeature
    from runtime.network import nftables

    nftables.preload()  # the native libraries too: each container start would load them
    try:
        seccomp.preload()
    except MissingFeature:
        pass  # reported by the first container that needs the filter, as without a server
    # Every runner, monitor and init is a fork of this process. Frozen, the objects
    # imported here are never visited by their garbage collections, which would
    # otherwise write to (and so copy) every page of them in every fork (the
    # gc.freeze() documentation's advice for a fork server).
    gc.collect()
    gc.freeze()
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        # forking a process with other threads would copy locks they hold
        raise RuntimeError("an import started a thread; the warm server cannot fork")


if __name__ == "__main__":
    request = main(sys.argv[1])
    if request is not None:
        request.take_on()
        from runtime.cli import main as cli

        code = cli.main(sys.argv[1:])
        # Every verb exits quickly here: tearing down an interpreter holding the whole
        # engine would cost each command ~30 ms.
        cli.quick_exit(code)
        sys.exit(code)
