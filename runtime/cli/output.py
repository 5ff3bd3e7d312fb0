"""What ``moorage ps`` and friends print, character for character as docker does: the
STATUS column, CREATED ages, COMMAND truncation, PORTS, RFC 3339 times, and aligned
tables.

Inputs are docker-inspect-shaped (``State`` dicts, ``NetworkSettings.Ports``) so the same
functions serve the CLI and the dashboard. Pure functions: no kernel interface, nothing
on disk; times are passed in (``now``) so output is testable.
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from runtime.cli.gotemplate import quote, tabwrite
from runtime.errors import InvalidSpec
from runtime.units import human_duration

# Go's zero time.Time, which docker prints for "never" (StartedAt of a created container).
ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def rfc3339_nano(ts: float | None) -> str:
    """Go's ``time.RFC3339Nano`` in UTC, as docker's JSON shows times: up to nine
    fraction digits with trailing zeros dropped. 0 or None is Go's zero time."""
    if not ts:
        return ZERO_TIME
    # repr() is the shortest decimal that round-trips, so 0.5 stays .5, not .500000001.
    exact = Decimal(repr(ts)) if isinstance(ts, float) else Decimal(ts)
    seconds = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    nanos = int(((exact - seconds) * 1_000_000_000).to_integral_value(ROUND_HALF_EVEN))
    if nanos == 1_000_000_000:
        seconds, nanos = seconds + 1, 0
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; Go's zero time gives 0.0."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise InvalidSpec(f'parsing time "{text}" as RFC3339: invalid format')
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    if (year, month, day, hour, minute, second) == (1, 1, 1, 0, 0, 0) and not fraction:
        return 0.0
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise InvalidSpec(f'parsing time "{text}": field out of range')
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + (float(fraction) if fraction else 0.0)


def _seconds(value: str | float) -> float:
    return parse_rfc3339(value) if isinstance(value, str) else float(value)


def created_ago(created: str | float, now: float) -> str:
    """``ps`` CREATED: ``3 seconds ago``."""
    return human_duration(now - _seconds(created)) + " ago"


def status_string(state: Mapping[str, Any], now: float) -> str:
    """``ps`` STATUS from an inspect-shaped ``State`` (docker's ``State.String()``)."""
    status = state.get("Status")
    code = state.get("ExitCode", 0)
    started = _seconds(state.get("StartedAt") or 0)
    finished = _seconds(state.get("FinishedAt") or 0)
    if status in ("running", "paused", "restarting"):
        if status == "paused":
            return f"Up {human_duration(now - started)} (Paused)"
        if status == "restarting":
            return f"Restarting ({code}) {human_duration(now - finished)} ago"
        up = f"Up {human_duration(now - started)}"
        health = (state.get("Health") or {}).get("Status")
        if health:
            return f"{up} (health: starting)" if health == "starting" else f"{up} ({health})"
        return up
    if status == "removing":
        return "Removal In Progress"
    if status == "dead":
        return "Dead"
    if status == "created" or not started:
        return "Created"
    if not finished:
        return ""
    return f"Exited ({code}) {human_duration(now - finished)} ago"


def _display_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(text: str, max_width: int) -> str:
    """docker's ``formatter.Ellipsis``: cut to ``max_width`` display columns, ending
    in ``…``; wide (East Asian) characters count two columns."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return text[:1]
    widths = [_display_width(ch) for ch in text]
    if sum(widths) <= max_width:
        return text
    used = 0
    for i, width in enumerate(widths):
        if used + width > max_width - 1:
            return text[:i] + "…"
        used += width
    return text


def truncate_command(cmd: str, width: int | None = 20) -> str:
    """``ps`` COMMAND: truncated to ``width`` columns (None for ``--no-trunc``), then
    Go-quoted: ``"sleep 1d"``, ``"sh -c 'while true; …"``."""
    return quote(cmd if width is None else ellipsis(cmd, width))


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Header and rows aligned like docker's tables; every line ends in a newline."""
    lines = ["\t".join(headers)] + ["\t".join(row) for row in rows]
    return tabwrite(lines)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_entries(ports: Any) -> list[tuple[int, str, int, str]]:
    """(private port, host ip, public port, proto) for a ``NetworkSettings.Ports`` dict
    or an Engine-API ``Ports`` list (``PrivatePort``, ``PublicPort``, ``Type``, ``IP``)."""
    entries = []
    if isinstance(ports, Mapping):
        for key, bindings in ports.items():
            number, _, proto = str(key).partition("/")
            if not bindings:
                entries.append((int(number), "", 0, proto or "tcp"))
                continue
            for binding in bindings:
                host_port = binding.get("HostPort") or "0"
                public = int(host_port.split("-")[0])
                entries.append((int(number), binding.get("HostIp") or "", public, proto or "tcp"))
    else:
        for port in ports or ():
            entries.append(
                (
                    int(port.get("PrivatePort", 0)),
                    port.get("IP") or "",
                    int(port.get("PublicPort") or 0),
                    port.get("Type") or "tcp",
                )
            )
    return entries


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{proto}"


def port_string(ports: Any) -> str:
    """``ps`` PORTS, as docker's ``DisplayablePorts``: consecutive ports grouped into
    ranges (``8000-8002/tcp``), unpublished and same-number ports first, then
    ``host:port->port/proto`` mappings: ``443/tcp, 0.0.0.0:8080->80/tcp``."""
    entries = sorted(_port_entries(ports), key=lambda e: (e[0], e[1], e[2], e[3]))
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for private, ip, public, proto in entries:
        key = proto
        if ip:
            if public != private:
                mappings.append(f"{_join_host_port(ip, public)}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, group[0], group[1]))
            groups[key] = [private, private]
    result.extend(_port_group(key, *groups[key]) for key in order)
    return ", ".join(result + mappings)
