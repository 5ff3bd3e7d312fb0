"""Health checks enforced by the monitor, through the real ``moorage`` CLI.

engine-behaviour.md 3.9 (no scenario covers health): probes run by exec, ``starting →
healthy | unhealthy`` after Retries consecutive failures, failures in the start period
not counted, a hung probe killed at its Timeout, ``State.Health`` with the last five
results, the ``ps`` suffix and ``--filter health=``, an image's HEALTHCHECK and
``--no-healthcheck``, and Docker's wording for bad flag values. Intervals are 0.5-1 s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from runtime import cgroups, containers, paths
from tests.kernel.conftest import Moorage

pytestmark = pytest.mark.kernel

FAST = ("--health-interval", "500ms")


def wait_until(condition, timeout: float = 15.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def health(moorage: Moorage, ref: str) -> dict | None:
    return json.loads(moorage.ok("inspect", "-f", "{{json .State.Health}}", ref))


def health_file(cid: str) -> dict | None:
    try:
        return json.loads((paths.container(cid) / "health.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def status(cid: str) -> str | None:
    found = health_file(cid)
    return found["Status"] if found else None


def ps_status(moorage: Moorage, ref: str) -> str:
    return moorage.ok("ps", "-a", "--filter", f"name={ref}", "--format", "{{.Status}}").strip()


def command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone meanwhile


def run(moorage: Moorage, name: str, *options: str) -> str:
    return moorage.ok("run", "-d", "--name", name, *options, "busybox", "sleep", "120").strip()


def test_a_container_whose_probe_succeeds_becomes_healthy(moorage: Moorage) -> None:
    """3.9: exit 0 is healthy; inspect keeps Output and ExitCode; ps says (healthy)."""
    cid = run(moorage, "hc-ok", "--health-cmd", "echo fine; echo also >&2", *FAST)
    assert wait_until(lambda: status(cid) == "healthy")
    doc = health(moorage, "hc-ok")
    assert doc["Status"] == "healthy" and doc["FailingStreak"] == 0
    entry = doc["Log"][-1]
    assert entry["ExitCode"] == 0
    assert entry["Output"] == "fine\nalso\n"
    assert entry["Start"] <= entry["End"]
    assert ps_status(moorage, "hc-ok").endswith("(healthy)")
    config = json.loads(moorage.ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc-ok"))
    assert config == {"Test": ["CMD-SHELL", "echo fine; echo also >&2"], "Interval": 500_000_000}
    # Only the last five results are kept.
    assert wait_until(lambda: len(health_file(cid)["Log"]) == 5)
    time.sleep(1.2)
    assert len(health(moorage, "hc-ok")["Log"]) == 5


def test_a_failing_probe_makes_the_container_unhealthy_only_after_retries(moorage: Moorage) -> None:
    """3.9: Retries consecutive failures turn starting into unhealthy, not fewer."""
    cid = run(
        moorage, "hc-bad", "--health-cmd", "echo broken; exit 3", *FAST, "--health-retries", "3"
    )
    seen: list[tuple[str, int]] = []

    def record() -> bool:
        found = health_file(cid)
        if found:
            seen.append((found["Status"], found["FailingStreak"]))
        return bool(found) and found["Status"] == "unhealthy"

    assert wait_until(record, interval=0.02)
    assert ("starting", 1) in seen and ("starting", 2) in seen
    assert all(streak >= 3 for s, streak in seen if s == "unhealthy")
    entry = health(moorage, "hc-bad")["Log"][-1]
    assert entry["ExitCode"] == 3 and entry["Output"] == "broken\n"
    assert ps_status(moorage, "hc-bad").endswith("(unhealthy)")
    # An unhealthy container keeps running (dockerd restarts nothing outside swarm).
    assert containers.inspect(cid)["State"]["Running"]


def test_a_probe_that_hangs_is_killed_at_its_timeout(moorage: Moorage) -> None:
    """3.9: a probe past Timeout is killed and counts as a failure with exit -1."""
    cid = run(
        moorage,
        "hc-hang",
        "--health-cmd",
        "sleep 37",
        *FAST,
        "--health-timeout",
        "500ms",
        "--health-retries",
        "1",
    )
    assert wait_until(lambda: status(cid) == "unhealthy")
    entry = health(moorage, "hc-hang")["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (500ms)"
    group = cgroups.open_cgroup(cid)
    for _ in range(10):  # killed probes do not pile up: at most the one in flight
        assert sum(1 for pid in group.pids() if command(pid) == b"sleep\037\0") <= 1
        time.sleep(0.2)


def test_failures_within_the_start_period_do_not_count(moorage: Moorage) -> None:
    """3.9: during --health-start-period failures are logged but the streak stays 0."""
    cid = run(
        moorage,
        "hc-slow",
        "--health-cmd",
        "false",
        *FAST,
        "--health-start-period",
        "60s",
        "--health-retries",
        "1",
    )
    assert wait_until(lambda: len((health_file(cid) or {}).get("Log", [])) >= 2)
    doc = health(moorage, "hc-slow")
    assert doc["Status"] == "starting" and doc["FailingStreak"] == 0
    assert all(e["ExitCode"] == 1 for e in doc["Log"])
    assert ps_status(moorage, "hc-slow").endswith("(health: starting)")


def test_health_stops_with_the_container_and_starts_again_with_it(moorage: Moorage) -> None:
    """Stopping ends the probes; a start begins at starting again and keeps the log."""
    cid = run(moorage, "hc-cycle", "--health-cmd", "true", *FAST)
    assert wait_until(lambda: status(cid) == "healthy")
    moorage.ok("stop", "-t", "1", "hc-cycle")
    kept = health_file(cid)["Log"]
    time.sleep(1.2)
    assert health_file(cid)["Log"] == kept
    assert ps_status(moorage, "hc-cycle").startswith("Exited")  # no health suffix
    moorage.ok("start", "hc-cycle")
    restarted = health_file(cid)
    assert restarted["Status"] == "starting" and restarted["Log"] == kept
    assert wait_until(lambda: status(cid) == "healthy")


@pytest.fixture
def checked_image(moorage: Moorage, tmp_path: Path) -> str:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        'HEALTHCHECK --interval=1s --timeout=2s CMD ["sh", "-c", "echo image-probe"]\n'
        'CMD ["sleep", "120"]\n'
    )
    moorage.ok("build", "-t", "hc-image:latest", str(tmp_path))
    yield "hc-image:latest"
    moorage("rm", "-f", "hc-from-image", "hc-disabled", "hc-overridden")
    moorage("rmi", "hc-image:latest")


def test_an_image_healthcheck_runs_and_no_healthcheck_turns_it_off(
    moorage: Moorage, checked_image: str
) -> None:
    """3.9: HEALTHCHECK in the image runs; --no-healthcheck and --health-cmd override it."""
    checked = moorage.ok("run", "-d", "--name", "hc-from-image", checked_image).strip()
    disabled = moorage.ok(
        "run", "-d", "--name", "hc-disabled", "--no-healthcheck", checked_image
    ).strip()
    overridden = moorage.ok(
        "run",
        "-d",
        "--name",
        "hc-overridden",
        "--health-cmd",
        "exit 1",
        "--health-retries",
        "1",
        checked_image,
    ).strip()
    assert wait_until(lambda: status(checked) == "healthy")
    assert health(moorage, "hc-from-image")["Log"][-1]["Output"] == "image-probe\n"
    # The flags replace the test and keep the image's interval and timeout.
    assert wait_until(lambda: status(overridden) == "unhealthy")
    config = json.loads(
        moorage.ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc-overridden")
    )
    assert config["Test"] == ["CMD-SHELL", "exit 1"]
    assert config["Interval"] == 1_000_000_000 and config["Timeout"] == 2_000_000_000
    # Disabled: no State.Health, no probe, no suffix.
    assert health(moorage, "hc-disabled") is None
    assert health_file(disabled) is None
    # As dockerd merges: NONE wins, the image's durations are carried along.
    assert json.loads(moorage.ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc-disabled"))[
        "Test"
    ] == ["NONE"]
    assert ps_status(moorage, "hc-disabled").startswith("Up")
    assert "(" not in ps_status(moorage, "hc-disabled")

    def names(value: str) -> set[str]:
        return set(
            moorage.ok("ps", "--filter", f"health={value}", "--format", "{{.Names}}").split()
        )

    assert names("healthy") == {"hc-from-image"}
    assert names("unhealthy") == {"hc-overridden"}
    assert names("none") == {"hc-disabled"}
    assert names("starting") == set()


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ("--health-interval", "abc"),
            'invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"',
        ),
        (
            ("--health-timeout", "5"),
            'invalid argument "5" for "--health-timeout" flag: time: missing unit in duration "5"',
        ),
        (
            ("--health-retries", "x"),
            'invalid argument "x" for "--health-retries" flag: strconv.ParseInt: parsing "x": '
            "invalid syntax",
        ),
        (("--health-retries", "-1"), "--health-retries cannot be negative"),
        (("--health-interval=-1s",), "--health-interval cannot be negative"),
        (("--health-start-period=-2s",), "--health-start-period cannot be negative"),
        (("--health-interval", "10us"), "Interval in Healthcheck cannot be less than 1ms"),
        (("--health-timeout", "999us"), "Timeout in Healthcheck cannot be less than 1ms"),
        (
            ("--no-healthcheck", "--health-cmd", "true"),
            "--no-healthcheck conflicts with --health-* options",
        ),
    ],
)
def test_bad_health_flags_are_refused_with_dockers_words_and_leave_nothing(
    moorage: Moorage, options: tuple[str, ...], message: str
) -> None:
    before = set(containers.store.ids())
    result = moorage("run", "-d", *options, "busybox", "sleep", "5")
    assert result.code == 125
    assert message in result.err
    assert set(containers.store.ids()) == before


def test_an_unknown_health_filter_value_is_refused(moorage: Moorage) -> None:
    result = moorage("ps", "--filter", "health=sick")
    assert result.code != 0
    assert "Unrecognised filter value for health: sick" in result.err
