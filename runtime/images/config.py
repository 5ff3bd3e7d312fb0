"""Image config documents (Docker/OCI image config JSON) and Dockerfile-style changes.

No kernel interface and nothing on disk: this module builds and reads the JSON that
``store`` keeps as blobs. ``apply_changes`` is what ``import -c`` and ``commit -c`` use:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR, as
Docker accepts them. It never expands ``$VARIABLES`` (Docker's builder does).
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import re
import signal
import time
from collections.abc import Iterable
from typing import Any

from runtime.errors import InvalidSpec

_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def architecture() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def rfc3339(ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def now() -> str:
    return rfc3339(time.time_ns())


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch for an RFC3339 string; 0 if it is not one."""
    match = _TIME.fullmatch(text or "")
    if not match:
        return 0
    import calendar  # here: with datetime, ~3 ms of every CLI start otherwise

    *fields, fraction, zone = match.groups()
    seconds = calendar.timegm(tuple(int(f) for f in fields) + (0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "0")[:9].ljust(9, "0"))


def new_image(
    *,
    diff_ids: list[str],
    container_config: dict[str, Any],
    history: list[dict],
    created: str,
    comment: str = "",
    author: str = "",
) -> dict[str, Any]:
    doc: dict[str, Any] = {"architecture": architecture(), "os": "linux", "created": created}
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    doc["config"] = container_config
    doc["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    doc["history"] = history
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    """The bytes to store: compact and stable, so equal documents get equal ids."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def docker_config(container_config: dict[str, Any]) -> dict[str, Any]:
    """``Config`` as ``docker image inspect`` shows it, with Docker's defaults filled in."""
    shown: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }
    shown.update(copy.deepcopy(container_config))
    return shown


# --- changes -------------------------------------------------------------------------


def apply_changes(container_config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """A copy of ``container_config`` with Dockerfile-style ``changes`` applied in order."""
    config = copy.deepcopy(container_config)
    cmd_set = False
    for change in changes:
        if not change.strip():
            continue
        word, _, rest = change.strip().partition(" ")
        instruction, rest = word.upper(), rest.strip()
        handler = _HANDLERS.get(instruction)
        if handler is None:
            raise InvalidSpec(f"{word} is not a valid change command")
        if not rest:
            raise InvalidSpec(f"{instruction} requires at least one argument")
        if instruction == "ENTRYPOINT" and not cmd_set:
            config.pop("Cmd", None)  # as in a Dockerfile: a new ENTRYPOINT resets CMD
        cmd_set = cmd_set or instruction == "CMD"
        handler(config, rest)
    return config


def _command(rest: str) -> list[str]:
    """Exec form if ``rest`` is a JSON array of strings, else shell form."""
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return ["/bin/sh", "-c", rest]


def _pairs(instruction: str, rest: str) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` or the legacy ``K some value`` form."""
    first = rest.split(None, 1)
    if "=" not in first[0]:
        if len(first) < 2:
            raise InvalidSpec(f"{instruction} must have two arguments")
        return [(first[0], first[1].strip())]
    try:
        import shlex

        words = shlex.split(rest)
    except ValueError as e:
        raise InvalidSpec(f"{instruction} {rest!r}: {e}") from e
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise InvalidSpec(f"{instruction}: can't find = in {word!r}; it must be name=value")
        if not key:
            raise InvalidSpec(f"{instruction} names can not be blank")
        pairs.append((key, value))
    return pairs


def _env(config: dict[str, Any], rest: str) -> None:
    env = list(config.get("Env") or [])
    for key, value in _pairs("ENV", rest):
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _label(config: dict[str, Any], rest: str) -> None:
    labels = dict(config.get("Labels") or {})
    labels.update(_pairs("LABEL", rest))
    config["Labels"] = labels


def _expose(config: dict[str, Any], rest: str) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for word in rest.split():
        spec, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", spec)
        if proto not in ("tcp", "udp", "sctp") or not match:
            raise InvalidSpec(f"invalid port specification: {word!r}")
        low, high = int(match[1]), int(match[2] or match[1])
        if not 0 < low <= high <= 65535:
            raise InvalidSpec(f"invalid port specification: {word!r}")
        ports.update({f"{port}/{proto}": {} for port in range(low, high + 1)})
    config["ExposedPorts"] = ports


def _volume(config: dict[str, Any], rest: str) -> None:
    paths = _command(rest) if rest.startswith("[") else rest.split()
    if paths[:2] == ["/bin/sh", "-c"] or not all(p.strip() for p in paths):
        raise InvalidSpec("VOLUME specified can not be an empty string")
    volumes = dict(config.get("Volumes") or {})
    volumes.update({p: {} for p in paths})
    config["Volumes"] = volumes


def _workdir(config: dict[str, Any], rest: str) -> None:
    config["WorkingDir"] = posixpath.normpath(
        posixpath.join("/", config.get("WorkingDir") or "/", rest)
    )


def _user(config: dict[str, Any], rest: str) -> None:
    if len(rest.split()) != 1:
        raise InvalidSpec("USER requires exactly one argument")
    config["User"] = rest


def _stopsignal(config: dict[str, Any], rest: str) -> None:
    name = rest.upper()
    name = name if name.startswith("SIG") or name.isdigit() else "SIG" + name
    rt = re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name)
    if not (
        name in signal.Signals.__members__
        or rt
        or (name.isdigit() and 0 < int(name) <= signal.SIGRTMAX)
    ):
        raise InvalidSpec(f"invalid signal: {rest}")
    config["StopSignal"] = rest


def _onbuild(config: dict[str, Any], rest: str) -> None:
    trigger = rest.split(None, 1)[0].upper()
    if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidSpec(f"{trigger} isn't allowed as an ONBUILD trigger")
    config["OnBuild"] = list(config.get("OnBuild") or []) + [rest]


_HANDLERS = {
    "CMD": lambda c, r: c.__setitem__("Cmd", _command(r)),
    "ENTRYPOINT": lambda c, r: c.__setitem__("Entrypoint", _command(r)),
    "ENV": _env,
    "LABEL": _label,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "WORKDIR": _workdir,
    "USER": _user,
    "STOPSIGNAL": _stopsignal,
    "ONBUILD": _onbuild,
}
