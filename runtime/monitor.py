"""The per-container monitor: parent of the container's init, keeper of its stdio.

Like containerd-shim or conmon, one monitor process runs for each running container,
detached from whoever started it, so the container outlives the CLI, a Celery worker or
the web server. The monitor creates the container's cgroup, forks its init into a new
PID namespace (``runtime.init``), holds its pty master or pipes, writes the json-file
log, serves attach/wait/signal requests on a unix socket (``runtime.attach``), records
the exit code, start/finish times and OOM kills in ``state.json``, and applies the
restart policy with Docker's back-off. It exits when the container stops for good,
removing the container first if ``--rm`` asked for it.

``spawn`` is the caller's side: it starts a monitor and hands back a ``Launch`` whose
``go`` lets the container run (after the caller has attached, if it wants to) and
whose ``result`` says whether the command started.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from runtime import (
    attach,
    capabilities,
    cgroups,
    init,
    logs,
    namespaces,
    network,
    paths,
    process,
    rootfs,
    seccomp,
    state,
)
from runtime.containers import store
from runtime.errors import ExecFailed, InvalidState, MoorageError

if TYPE_CHECKING:
    from runtime import exec_relay, health

MAX_CLIENT_BUFFER = 8 * 1024 * 1024
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0


# ---------------------------------------------------------------- the caller's side


@dataclass
class Launch:
    cid: str
    report: Any  # file reading the monitor's report pipe
    go_fd: int

    def go(self) -> None:
        os.write(self.go_fd, b"g")
        os.close(self.go_fd)

    def result(self) -> int:
        """The container's host pid, or ExecFailed/MoorageError if it did not start."""
        line = self.report.readline().decode().strip()
        self.report.close()
        return _outcome(self.cid, line)


def _outcome(cid: str, line: str) -> int:
    """Decode a report line: ``ok PID``, ``exec CODE MESSAGE`` or ``error MESSAGE``."""
    kind, _, rest = line.partition(" ")
    if kind == "ok":
        return int(rest)
    if kind == "exec":
        code, _, message = rest.partition(" ")
        raise ExecFailed(message, int(code))
    if kind == "error":
        raise MoorageError(rest)
    raise MoorageError(
        f"container monitor for {cid[:12]} died while starting; "
        f"see {paths.container(cid) / 'monitor.log'}"
    )


def spawn(cid: str) -> Launch:
    """Start a detached monitor for ``cid``; returns once it listens for attach clients.

    A single-threaded caller (the CLI) forks the monitor straight from itself, which
    saves starting a second interpreter; a multithreaded one (a Celery worker, daphne)
    must not fork into setns/unshare, so it execs a fresh ``python -m runtime.monitor``.
    """
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    log_path = paths.container(cid) / "monitor.log"
    if threading.active_count() == 1:
        _fork_monitor(cid, report_w, go_r, log_path)
    else:
        with open(log_path, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "runtime.monitor", cid, str(report_w), str(go_r)],
                pass_fds=(report_w, go_r),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd="/",
            )
        child.wait()  # the first process forks the real monitor and exits at once
    os.close(report_w)
    os.close(go_r)
    report = os.fdopen(report_r, "rb", buffering=0)
    first = report.readline().decode().strip()
    if first != "listening":
        os.close(go_w)
        report.close()
        _outcome(cid, first)  # raises with the monitor's reason
    return Launch(cid, report, go_w)


def _fork_monitor(cid: str, report_w: int, go_r: int, log_path: Any) -> None:
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        # Keep only the two pipes: an inherited lock fd (the caller's op.lock) would
        # otherwise stay held for the container's whole life.
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        keep = sorted({report_w, go_r})
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 65536)
        os.chdir("/")
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        _run_monitor(cid, report_w, go_r)
    finally:
        os._exit(1)


# ---------------------------------------------------------------- the monitor itself


@dataclass
class Conn:
    sock: socket.socket
    reader: attach.FrameReader = field(default_factory=attach.FrameReader)
    request: dict[str, Any] | None = None
    out: bytearray = field(default_factory=bytearray)
    session: exec_relay.ExecSession | None = None  # the exec this connection asked for

    def wants(self, kind: int) -> bool:
        if not self.request or self.request.get("op") != "attach":
            return False
        return bool(self.request.get("stdout" if kind == attach.STDOUT else "stderr", True))


class Monitor:
    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.record = store.load(cid)
        self.directory = self.record.directory
        self.spec = self.record.spec
        self.cgroup = cgroups.open_cgroup(cid)
        self.selector = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}
        self.pid = 0
        self.pidfd = -1
        self.outputs: dict[int, int] = {}  # fd → attach kind
        self.stdin_fd = -1
        self.master_fd = -1
        self.started_at = 0.0
        self.restart_at = 0.0
        self.backoff = BACKOFF_START
        self.done = False
        self.log: logs.JsonFileWriter | None = None
        self.plugged = network.Plugged()
        self.health: health.HealthMonitor | None = None
        if self.spec.log_driver == "json-file":
            opts = self.spec.log_opts
            self.log = logs.JsonFileWriter(
                self.directory / f"{cid}-json.log",
                logs.parse_size(opts["max-size"]) if "max-size" in opts else 0,
                int(opts.get("max-file", "1")),
            )
        paths.run_root().mkdir(parents=True, exist_ok=True)
        attach.remove_socket(cid)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.listener.bind(str(attach.socket_path(cid)))
        finally:
            os.umask(old_umask)
        self.listener.listen(64)

    # -- launching the container's init

    def _resources(self) -> cgroups.Resources:
        s = self.spec
        return cgroups.Resources(
            memory=s.memory or None,
            memory_swap=(s.memory_swap or None) if s.memory_swap != -1 else -1,
            cpu_period=100000 if s.nano_cpus else None,
            cpu_quota=s.nano_cpus * 100000 // 1_000_000_000 if s.nano_cpus else None,
            cpu_shares=s.cpu_shares or None,
            cpuset_cpus=s.cpuset_cpus or None,
            cpuset_mems=s.cpuset_mems or None,
            pids_limit=s.pids_limit or None,
            devices=None
            if s.privileged
            else cgroups.DEFAULT_DEVICE_RULES + tuple(_device_rule(d) for d in s.devices),
        )

    def _mode(self, mode: str) -> str | int:
        if mode in ("", "private", "shareable", "bridge", "none") or (
            mode != "host" and not mode.startswith("container:")
        ):  # a user network
            return "private"
        if mode == "host":
            return "host"
        other = store.resolve(mode.split(":", 1)[1])
        other_state = state.load(paths.container(other))
        if other_state.status not in (state.RUNNING, state.PAUSED) or not other_state.pid:
            raise InvalidState(
                f"cannot join network namespace of a non running container: "
                f"{other[:12]} is not running"
            )
        return other_state.pid

    def _plan(self) -> init.InitPlan:
        rec, spec = self.record, self.spec
        modes = namespaces.Modes(
            net=self._mode(spec.network_mode),
            ipc=self._mode(spec.ipc_mode),
            pid=self._mode(spec.pid_mode),
            uts="host" if spec.network_mode == "host" else "private",
        )
        binds = [
            rootfs.BindMount(str(self.directory / name), f"/etc/{name}", create_file=True)
            for name in ("hostname", "hosts", "resolv.conf")
        ]
        if spec.init:
            binds.append(
                rootfs.BindMount(
                    _init_binary(), "/sbin/docker-init", readonly=True, create_file=True
                )
            )
        shm_source = None
        if spec.ipc_mode.startswith("container:"):
            shm_source = str(paths.container(store.resolve(spec.ipc_mode.split(":", 1)[1])) / "shm")
        elif spec.ipc_mode == "shareable":
            shm_source = str(self.directory / "shm")
        elif spec.ipc_mode == "host":
            shm_source = "/dev/shm"
        plan = rootfs.RootfsPlan(
            merged=str(self.directory / "merged"),
            lower_dirs=tuple([str(self.directory / "init")] + list(reversed(rec.layer_dirs))),
            upper_dir=str(self.directory / "upper"),
            work_dir=str(self.directory / "work"),
            readonly=spec.read_only,
            privileged=spec.privileged,
            shm_size=spec.shm_size,
            shm_source=shm_source,
            binds=tuple(binds) + tuple(rootfs.BindMount(**b) for b in rec.extra.get("binds", [])),
            tmpfs=tuple(rootfs.TmpfsMount(**t) for t in rec.extra.get("tmpfs", [])),
            extra_devices=tuple(_device_paths(d) for d in spec.devices),
        )
        env = process.build_env(rec.env, (), rec.hostname, spec.tty)
        argv = rec.argv
        if spec.init:
            argv = ["/sbin/docker-init", "--", *argv]
        caps = capabilities.effective_set(spec.cap_add, spec.cap_drop, spec.privileged)
        proc = process.ProcessSpec(
            argv=tuple(argv),
            env=tuple(env),
            cwd=rec.workdir or "/",
            user=rec.user,
            capabilities=caps,
            no_new_privileges=not spec.privileged,
            seccomp=seccomp.default_profile(caps) if spec.seccomp_confined else None,
        )
        return init.InitPlan(
            rootfs=plan,
            modes=modes,
            hostname=rec.hostname,
            domainname=spec.domainname or "",
            process=proc,
            tty=spec.tty,
            private_network=modes.net == "private",
            cgroup_tasks=self.cgroup.self_attach_files(),
        )

    def launch(self) -> None:
        """Fork and start the init; on failure raise with Docker's exit code."""
        plan = self._plan()
        if plan.process.seccomp:
            seccomp.preload()  # the init cannot dlopen it after pivot_root
        if self.spec.ipc_mode == "shareable":
            rootfs.mount_shared_shm(self.directory / "shm", self.spec.shm_size)
        self.cgroup.create(self._resources())
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        error_r, error_w = os.pipe()
        console_parent = console_child = None
        stdio_parent: list[int] = []
        stdin = stdout = stderr = -1
        if plan.tty:
            console_parent, console_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            out_r, stdout = os.pipe()
            err_r, stderr = os.pipe()
            stdio_parent = [out_r, err_r]
            if self.spec.stdin_open:
                stdin, self.stdin_fd = os.pipe()
        if plan.modes.pid == "private":
            namespaces.reset_pid_namespace_for_children()
            from runtime import syscalls

            syscalls.unshare(syscalls.CLONE_NEWPID)
        elif isinstance(plan.modes.pid, int):
            namespaces.join(plan.modes.pid, "pid")
        pid = os.fork()
        if pid == 0:
            for fd in [ready_r, go_w, error_r, *stdio_parent, self.stdin_fd]:
                if fd >= 0:
                    os.close(fd)
            init.run(
                plan,
                init.InitPipes(
                    ready_w=ready_w,
                    go_r=go_r,
                    error_w=error_w,
                    console=console_child.detach() if console_child else -1,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                ),
            )
            os._exit(126)  # init.run never returns; this is belt and braces
        self.pid = pid
        namespaces.reset_pid_namespace_for_children()
        for fd in (ready_w, go_r, error_w, stdin, stdout, stderr):
            if fd >= 0:
                os.close(fd)
        if console_child:
            console_child.close()
        plug_error: MoorageError | None = None
        try:
            ready = os.read(ready_r, 1)
            if ready in (b"r", b"R"):
                if ready == b"R":  # the init did not move itself into the cgroup
                    self.cgroup.add_process(pid)
                try:
                    self.plugged = network.plug(self.record, pid)
                except MoorageError as e:
                    plug_error = e
                try:  # "n": the init gives up and exits now
                    os.write(go_w, b"n" if plug_error else b"g")
                except BrokenPipeError:
                    pass  # the init failed meanwhile (building its root): it says why
            if console_parent:
                _, fds, _, _ = socket.recv_fds(console_parent, 1, 1)
                if fds:
                    self.master_fd = fds[0]
            failure = b""
            while chunk := os.read(error_r, 4096):
                failure += chunk
        finally:
            for fd in (ready_r, go_w, error_r):
                os.close(fd)
            if console_parent:
                console_parent.close()
        if plug_error or failure or (self.master_fd < 0 and plan.tty):
            os.waitpid(pid, 0)
            self.pid = 0
            for fd in stdio_parent + [self.stdin_fd, self.master_fd]:
                if fd >= 0:
                    os.close(fd)
            self.stdin_fd = self.master_fd = -1
            self._teardown_cgroup()
            # The init's own failure first: a network plugged into a dying init fails too.
            if plug_error and not failure:
                raise plug_error
            code, _, message = failure.decode(errors="replace").partition(" ")
            raise ExecFailed(
                message or "container init exited before starting",
                int(code) if code.isdigit() else 126,
            )
        self.pidfd = os.pidfd_open(pid)
        self.started_at = time.time()
        if plan.tty:
            self.outputs = {self.master_fd: attach.STDOUT}
            self.stdin_fd = self.master_fd
        else:
            self.outputs = {stdio_parent[0]: attach.STDOUT, stdio_parent[1]: attach.STDERR}
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, "output")
        if self.stdin_fd >= 0 and self.stdin_fd != self.master_fd:
            os.set_blocking(self.stdin_fd, False)
        self.selector.register(self.pidfd, selectors.EVENT_READ, "exit")
        for service in self.plugged.services:
            self.selector.register(service, selectors.EVENT_READ, "service")
        if self.spec.health_flags or self.record.image_config.get("Healthcheck"):
            from runtime import health  # large: loaded only when there may be a check

            self.health = health.HealthMonitor.start(self.record, self.started_at)
        if self.health:
            self.selector.register(self.health, selectors.EVENT_READ, "service")

    def _teardown_cgroup(self) -> None:
        if self.health:  # health stops with the container, before its cgroup goes
            self.selector.unregister(self.health)
            self.health.close()
            self.health = None
        registered = self.selector.get_map()
        for service in self.plugged.services:
            if service.fileno() in registered:  # not yet, if the start failed
                self.selector.unregister(service)
        self.plugged.unplug()
        self.plugged = network.Plugged()
        try:
            self.cgroup.kill_all(signal.SIGKILL)
        except MoorageError:
            pass
        self.cgroup.destroy()
        if self.spec.ipc_mode == "shareable":
            rootfs.unmount_shared_shm(self.directory / "shm")

    # -- serving

    def serve(self, report_fd: int, go_fd: int) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        os.write(report_fd, b"listening\n")
        go = os.read(go_fd, 1)
        os.close(go_fd)
        if go != b"g":
            self._finish_without_start(report_fd, "start was cancelled")
            return
        self._accept_pending()
        try:
            self.launch()
        except ExecFailed as e:
            self._record_failed_start(e.exit_code, str(e))
            os.write(report_fd, f"exec {e.exit_code} {e}\n".encode())
            os.close(report_fd)
            self._broadcast_exit(e.exit_code, False)
            self._close()
            return
        except MoorageError as e:
            self._record_failed_start(125, str(e))
            os.write(report_fd, f"error {e}\n".encode())
            os.close(report_fd)
            self._broadcast_exit(125, False)
            self._close()
            return
        with state.updating(self.directory) as st:
            st.status = state.RUNNING
            st.pid = self.pid
            st.monitor_pid = os.getpid()
            st.monitor_start = state.process_start_time(os.getpid())
            st.started_at = self.started_at
            st.exit_code = 0
            st.error = ""
            st.oom_killed = False
            st.boot_id = state.boot_id()
            st.lost = False
            auto_remove = self.spec.auto_remove
        os.write(report_fd, f"ok {self.pid}\n".encode())
        os.close(report_fd)
        self.loop()
        if auto_remove and self.done:  # again, for a start that failed on restart
            from runtime.containers import teardown

            teardown.remove_stopped(self.cid)
        self._close()

    def _finish_without_start(self, report_fd: int, reason: str) -> None:
        os.write(report_fd, f"error {reason}\n".encode())
        os.close(report_fd)
        self._close()

    def _record_failed_start(self, code: int, message: str) -> None:
        with state.updating(self.directory) as st:
            st.exit_code = code
            st.error = message
            st.pid = 0
            if st.status in (state.RUNNING, state.RESTARTING):
                st.status = state.EXITED
                st.finished_at = time.time()
        self.done = True

    def _accept_pending(self) -> None:
        """Clients that connected before the go-ahead must see the very first output."""
        self.listener.setblocking(False)
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                break
            sock.settimeout(2)
            conn = Conn(sock)
            try:
                while conn.request is None:
                    data = sock.recv(65536)
                    if not data:
                        break
                    self._handle_frames(conn, conn.reader.feed(data))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, "client")

    def loop(self) -> None:
        while not self.done:
            timeout = None
            if self.restart_at:
                timeout = max(0.0, self.restart_at - time.time())
            for key, events in self.selector.select(timeout):
                kind = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "output":
                    self._read_output(key.fd)
                elif kind == "client":
                    self._client_event(key.fd, events)
                elif kind == "exit":
                    self._on_exit()
                elif kind == "service":
                    cast(network.Service, key.fileobj).on_readable()
                elif isinstance(kind, tuple) and kind[0] == "exec-output":
                    self._exec_output(kind[1])
                elif isinstance(kind, tuple) and kind[0] == "exec-exit":
                    self._exec_exit(kind[1])
            if self.restart_at and time.time() >= self.restart_at:
                self.restart_at = 0.0
                self._restart()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.conns[sock.fileno()] = Conn(sock)
        self.selector.register(sock, selectors.EVENT_READ, "client")

    def _read_output(self, fd: int) -> bool:
        """Relay one chunk; False once the fd has nothing more right now (or ever)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError as e:  # EIO on a pty master once the last slave fd closes
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.selector.unregister(fd)
            del self.outputs[fd]
            if fd != self.master_fd:
                os.close(fd)
            return False
        kind = self.outputs[fd]
        if self.log:
            self.log.write("stdout" if kind == attach.STDOUT else "stderr", data)
        payload = attach.frame(kind, data)
        for conn in list(self.conns.values()):
            if conn.wants(kind):
                self._queue(conn, payload)
        return True

    def _queue(self, conn: Conn, payload: bytes) -> None:
        if len(conn.out) > MAX_CLIENT_BUFFER:
            self._drop(conn)  # a client this slow would hold the container back
            return
        conn.out += payload
        self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        try:
            while conn.out:
                sent = conn.sock.send(conn.out)
                del conn.out[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(conn)
            return
        fd = conn.sock.fileno()
        if fd in self.conns:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
            self.selector.modify(conn.sock, events, "client")

    def _drop(self, conn: Conn) -> None:
        if conn.session and conn.session.master_fd >= 0:
            # The terminal went away: hang the session up. Its pidfd stays registered
            # so that the helper is reaped when it exits.
            self.selector.unregister(conn.session.master_fd)
            conn.session.hang_up()
        fd = conn.sock.fileno()
        if fd in self.conns:
            self.selector.unregister(conn.sock)
            del self.conns[fd]
        conn.sock.close()

    def _client_event(self, fd: int, events: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            return
        if events & selectors.EVENT_WRITE:
            self._flush(conn)
        if not events & selectors.EVENT_READ or fd not in self.conns:
            return
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if conn.request and conn.request.get("stdin_once"):
                self._close_stdin()
            self._drop(conn)
            return
        self._handle_frames(conn, conn.reader.feed(data))

    def _handle_frames(self, conn: Conn, frames: list[tuple[int, bytes]]) -> None:
        for kind, payload in frames:
            if kind == attach.STDIN and conn.session:
                conn.session.write(payload)
            elif kind == attach.STDIN:
                self._write_stdin(payload)
            elif kind == attach.CONTROL:
                self._control(conn, json.loads(payload))

    def _control(self, conn: Conn, message: dict[str, Any]) -> None:
        op = message.get("op")
        if conn.request is None:
            conn.request = message
        if op == "resize" and conn.session:
            conn.session.resize(int(message.get("rows", 24)), int(message.get("cols", 80)))
        elif op == "resize" and self.master_fd >= 0:
            rows, cols = int(message.get("rows", 24)), int(message.get("cols", 80))
            fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        elif op == "exec" and conn.request is message and conn.session is None:
            self._start_exec(conn, message)
        elif op == "close_stdin":
            self._close_stdin()
        elif op == "signal":
            sent = self._signal(int(message["signal"]))
            conn.out += attach.control({"ok": sent} if sent else {"error": "not running"})
            self._flush(conn)
        elif op == "wait" and self.pid == 0:
            st = state.load(self.directory)
            conn.out += attach.control({"exit": st.exit_code, "oom": st.oom_killed})
            self._flush(conn)
        elif op == "cancel_restart":
            if self.pid == 0 and self.restart_at:
                self.restart_at = 0.0
                self._final_exit()
            conn.out += attach.control({"ok": True})
            self._flush(conn)
        elif op == "network":  # a live `network connect`: the DNS server may start now
            try:
                for service in self.plugged.refresh():
                    self.selector.register(service, selectors.EVENT_READ, "service")
                conn.out += attach.control({"ok": True})
            except MoorageError as e:
                conn.out += attach.control({"error": str(e)})
            self._flush(conn)

    # -- exec sessions (runtime/exec_relay.py)

    def _start_exec(self, conn: Conn, message: dict[str, Any]) -> None:
        from runtime.exec_relay import ExecSession  # only monitors that serve an exec need it

        try:
            session = ExecSession(self.cid, message)
        except ExecFailed as e:
            self._reply_and_drop(conn, {"error": str(e), "exit": e.exit_code})
            return
        except MoorageError as e:
            self._reply_and_drop(conn, {"error": str(e), "exit": 126})
            return
        conn.session = session
        self.selector.register(session.master_fd, selectors.EVENT_READ, ("exec-output", conn))
        self.selector.register(session.pidfd, selectors.EVENT_READ, ("exec-exit", conn))
        conn.out += attach.control({"ok": True})
        self._flush(conn)

    def _exec_output(self, conn: Conn) -> None:
        session = conn.session
        assert session is not None
        data = session.read()
        if data is None:
            return
        if not data:
            self.selector.unregister(session.master_fd)
            session.hang_up()
            return
        self._queue(conn, attach.frame(attach.STDOUT, data))

    def _exec_exit(self, conn: Conn) -> None:
        session = conn.session
        assert session is not None
        if session.master_fd >= 0:
            while data := session.read():  # what it printed last, before its exit code
                self._queue(conn, attach.frame(attach.STDOUT, data))
            if session.master_fd >= 0:
                self.selector.unregister(session.master_fd)
                session.hang_up()
        self.selector.unregister(session.pidfd)
        code = session.reap()
        if conn.sock.fileno() in self.conns:
            self._reply_and_drop(conn, {"exit": code})

    def _reply_and_drop(self, conn: Conn, message: dict[str, Any]) -> None:
        """Send what is queued and a last control message (blocking, briefly), hang up."""
        try:
            conn.sock.settimeout(1.0)
            conn.sock.sendall(bytes(conn.out) + attach.control(message))
        except OSError:
            pass
        conn.out.clear()
        self._drop(conn)

    def _signal(self, number: int) -> bool:
        if self.pidfd < 0:
            return False
        try:
            signal.pidfd_send_signal(self.pidfd, number)
            return True
        except ProcessLookupError:
            return False

    def _write_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0:
            return
        try:
            view = memoryview(data)
            while view:  # bounded by the pipe: a stuck reader only loses its own input
                written = os.write(self.stdin_fd, view)
                view = view[written:]
        except BlockingIOError:
            pass
        except OSError:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd >= 0 and self.stdin_fd != self.master_fd:
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    # -- exits and restarts

    def _on_exit(self) -> None:
        self.selector.unregister(self.pidfd)
        # Every other process of the PID namespace is gone once init is a zombie, so
        # the pipes hold all there will ever be: relay it before reporting the exit.
        for fd in list(self.outputs):
            while fd in self.outputs and self._read_output(fd):
                pass
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code
        oom = False
        try:
            oom = self.cgroup.oom_kill_count() > 0
        except MoorageError:
            pass
        os.close(self.pidfd)
        self.pidfd = -1
        self.pid = 0
        for fd in list(self.outputs):
            self.selector.unregister(fd)
            if fd != self.master_fd:
                os.close(fd)
        self.outputs = {}
        # stdin first: with a TTY it is the master itself, which it must not close twice.
        self._close_stdin()
        self.stdin_fd = -1
        if self.master_fd >= 0:
            os.close(self.master_fd)
        self.master_fd = -1
        if self.log:
            self.log.flush_partial()
        self._teardown_cgroup()
        ran_for = time.time() - self.started_at
        with state.updating(self.directory) as st:
            st.exit_code = code
            st.oom_killed = oom
            st.finished_at = time.time()
            st.pid = 0
            restart = _should_restart(self.spec, st, code)
            removing = st.status == state.REMOVING  # an `rm -f` is on it
            if not removing:
                st.status = state.RESTARTING if restart else state.EXITED
        later: list[Path] = []
        if self.spec.auto_remove and not restart and not removing:
            # Before the exit is reported: `run --rm` returns once the container is gone.
            from runtime.containers import teardown

            teardown.remove_stopped(self.cid, later=later)
        self._broadcast_exit(code, oom)
        for path in later:  # its files, out of the store already: nobody waits for these
            shutil.rmtree(path, ignore_errors=True)
        if restart:
            self.backoff = BACKOFF_START if ran_for >= BACKOFF_RESET_AFTER else self.backoff
            self.restart_at = time.time() + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        else:
            self.done = True

    def _final_exit(self) -> None:
        with state.updating(self.directory) as st:
            if st.status == state.RESTARTING:
                st.status = state.EXITED
        self.done = True

    def _restart(self) -> None:
        st = state.load(self.directory)
        if st.manually_stopped or st.status != state.RESTARTING:
            self._final_exit()
            return
        try:
            self.launch()
        except MoorageError as e:
            self._record_failed_start(getattr(e, "exit_code", 125), str(e))
            return
        with state.updating(self.directory) as st:
            st.status = state.RUNNING
            st.pid = self.pid
            st.started_at = self.started_at
            st.restart_count += 1
            st.oom_killed = False

    def _broadcast_exit(self, code: int, oom: bool) -> None:
        """Tell attach and wait clients the exit code, then hang up on them."""
        for conn in list(self.conns.values()):
            if conn.request and conn.request.get("op") in ("attach", "wait"):
                self._reply_and_drop(conn, {"exit": code, "oom": oom})

    def _close(self) -> None:
        self.selector.close()
        self.listener.close()
        attach.remove_socket(self.cid)
        for conn in list(self.conns.values()):
            conn.sock.close()
        if self.log:
            self.log.close()


def _should_restart(spec: Any, st: state.State, code: int) -> bool:
    if st.manually_stopped or st.status == state.REMOVING:
        return False
    if spec.restart_policy in ("always", "unless-stopped"):
        return True
    if spec.restart_policy == "on-failure":
        return code != 0 and (not spec.restart_max or st.restart_count < spec.restart_max)
    return False


def _device_paths(device: str) -> tuple[str, str]:
    parts = device.split(":")
    host = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    return host, target


def _device_rule(device: str) -> cgroups.DeviceRule:
    parts = device.split(":")
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    st = os.stat(parts[0])
    import stat as stat_module

    kind = "b" if stat_module.S_ISBLK(st.st_mode) else "c"
    return cgroups.DeviceRule(kind, os.major(st.st_rdev), os.minor(st.st_rdev), perms)


def _init_binary() -> str:
    for candidate in ("/usr/bin/tini-static", "/usr/bin/tini"):
        if os.path.exists(candidate):
            return candidate
    raise MoorageError("--init needs tini (Debian package 'tini'); it is not installed")


def _run_monitor(cid: str, report_fd: int, go_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGWINCH, signal.SIG_DFL)
    try:
        Monitor(cid).serve(report_fd, go_fd)
    except BaseException:
        traceback.print_exc()
        try:
            os.write(report_fd, b"error container monitor failed; see monitor.log\n")
        except OSError:
            pass
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str]) -> None:
    cid, report_fd, go_fd = argv[0], int(argv[1]), int(argv[2])
    if os.fork():
        os._exit(0)  # detach: the real monitor is reparented away from the caller
    _run_monitor(cid, report_fd, go_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
