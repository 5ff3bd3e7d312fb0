"""The container's process: user, environment, working directory, capabilities, execve.

Runs in the container's init (and in ``exec``'s helper) after pivot_root, so
``/etc/passwd`` and ``PATH`` are the container's. Resolves the user like runc, builds
the environment like Docker (PATH, HOSTNAME, TERM, image env, ``-e``, HOME), drops
privileges and execs. Failing to find or run the command is reported back through an
error pipe with Docker's exit codes: 127 not found, 126 not executable.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

from runtime import capabilities, seccomp, syscalls
from runtime.errors import ExecFailed, InvalidSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ProcessSpec:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    capabilities: tuple[str, ...]
    no_new_privileges: bool = True
    seccomp: seccomp.Profile | None = None  # None: no filter (privileged, unconfined)


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [
                line.rstrip("\n").split(":")
                for line in f
                if line.strip() and not line.startswith("#")
            ]
    except OSError:
        return []


def resolve_user(text: str) -> User:
    """'', 'name', 'uid', 'uid:gid', 'name:group' → ids, as runc resolves them."""
    user_part, _, group_part = (text or "0").partition(":")
    passwd = _read_db("/etc/passwd")
    groups = _read_db("/etc/group")
    entry = None
    for row in passwd:
        if len(row) >= 7 and (row[0] == user_part or row[2] == user_part):
            entry = row
            break
    if entry is None:
        if not user_part.isdigit():
            raise InvalidSpec(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
        uid, gid, home, name = int(user_part), 0, "/", None
    else:
        uid, gid, home, name = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    if group_part:
        for row in groups:
            if len(row) >= 3 and (row[0] == group_part or row[2] == group_part):
                gid = int(row[2])
                break
        else:
            if not group_part.isdigit():
                raise InvalidSpec(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = int(group_part)
    extra = tuple(
        int(row[2])
        for row in groups
        if len(row) >= 4 and name and name in row[3].split(",") and row[2].isdigit()
    )
    return User(uid, gid, extra, home if entry else "/")


def merge_env(*layers: Iterable[str]) -> list[str]:
    """Later layers override earlier ones by key, keeping the first position, as Docker
    does; a bare ``NAME`` (``-e NAME``) takes the caller's value, or nothing."""
    merged: dict[str, str] = {}
    for layer in layers:
        for item in layer:
            key, sep, value = item.partition("=")
            if not sep:
                if key not in os.environ:
                    continue
                value = os.environ[key]
            merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def build_env(
    image_env: list[str], user_env: tuple[str, ...], hostname: str, tty: bool
) -> list[str]:
    """Docker's order: PATH, HOSTNAME, TERM, image ENV, then -e overriding by key."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"] + (["TERM=xterm"] if tty else [])
    return merge_env(defaults, image_env, user_env)


def find_executable(name: str, path_env: str) -> str:
    if "/" in name:
        try:
            os.stat(name)
        except FileNotFoundError:
            raise ExecFailed(
                f'exec: "{name}": stat {name}: no such file or directory', 127
            ) from None
        except OSError as e:
            raise ExecFailed(f'exec: "{name}": {(e.strerror or str(e)).lower()}', 126) from None
        if not os.access(name, os.X_OK) or os.path.isdir(name):
            raise ExecFailed(f'exec: "{name}": permission denied', 126)
        return name
    for directory in path_env.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecFailed(f'exec: "{name}": executable file not found in $PATH', 127)


def _env_value(env: list[str], key: str) -> str | None:
    for item in env:
        if item.startswith(key + "="):
            return item[len(key) + 1 :]
    return None


def become(spec: ProcessSpec) -> list[str]:
    """Switch to the spec's user and capabilities; return the final environment."""
    user = resolve_user(spec.user)
    env = list(spec.env)
    if _env_value(env, "HOME") is None:
        env.append(f"HOME={user.home}")
    cwd = spec.cwd or "/"
    if not os.path.isdir(cwd):
        os.makedirs(cwd, exist_ok=True)
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    # The bounding set must shrink while we still hold CAP_SETPCAP, before setuid.
    capabilities.drop_bounding(spec.capabilities)
    os.setuid(user.uid)
    capabilities.set_process_sets(spec.capabilities, keep=user.uid == 0)
    if spec.no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    if spec.seccomp is not None:
        seccomp.install(spec.seccomp)
    os.chdir(cwd)
    return env


def execute(spec: ProcessSpec, env: list[str]) -> None:
    """execve the spec's command; raises ExecFailed with Docker's exit code."""
    path = find_executable(spec.argv[0], _env_value(env, "PATH") or DEFAULT_PATH)
    _default_signals()
    try:
        os.execve(path, list(spec.argv), dict(e.split("=", 1) for e in env))
    except PermissionError:
        raise ExecFailed(f'exec: "{spec.argv[0]}": permission denied', 126) from None
    except OSError as e:
        raise ExecFailed(f'exec: "{spec.argv[0]}": {e.strerror}', 126) from None


def _default_signals() -> None:
    """Un-ignore what our parents ignored: an ignored signal stays ignored across execve.

    The monitor ignores SIGHUP and SIGINT, Python ignores SIGPIPE and SIGXFSZ; a
    container's processes must start with every signal at its default, as under Docker
    (``kill -s HUP`` ends a ``sleep``; a closed terminal hangs up its shell).
    """
    for number in signal.valid_signals():
        if (
            number not in (signal.SIGKILL, signal.SIGSTOP)
            and signal.getsignal(number) == signal.SIG_IGN
        ):
            signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
