"""ps/images output pieces, compared with the strings docker prints."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.cli.output import (
    ZERO_TIME,
    created_ago,
    ellipsis,
    format_table,
    parse_rfc3339,
    port_string,
    rfc3339_nano,
    status_string,
    truncate_command,
)
from runtime.errors import InvalidSpec

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def ago(seconds: float) -> str:
    return rfc3339_nano(NOW - seconds)


# -------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (1_700_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000.0, "2023-11-14T22:13:20Z"),
        (1_700_000_000.5, "2023-11-14T22:13:20.5Z"),
        (1_700_000_000.123456, "2023-11-14T22:13:20.123456Z"),
        (1_700_000_000.25, "2023-11-14T22:13:20.25Z"),
        (86_400 * 365, "1971-01-01T00:00:00Z"),
        (0, ZERO_TIME),
        (None, ZERO_TIME),
    ],
)
def test_rfc3339_nano_prints_go_time_json(ts: float | None, text: str) -> None:
    assert rfc3339_nano(ts) == text


def test_zero_time_is_gos_zero_value() -> None:
    assert ZERO_TIME == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "ts"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000.123456789),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14T20:43:20-01:30", 1_700_000_000.0),
        ("0001-01-01T00:00:00Z", 0.0),
    ],
)
def test_parse_rfc3339_reads_docker_times(text: str, ts: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(ts, abs=1e-6)


def test_rfc3339_round_trips() -> None:
    for ts in (1_700_000_000.0, 1_700_000_000.5, 1_234_567_890.000001):
        assert parse_rfc3339(rfc3339_nano(ts)) == pytest.approx(ts, abs=1e-6)


@pytest.mark.parametrize("text", ["", "yesterday", "2023-11-14", "2023-11-14 22:13:20Z",
                                  "2023-13-14T22:13:20Z"])  # fmt: skip
def test_parse_rfc3339_rejects_other_formats(text: str) -> None:
    with pytest.raises(InvalidSpec):
        parse_rfc3339(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "Less than a second ago"), (3, "3 seconds ago"), (90, "About a minute ago"),
     (7200, "2 hours ago"), (3 * 86400, "3 days ago"), (70 * 86400, "2 months ago")],
)  # fmt: skip
def test_created_ago_is_human_duration_plus_ago(seconds: float, text: str) -> None:
    assert created_ago(ago(seconds), NOW) == text
    assert created_ago(NOW - seconds, NOW) == text


# ------------------------------------------------------------------------- status


def state(status: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"Status": status, "ExitCode": 0, "StartedAt": ZERO_TIME,
                           "FinishedAt": ZERO_TIME}  # fmt: skip
    doc.update(fields)
    return doc


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        (state("created"), "Created"),
        (state("running", StartedAt=ago(3)), "Up 3 seconds"),
        (state("running", StartedAt=ago(1)), "Up 1 second"),
        (state("running", StartedAt=ago(0.3)), "Up Less than a second"),
        (state("running", StartedAt=ago(6 * 60)), "Up 6 minutes"),
        (state("paused", StartedAt=ago(300)), "Up 5 minutes (Paused)"),
        (state("restarting", ExitCode=1, StartedAt=ago(10), FinishedAt=ago(2)),
         "Restarting (1) 2 seconds ago"),
        (state("exited", ExitCode=137, StartedAt=ago(60), FinishedAt=ago(2)),
         "Exited (137) 2 seconds ago"),
        (state("exited", ExitCode=0, StartedAt=ago(7300), FinishedAt=ago(7200)),
         "Exited (0) 2 hours ago"),
        (state("exited", ExitCode=127), "Created"),
        (state("exited", StartedAt=ago(5)), ""),
        (state("removing", StartedAt=ago(5), FinishedAt=ago(1)), "Removal In Progress"),
        (state("dead", StartedAt=ago(5), FinishedAt=ago(1)), "Dead"),
        (state("running", StartedAt=ago(3), Health={"Status": "healthy"}),
         "Up 3 seconds (healthy)"),
        (state("running", StartedAt=ago(3), Health={"Status": "unhealthy"}),
         "Up 3 seconds (unhealthy)"),
        (state("running", StartedAt=ago(3), Health={"Status": "starting"}),
         "Up 3 seconds (health: starting)"),
        (state("running", StartedAt=ago(3), Health=None), "Up 3 seconds"),
        (state("paused", StartedAt=ago(3), Health={"Status": "healthy"}), "Up 3 seconds (Paused)"),
    ],
)  # fmt: skip
def test_status_string_matches_docker_ps(doc: dict[str, Any], text: str) -> None:
    assert status_string(doc, NOW) == text


# ------------------------------------------------------------------------ command


@pytest.mark.parametrize(
    ("cmd", "text"),
    [
        ("sleep 1d", '"sleep 1d"'),
        ("sh -c 'while true; do echo hi; sleep 1; done'", '"sh -c \'while true; …"'),
        ("12345678901234567890", '"12345678901234567890"'),
        ("123456789012345678901", '"1234567890123456789…"'),
        ('echo "hi"', '"echo \\"hi\\""'),
        ("printf a\tb\n", '"printf a\\tb\\n"'),
        ("/docker-entrypoint.sh nginx -g 'daemon off;'", '"/docker-entrypoint.…"'),
        ("", '""'),
    ],
)
def test_truncate_command_quotes_and_truncates_like_ps(cmd: str, text: str) -> None:
    assert truncate_command(cmd) == text


def test_no_trunc_keeps_the_whole_command_but_still_quotes_it() -> None:
    long = "sh -c 'while true; do echo hi; sleep 1; done'"
    assert truncate_command(long, None) == f'"{long}"'


def test_ellipsis_counts_wide_characters_as_two_columns() -> None:
    assert ellipsis("日本語のテキスト", 7) == "日本語…"
    assert ellipsis("abc", 1) == "a"
    assert ellipsis("abc", 0) == ""


# -------------------------------------------------------------------------- table


def test_format_table_aligns_like_docker_images() -> None:
    out = format_table(
        [["busybox", "latest", "a416a98b71e2", "2 months ago", "4.26MB"]],
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
    )
    assert out == (
        "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE\n"
        "busybox      latest    a416a98b71e2   2 months ago   4.26MB\n"
    )


def test_format_table_with_no_rows_prints_only_the_header() -> None:
    out = format_table([], ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                            "NAMES"])  # fmt: skip
    assert out == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"


def test_format_table_keeps_empty_cells_aligned() -> None:
    out = format_table([["abc", "", "web"]], ["ID", "PORTS", "NAMES"])
    assert out == "ID        PORTS     NAMES\nabc                 web\n"


# -------------------------------------------------------------------------- ports


def binding(port: str, ip: str = "0.0.0.0") -> dict[str, str]:
    return {"HostIp": ip, "HostPort": port}


@pytest.mark.parametrize(
    ("ports", "text"),
    [
        ({}, ""),
        (None, ""),
        ({"80/tcp": [binding("8080")]}, "0.0.0.0:8080->80/tcp"),
        ({"80/tcp": [binding("8080")], "443/tcp": None}, "443/tcp, 0.0.0.0:8080->80/tcp"),
        ({"6379/tcp": None}, "6379/tcp"),
        ({"53/udp": []}, "53/udp"),
        ({"8000/tcp": None, "8001/tcp": None, "8002/tcp": None, "9000/udp": None},
         "8000-8002/tcp, 9000/udp"),
        ({"8000/tcp": None, "8002/tcp": None}, "8000/tcp, 8002/tcp"),
        ({"80/tcp": [binding("80")]}, "0.0.0.0:80->80/tcp"),
        ({"80/tcp": [binding("80")], "81/tcp": [binding("81")]}, "0.0.0.0:80-81->80-81/tcp"),
        ({"80/tcp": [binding("8080"), binding("8080", "::")]},
         "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"),
        ({"80/tcp": [binding("5000", "127.0.0.1")], "22/tcp": [binding("2222")]},
         "0.0.0.0:2222->22/tcp, 127.0.0.1:5000->80/tcp"),
    ],
)  # fmt: skip
def test_port_string_matches_docker_ps(ports: Any, text: str) -> None:
    assert port_string(ports) == text


def test_port_string_accepts_the_engine_api_port_list() -> None:
    ports = [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"},
             {"PrivatePort": 443, "Type": "tcp"}]  # fmt: skip
    assert port_string(ports) == "443/tcp, 0.0.0.0:8080->80/tcp"
