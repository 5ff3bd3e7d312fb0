"""Bad input through the real ``moorage`` CLI: a clear one-line error, Docker's exit
code, and nothing changed.

``run``/``create`` refuse with 125 (engine error) before anything is created; verbs on a
missing container exit 1 with "No such container"; a command that cannot run exits 127
(not found) or 126 (not executable), leaving the container ``Created`` as Docker does;
``exec`` into a stopped or paused container exits 126. After each refusal ``ps -a``
lists exactly what it listed before, in the same states.
"""

from __future__ import annotations

import os

import pytest

from tests.kernel.conftest import Result

TOO_MANY_CPUS = str((os.cpu_count() or 1) + 1)


def snapshot(moorage) -> list[str]:
    return moorage.ok(
        "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}"
    ).splitlines()


def refused(moorage, args: list[str], code: int, message: str) -> Result:
    """Run ``moorage args``; it must fail with ``code``, say ``message`` in one line on
    stderr, and leave every container as it was."""
    before = snapshot(moorage)
    result = moorage(*args)
    assert result.code == code, f"exit {result.code}, stderr: {result.err}"
    assert message.lower() in result.err.lower(), result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    assert snapshot(moorage) == before
    return result


@pytest.fixture
def taken(moorage) -> str:
    """A running container named ``taken``."""
    return moorage.ok("run", "-d", "--name", "taken", "busybox", "sleep", "1000").strip()


# ---------------------------------------------------------------- run and create: 125

RUN_REFUSALS = {
    "invalid name": (["--name", "bad name!", "busybox", "true"], "Invalid container name"),
    "memory that is not a size": (["-m", "12x", "busybox", "true"], "invalid size"),
    "memory below the minimum": (
        ["-m", "4m", "busybox", "true"],
        "Minimum memory limit allowed is 6MB",
    ),
    "cpus that is not a number": (
        ["--cpus", "abc", "busybox", "true"],
        'invalid argument "abc" for "--cpus"',
    ),
    "more cpus than the host has": (
        ["--cpus", TOO_MANY_CPUS, "busybox", "true"],
        "Range of CPUs is from 0.01",
    ),
    "unknown restart policy": (
        ["--restart", "sometimes", "busybox", "true"],
        "invalid restart policy",
    ),
    "retry count on always": (
        ["--restart", "always:3", "busybox", "true"],
        "maximum retry count cannot be used",
    ),
    "rm with a restart policy": (
        ["--rm", "--restart", "always", "busybox", "true"],
        "Conflicting options: --restart and --rm",
    ),
    "swap below memory": (
        ["-m", "64m", "--memory-swap", "32m", "busybox", "true"],
        "memoryswap limit should be larger than memory limit",
    ),
    "unknown stop signal": (["--stop-signal", "SIGNOPE", "busybox", "true"], "invalid signal"),
}


@pytest.mark.parametrize("case", list(RUN_REFUSALS), ids=lambda case: case.replace(" ", "_"))
def test_run_refuses_bad_input_with_125_and_creates_nothing(moorage, case):
    args, message = RUN_REFUSALS[case]
    refused(moorage, ["run", *args], 125, message)
    refused(moorage, ["run", "-d", *args], 125, message)
    assert snapshot(moorage) == []


def test_create_refuses_bad_input_with_125_and_creates_nothing(moorage):
    refused(moorage, ["create", "-m", "4m", "busybox", "true"], 125, "Minimum memory limit")
    assert snapshot(moorage) == []


@pytest.mark.parametrize("verb", [["run"], ["run", "-d"], ["create"]])
def test_an_unknown_image_is_looked_for_in_its_registry_then_refused_with_125(moorage, verb):
    """Like docker: 'Unable to find image' locally, then the registry's error (here the
    closed loopback port the tests put in place of Docker Hub), and nothing created."""
    result = moorage(*verb, "nosuchimage", "true")
    assert result.code == 125, result.err
    lines = result.err.strip().splitlines()
    assert lines[0] == "Unable to find image 'nosuchimage:latest' locally", result.err
    assert len(lines) == 2 and lines[1].startswith("Error response from daemon:"), result.err
    assert "refused" in lines[1].lower() and "Traceback" not in result.err
    assert snapshot(moorage) == []
    never = moorage(*verb, "--pull", "never", "nosuchimage", "true")
    assert (never.code, never.err.strip()) == (
        125,
        "Error response from daemon: No such image: nosuchimage:latest",
    )


def test_run_with_a_name_in_use_is_refused_with_125(moorage, taken):
    result = refused(
        moorage,
        ["run", "--name", "taken", "busybox", "true"],
        125,
        'The container name "/taken" is already in use',
    )
    assert taken in result.err  # names the container that holds the name
    refused(moorage, ["create", "--name", "taken", "busybox", "true"], 125, "already in use")


# ---------------------------------------------------------------- commands that cannot run


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        ("nosuchcmd", 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
        ("/etc/passwd", 126, 'exec: "/etc/passwd": permission denied'),
    ],
    ids=["not_found_exits_127", "not_executable_exits_126"],
)
def test_a_command_that_cannot_run_fails_and_leaves_the_container_created(
    moorage, command, code, message
):
    result = moorage("run", "--name", "broken", "busybox", command)
    assert result.code == code and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert snapshot(moorage)[0].endswith(" broken created")
    assert (
        moorage.ok(
            "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}", "broken"
        )
        == f"created {code} 0\n"
    )
    detached = moorage("run", "-d", "busybox", command)
    assert detached.code == code and detached.out == ""
    with_rm = moorage("run", "--rm", "busybox", command)
    assert with_rm.code == code
    assert len(snapshot(moorage)) == 2  # broken and the detached one; --rm left nothing


# ---------------------------------------------------------------- missing containers: 1


MISSING = [
    ["stop", "nope"],
    ["rm", "nope"],
    ["rm", "-f", "nope"],
    ["logs", "nope"],
    ["kill", "nope"],
    ["start", "nope"],
    ["restart", "nope"],
    ["pause", "nope"],
    ["unpause", "nope"],
    ["wait", "nope"],
    ["container", "inspect", "nope"],
    ["exec", "nope", "true"],
    ["rename", "nope", "newname"],
]


@pytest.mark.parametrize("args", MISSING, ids=lambda args: "_".join(args[:2]).strip("-"))
def test_verbs_on_an_unknown_container_exit_1_with_no_such_container(moorage, taken, args):
    refused(moorage, args, 1, "No such container: nope")


def test_inspect_of_an_unknown_object_exits_1_and_prints_an_empty_list(moorage, taken):
    result = refused(moorage, ["inspect", "nope"], 1, "No such object: nope")
    assert result.out.strip() == "[]"


def test_an_ambiguous_id_prefix_is_an_error_not_a_guess(moorage):
    ids = [moorage.ok("create", "busybox", "true").strip() for _ in range(20)]
    shared = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)
    refused(moorage, ["rm", shared], 1, "multiple containers match")


# ---------------------------------------------------------------- wrong state


def test_rm_of_a_running_container_without_force_exits_1_and_keeps_it_running(moorage, taken):
    refused(moorage, ["rm", "taken"], 1, "cannot remove a running container")
    assert moorage.ok("inspect", "-f", "{{.State.Running}}", "taken") == "true\n"


def test_exec_into_a_stopped_container_exits_126_saying_it_is_not_running(moorage, taken):
    moorage.ok("stop", "-t", "0", "taken")
    refused(moorage, ["exec", "taken", "true"], 126, "is not running")
    assert (
        moorage.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "taken")
        == "exited 137\n"
    )


def test_exec_into_a_paused_container_exits_126_saying_it_is_paused(moorage, taken):
    moorage.ok("pause", "taken")
    refused(moorage, ["exec", "taken", "true"], 126, "is paused")
    assert moorage.ok("inspect", "-f", "{{.State.Status}}", "taken") == "paused\n"


def test_kill_with_an_unknown_signal_exits_1_and_leaves_the_container_running(moorage, taken):
    refused(moorage, ["kill", "-s", "SIGNOPE", "taken"], 1, "invalid signal")
    assert moorage.ok("inspect", "-f", "{{.State.Status}}", "taken") == "running\n"


def test_kill_of_a_stopped_container_exits_1_saying_it_is_not_running(moorage, taken):
    moorage.ok("stop", "-t", "0", "taken")
    refused(moorage, ["kill", "taken"], 1, "is not running")


def test_rename_to_an_invalid_name_exits_1_and_keeps_the_old_name(moorage, taken):
    refused(moorage, ["rename", "taken", "bad name!"], 1, "Invalid container name")
    assert moorage.ok("inspect", "-f", "{{.Name}}", taken) == "/taken\n"


# ---------------------------------------------------------------- malformed options


@pytest.mark.parametrize(
    "args",
    [
        ["ps", "-a", "--format", "{{.ID"],
        ["inspect", "--format", "{{.ID", "taken"],
    ],
    ids=["ps", "inspect"],
)
def test_a_malformed_format_template_is_a_parsing_error_with_no_output(moorage, taken, args):
    result = moorage(*args)
    assert result.code != 0 and result.out == ""
    assert "template parsing error" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_ps_with_an_unknown_filter_is_refused(moorage, taken):
    refused(moorage, ["ps", "--filter", "colour=blue"], 1, "invalid filter")


def test_logs_with_a_tail_that_is_not_a_number_is_refused(moorage, taken):
    refused(moorage, ["logs", "--tail", "lots", "taken"], 1, "invalid value for --tail")
