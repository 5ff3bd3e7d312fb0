"""How ``--health-*`` flags merge over an image's HEALTHCHECK, and Docker's wording.

No root needed: ``runtime.health`` configuration is pure; the probes themselves are
tested in tests/kernel/test_health.py.
"""

from __future__ import annotations

import pytest

from runtime import health
from runtime.errors import InvalidSpec
from runtime.spec import ContainerSpec

IMAGE = {
    "Healthcheck": {
        "Test": ["CMD-SHELL", "curl -f localhost"],
        "Interval": 5 * 10**9,
        "Timeout": 2 * 10**9,
        "Retries": 4,
    }
}


def test_without_flags_the_image_healthcheck_applies_with_defaults_for_the_rest() -> None:
    check = health.effective(ContainerSpec(image="x"), IMAGE)
    assert check == health.Check(
        argv=("/bin/sh", "-c", "curl -f localhost"),
        interval=5 * 10**9,
        timeout=2 * 10**9,
        start_period=0,
        start_interval=0,
        retries=4,
    )


def test_a_flag_replaces_only_its_own_field() -> None:
    spec = ContainerSpec(image="x", health_cmd="true", health_retries=1)
    assert health.merged(spec, IMAGE) == {
        "Test": ["CMD-SHELL", "true"],
        "Retries": 1,
        "Interval": 5 * 10**9,
        "Timeout": 2 * 10**9,
    }


def test_no_healthcheck_and_healthcheck_none_disable_the_check() -> None:
    assert health.effective(ContainerSpec(image="x", no_healthcheck=True), IMAGE) is None
    assert health.effective(ContainerSpec(image="x"), {"Healthcheck": {"Test": ["NONE"]}}) is None
    assert health.effective(ContainerSpec(image="x"), {}) is None


def test_exec_form_runs_without_a_shell_and_shell_form_uses_the_images_shell() -> None:
    exec_form = {"Healthcheck": {"Test": ["CMD", "/bin/check", "--quick"]}}
    assert health.effective(ContainerSpec(image="x"), exec_form).argv == ("/bin/check", "--quick")
    shell = {"Shell": ["/bin/ash", "-eo"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]}}
    assert health.effective(ContainerSpec(image="x"), shell).argv == ("/bin/ash", "-eo", "true")
    defaults = health.effective(ContainerSpec(image="x", health_cmd="true"), {})
    assert (defaults.interval, defaults.timeout, defaults.retries) == (30 * 10**9, 30 * 10**9, 3)


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"no_healthcheck": True, "health_retries": 2},
            "--no-healthcheck conflicts with --health-* options",
        ),
        ({"health_timeout": -1}, "--health-timeout cannot be negative"),
        ({"health_interval": 999_999}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"health_start_period": 5}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ],
)
def test_bad_values_are_refused_with_dockers_words(fields: dict, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("*", r"\*")):
        health.validate(ContainerSpec(image="x", **fields))


@pytest.mark.parametrize(
    "nanos, text",
    [
        (500_000_000, "500ms"),
        (10**9, "1s"),
        (1_500_000_000, "1.5s"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"),
        (250_000, "250µs"),
    ],
)
def test_timeouts_are_shown_as_go_durations(nanos: int, text: str) -> None:
    assert health.go_duration(nanos) == text
