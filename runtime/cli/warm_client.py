"""The ``moorage`` command's side of the warm start.

Starting Python and importing the engine costs most of a `run --rm` (argparse,
dataclasses, pathlib, pyroute2 ...: some 60 ms of a 160 ms run on a 2-core VM). So the
command hands its work to a warm server (``runtime.cli.warm_server``) that imported all
of that once, as Mercurial's chg does: it passes its stdin, stdout and stderr over a
unix socket, with its arguments, environment, working directory, umask and resource
limits; the server forks a runner that takes them on and runs the command exactly as
this process would have. This side forwards the signals it gets, and exits as the
runner did.

Nothing here may import more than the C modules it needs: each import is paid on every
call. When there is no server, the command runs in this process as before and a
server is started in the background for the next call. ``MOORAGE_WARM=0`` turns the
server off.
"""

import _signal
import _socket
import os
import sys

# The signals a command run in this process would have got from the terminal or from
# `kill`, forwarded to the runner (which handles them the same way).
FORWARDED = (
    _signal.SIGHUP,
    _signal.SIGINT,
    _signal.SIGQUIT,
    _signal.SIGTERM,
    _signal.SIGUSR1,
    _signal.SIGUSR2,
    _signal.SIGWINCH,
)
RLIMITS = 16  # RLIM_NLIMITS on Linux: every resource limit is passed on
# The engine's package directory: it keys the server's socket, and its source is what
# the server watches for changes.
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def address() -> str:
    """The server's socket: in the engine's run directory (``runtime.paths.run_root``,
    not imported: pathlib alone costs more than this whole module), one per
    interpreter and engine source tree, so two checkouts never serve each other."""
    run_dir = os.environ.get("MOORAGE_RUN", "/run/moorage")
    import binascii

    key = binascii.crc32(f"{sys.executable}\0{PACKAGE}".encode())
    return f"{run_dir}/cli-{key:08x}.sock"


def run(argv: list[str]) -> int | None:
    """Run the command on the warm server and return its exit code; None if it must run
    in this process (no server, or one that declines it) – nothing has run then."""
    if os.environ.get("MOORAGE_WARM", "1") == "0" or _in_background_job():
        return None
    path = address()
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        conn.connect(path)
    except OSError:  # none yet, or a dead one's socket: this call runs here
        conn.close()
        start_server(path)
        return None
    creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    if int.from_bytes(creds[4:8], sys.byteorder) != os.geteuid():
        conn.close()  # only a server of this user may run this user's command
        return None
    try:
        request = encode_request(argv)
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
        sent = conn.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        conn.sendall(request[sent:])
    except OSError:  # a closed stdin, stdout or stderr cannot be passed on
        conn.close()
        return None
    for number in FORWARDED:
        _signal.signal(number, lambda signum, frame: _forward(conn, signum))
    return _wait(conn, path)


def _in_background_job() -> bool:
    """A background job of a shell must stop when it reads the terminal (SIGTTIN);
    the runner is in no job, so such a command runs here."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) != os.getpgrp()
    except OSError:
        return False


def encode_request(argv: list[str]) -> bytes:
    """Length-prefixed, NUL-separated fields: cwd, umask, limits, argv, environment."""
    import resource

    umask = os.umask(0)
    os.umask(umask)
    limits = []
    for number in range(RLIMITS):
        try:
            soft, hard = resource.getrlimit(number)
        except ValueError:  # a resource this kernel does not have
            continue
        limits.append(f"{number}:{soft}:{hard}")
    fields = [
        os.fsencode(os.getcwd()),
        b"%d" % umask,
        " ".join(limits).encode(),
        b"%d" % len(argv),
        *(os.fsencode(arg) for arg in argv),
        *(os.fsencode(key) + b"=" + os.fsencode(value) for key, value in os.environ.items()),
    ]
    body = b"\0".join(fields)
    return len(body).to_bytes(4, "big") + body


def _forward(conn: "_socket.socket", signum: int) -> None:
    try:
        conn.sendall(b"k%d\n" % signum)
    except OSError:
        pass  # the server is gone; _wait reports it


def _wait(conn: "_socket.socket", path: str) -> int | None:
    """Read the server's answer: ``n<why>`` declined, ``x<code>`` exited, ``s<signal>``
    killed. A server that vanishes mid-command leaves its outcome unknown: exit 125."""
    answer = b""
    while not answer.endswith(b"\n"):
        try:
            chunk = conn.recv(64)
        except OSError:
            chunk = b""
        if not chunk:
            print("moorage: the warm server ended before the command did", file=sys.stderr)
            return 125
        answer += chunk
    conn.close()
    kind, value = answer[:1], answer[1:-1]
    if kind == b"n":
        for number in FORWARDED:
            _signal.signal(
                number, _signal.SIG_DFL if number != _signal.SIGINT else _signal.default_int_handler
            )
        if value == b"stale":  # the server found its engine source changed, and ends
            start_server(path)
        return None
    if kind == b"s":
        number = int(value)
        _signal.signal(number, _signal.SIG_DFL)
        os.kill(os.getpid(), number)
        return 128 + number  # a signal this process ignores or only stops on
    return int(value)


def start_server(path: str) -> None:
    """Start a warm server for the next call, in the background, in a session of its
    own, with the standard streams on /dev/null; it finds this engine's source first."""
    if os.environ.get("MOORAGE_WARM", "1") == "0":
        return
    import fcntl

    try:  # a server holds this lock from its first moment: do not start a second
        lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:  # no run directory yet: the command run here makes it
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    finally:
        os.close(lock)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, (os.path.dirname(PACKAGE), env.get("PYTHONPATH")))
    )
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-P", "-m", "runtime.cli.warm_server", path],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
            setsid=True,
        )
    except OSError:
        pass  # no server: every call runs in its own process, as without one
