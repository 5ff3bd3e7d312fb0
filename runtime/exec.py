"""``exec``: run another process inside a running container.

A forked helper joins the container's cgroups and namespaces (setns(2); the caller
must be single-threaded, which the CLI is), then forks again so the command lands in
the container's PID namespace, where it takes the container's capabilities, user,
environment and working directory and execs. With a TTY the command's pty comes from
the container's own devpts and its master is sent back to the caller. Leaving the
process never stops the container.
"""

from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass

from runtime import capabilities, cgroups, namespaces, process, seccomp, state, tty
from runtime.containers import store
from runtime.containers.recovery import reconcile
from runtime.errors import Conflict, ExecFailed, MoorageError


@dataclass
class ExecProcess:
    helper_pid: int
    master_fd: int  # pty master, -1 without a TTY

    def wait(self) -> int:
        _, status = os.waitpid(self.helper_pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


def exec_process(
    ref: str,
    argv: list[str],
    *,
    use_tty: bool = False,
    stdin: int = -1,
    stdout: int = 1,
    stderr: int = 2,
    detach: bool = False,
    user: str | None = None,
    workdir: str | None = None,
    env: tuple[str, ...] = (),
) -> ExecProcess:
    cid = store.resolve(ref)
    record = store.load(cid)
    st = reconcile(cid)
    if st.status == state.PAUSED:
        raise Conflict(f"Container {cid} is paused, unpause the container before exec")
    if st.status != state.RUNNING or not st.pid:
        raise Conflict(f"Container {cid} is not running")
    if not argv:
        raise ExecFailed("No exec command specified", 125)
    spec = record.spec
    caps = capabilities.effective_set(spec.cap_add, spec.cap_drop, spec.privileged)
    proc = process.ProcessSpec(
        argv=tuple(argv),
        env=tuple(process.build_env(record.env, env, record.hostname, use_tty)),
        cwd=workdir or record.workdir or "/",
        user=user if user is not None else record.user,
        capabilities=caps,
        no_new_privileges=not spec.privileged,
        seccomp=seccomp.default_profile(caps) if spec.seccomp_confined else None,
    )
    if proc.seccomp:
        seccomp.preload()  # before the helper enters the container's mount namespace
    if detach:
        # A detached process must not hold the caller's stdio: `exec -d` in a pipeline
        # would otherwise keep the reader waiting until the process ends.
        stdin = stdout = stderr = -1
    error_r, error_w = os.pipe()
    parent_sock = child_sock = None
    if use_tty:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    group = cgroups.open_cgroup(cid)
    pid = os.fork()
    if pid == 0:
        os.close(error_r)
        _helper(group, st.pid, proc, error_w, child_sock, use_tty, stdin, stdout, stderr, detach)
    os.close(error_w)
    master = -1
    if child_sock:
        child_sock.close()
    if parent_sock:
        master = tty.receive_master(parent_sock)
        parent_sock.close()
    failure = b""
    while chunk := os.read(error_r, 4096):
        failure += chunk
    os.close(error_r)
    if failure:
        os.waitpid(pid, 0)
        if master >= 0:
            os.close(master)
        code, _, message = failure.decode(errors="replace").partition(" ")
        raise ExecFailed(message, int(code) if code.isdigit() else 126)
    return ExecProcess(pid, master)


def _helper(
    group: cgroups.Cgroup,
    target: int,
    proc: process.ProcessSpec,
    error_w: int,
    console: socket.socket | None,
    use_tty: bool,
    stdin: int,
    stdout: int,
    stderr: int,
    detach: bool,
) -> None:
    code, message = 126, ""
    try:
        group.add_process(os.getpid())
        namespaces.join_all(target)
        child = os.fork()
        if child == 0:
            try:
                os.setsid()
                if use_tty and console is not None:
                    tty.become_controlling(tty.open_in_container(console.detach()))
                else:
                    null = os.open("/dev/null", os.O_RDWR)
                    for fd, source in ((0, stdin), (1, stdout), (2, stderr)):
                        os.dup2(source if source >= 0 else null, fd)
                env = process.become(proc)
                process.execute(proc, env)
            except ExecFailed as e:
                code, message = e.exit_code, str(e)
            except (MoorageError, OSError) as e:
                message = str(e)
            except BaseException:  # noqa: BLE001 - the caller must hear about any failure
                message = traceback.format_exc(limit=2).strip().splitlines()[-1]
            os.write(error_w, f"{code} {message}".encode())
            os._exit(code)
        os.close(error_w)
        if console is not None:
            console.close()
        if detach:
            os._exit(0)
        _, status = os.waitpid(child, 0)
        result = os.waitstatus_to_exitcode(status)
        os._exit(128 - result if result < 0 else result)
    except BaseException as e:  # noqa: BLE001 - report and leave: this is a forked child
        try:
            os.write(error_w, f"{code} {e}".encode())
        finally:
            os._exit(code)
