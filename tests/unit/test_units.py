"""Docker's units: what users type (sizes, CPUs, durations, signals) and what the CLI
prints (sizes and ages), checked against the strings docker produces."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidSpec
from runtime.units import (
    bytes_human_binary,
    human_duration,
    human_size,
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_signal,
)

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", 100),
        ("64m", 64 * MiB),
        ("64M", 64 * MiB),
        ("64mb", 64 * MiB),
        ("64MiB", 64 * MiB),
        ("64 m", 64 * MiB),
        ("1g", 1024 * MiB),
        ("512k", 512 * 1024),
        ("1.5g", 1536 * MiB),
        ("2t", 2 * 1024**4),
        ("1p", 1024**5),
        ("10b", 10),
        ("0", 0),
    ],
)
def test_parse_bytes_reads_docker_memory_sizes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1m", "64x", "m", "1.2.3m", "64mbb", "64mi"])
def test_parse_bytes_rejects_garbage_with_dockers_message(text: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_bytes(text)
    assert str(err.value) == f"invalid size: '{text}'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5", 1_500_000_000), ("2", 2_000_000_000), ("0.01", 10_000_000), ("3/2", 1_500_000_000)],
)
def test_parse_cpus_gives_nano_cpus(text: str, expected: int) -> None:
    assert parse_cpus(text) == expected


def test_parse_cpus_rejects_garbage_like_docker() -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_cpus("abc")
    assert str(err.value) == (
        'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'
    )


@pytest.mark.parametrize("text", ["-1", "0.0000000001"])
def test_parse_cpus_rejects_negative_and_too_precise_values(text: str) -> None:
    with pytest.raises(InvalidSpec):
        parse_cpus(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("0", 0.0),
        ("-3s", -3.0),
        ("100us", 0.0001),
        ("1h0m0.5s", 3600.5),
    ],
)
def test_parse_duration_reads_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("10x", 'time: unknown unit "x" in duration "10x"'),
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
    ],
)
def test_parse_duration_errors_read_like_go(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_duration(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1200, "1.2kB"),
        (4_260_000, "4.26MB"),
        (4_264_999, "4.26MB"),
        (1_240_000, "1.24MB"),
        (72_800_000, "72.8MB"),
        (123_456_789, "123MB"),
        (5_000_000_000, "5GB"),
    ],
)
def test_human_size_prints_like_docker_images(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (int(1.5 * MiB), "1.5MiB"),
        (64 * MiB, "64MiB"),
        (1024 * MiB, "1GiB"),
        (int(1.944 * 1024 * MiB), "1.944GiB"),
    ],
)
def test_bytes_human_binary_prints_like_docker_stats(size: int, text: str) -> None:
    assert bytes_human_binary(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "Less than a second"),
        (0.9, "Less than a second"),
        (-5, "Less than a second"),
        (1, "1 second"),
        (3, "3 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (5 * 60, "5 minutes"),
        (59 * 60 + 59, "59 minutes"),
        (60 * 60, "About an hour"),
        (89 * 60, "About an hour"),
        (90 * 60, "2 hours"),
        (3 * 3600, "3 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (21 * 86400, "3 weeks"),
        (60 * 86400, "2 months"),
        (120 * 86400, "4 months"),
        (2 * 365 * 86400, "2 years"),
        (1000 * 86400, "2 years"),
    ],
)
def test_human_duration_matches_dockers_wording(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("KILL", 9),
        ("SIGKILL", 9),
        ("kill", 9),
        ("sigterm", 15),
        ("9", 9),
        ("HUP", 1),
        ("SIGUSR1", 10),
        ("WINCH", 28),
        ("CLD", 17),
        ("SIGRTMIN", 34),
        ("SIGRTMIN+3", 37),
        ("RTMAX-1", 63),
        ("RTMAX", 64),
    ],
)
def test_parse_signal_accepts_names_numbers_and_realtime_signals(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["FOO", "SIGFOO", "0", "65", "-9", "", "RTMIN+16"])
def test_parse_signal_rejects_unknown_signals(text: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_signal(text)
    assert str(err.value) == f"invalid signal: {text}"
