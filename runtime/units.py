"""Docker's units: the sizes, CPU counts, durations and signals users type, and the
human-readable sizes and ages the CLI prints.

Parsers follow docker/go-units (``RAMInBytes``), docker's ``--cpus`` (a rational number
of CPUs turned into nano-CPUs), Go's ``time.ParseDuration`` and moby's ``ParseSignal``.
Printers follow go-units ``HumanSize``/``BytesSize``/``HumanDuration`` to the letter,
because users compare ``ps``, ``images`` and ``stats`` output with Docker's.

Pure functions: no kernel interface, nothing on disk. Bad input raises
:class:`~runtime.errors.InvalidSpec` with Docker's wording.
"""

from __future__ import annotations

import re
import signal as signal_module

from runtime.errors import InvalidSpec

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# go-units accepts "64m", "64mb", "64MiB", "64 m" and a bare "b"; nothing else.
# Patterns stay strings: re compiles (and caches) them on first use, not at CLI start.
_SIZE = r"(?i)^(\d+(?:\.\d*)?|\.\d+) ?(b|[kmgtp](?:b|ib)?)?$"


def parse_bytes(text: str) -> int:
    """``64m`` -> 67108864, like ``docker run --memory`` (binary multiples)."""
    match = re.match(_SIZE, text)
    if match is None:
        raise InvalidSpec(f"invalid size: {text!r}")
    number, suffix = match.groups()
    size = float(number)
    if suffix and suffix[0].lower() != "b":
        size *= _BINARY[suffix[0].lower()]
    return int(size)


def parse_cpus(text: str) -> int:
    """``--cpus 1.5`` -> 1500000000 nano-CPUs; any rational Docker accepts ("3/2")."""
    # Imported here: fractions pulls in decimal, a cost every CLI start would pay.
    from fractions import Fraction

    try:
        cpus = Fraction(text.strip())
    except (ValueError, ZeroDivisionError) as e:
        raise InvalidSpec(
            f'invalid argument "{text}" for "--cpus" flag: '
            f"failed to parse {text} as a rational number"
        ) from e
    if cpus < 0:
        raise InvalidSpec(f'invalid argument "{text}" for "--cpus" flag: must not be negative')
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidSpec(f'invalid argument "{text}" for "--cpus" flag: value is too precise')
    return int(nano)


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = r"(\d*\.?\d*)([^\d.]*)"


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds: ``1m30s`` -> 90.0, ``500ms`` -> 0.5."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if rest == "":
        raise InvalidSpec(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        match = re.match(_DURATION_PART, rest)
        assert match is not None  # the pattern matches the empty string
        number, unit = match.groups()
        if number in ("", "."):
            raise InvalidSpec(f"time: invalid duration {quoted}")
        if unit == "":
            raise InvalidSpec(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise InvalidSpec(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _DURATION_UNITS[unit]
        rest = rest[match.end() :]
    return sign * total


_DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scaled(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(n: float, precision: int = 3) -> str:
    """``docker images`` SIZE: decimal units, 3 significant digits (``4.26MB``)."""
    size, unit = _scaled(float(n), 1000.0, _DECIMAL_UNITS)
    return f"{size:.{precision}g}{unit}"


def bytes_human_binary(n: float) -> str:
    """``docker stats`` MEM USAGE: binary units, 4 significant digits (``1.5MiB``)."""
    size, unit = _scaled(float(n), 1024.0, _BINARY_UNITS)
    return f"{size:.4g}{unit}"


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: ``Less than a second`` ... ``2 years``."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # Docker rounds hours to the nearest, but truncates everything else.
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


# Linux real-time signals as Docker names them: RTMIN, RTMIN+1..+15, RTMAX-14..-1, RTMAX.
_SIGRTMIN = 34
_SIGRTMAX = 64


def _signal_table() -> dict[str, int]:
    # __members__ keeps the aliases Docker also accepts (CLD, IOT, POLL).
    table = {
        name[3:]: int(sig)
        for name, sig in signal_module.Signals.__members__.items()
        if name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT"))
    }
    table["RTMIN"] = _SIGRTMIN
    table["RTMAX"] = _SIGRTMAX
    for i in range(1, 16):
        table[f"RTMIN+{i}"] = _SIGRTMIN + i
    for i in range(1, 15):
        table[f"RTMAX-{i}"] = _SIGRTMAX - i
    return table


SIGNALS: dict[str, int] = _signal_table()


def parse_signal(text: str) -> int:
    """``KILL``, ``SIGKILL``, ``kill``, ``9`` or ``SIGRTMIN+3`` -> the signal number."""
    if re.fullmatch(r"\d+", text):
        number = int(text)
        if 0 < number <= _SIGRTMAX:
            return number
        raise InvalidSpec(f"invalid signal: {text}")
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in SIGNALS:
        raise InvalidSpec(f"invalid signal: {text}")
    return SIGNALS[name]
