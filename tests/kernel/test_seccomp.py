"""The default seccomp filter, through the real CLI (issue 2's security model).

Docker's default profile keeps namespace creation, mounts, keyrings, module loading and
the like from containers; ``--cap-add`` opens a capability's syscalls, and
``--privileged`` or ``--security-opt seccomp=unconfined`` load no filter.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("busybox")

SECCOMP_MODE = "sed -n 's/^Seccomp:\\t//p' /proc/self/status"


def test_a_default_container_runs_under_a_seccomp_filter(moorage):
    assert moorage.ok("run", "--rm", "busybox", "sh", "-c", SECCOMP_MODE) == "2\n"


def test_the_filter_refuses_a_user_namespace_that_needs_no_capability(moorage):
    refused = moorage("run", "--rm", "busybox", "unshare", "-U", "true")
    assert refused.code != 0
    assert "Operation not permitted" in refused.err + refused.out
    # The same command with the filter off shows that only the filter stood in the way.
    assert (
        moorage.ok(
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "unshare",
            "-U",
            "true",
        )
        == ""
    )


def test_unconfined_and_privileged_containers_get_no_filter(moorage):
    for options in (["--security-opt", "seccomp=unconfined"], ["--privileged"]):
        assert moorage.ok("run", "--rm", *options, "busybox", "sh", "-c", SECCOMP_MODE) == "0\n"


def test_cap_add_sys_admin_lets_mount_through(moorage):
    script = (
        "mkdir -p /scratch && mount -t tmpfs none /scratch && "
        "grep -c ' /scratch tmpfs' /proc/mounts"
    )
    assert (
        moorage.ok("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", script) == "1\n"
    )
    denied = moorage("run", "--rm", "busybox", "sh", "-c", script)
    assert denied.code != 0


def test_exec_processes_are_filtered_too(moorage):
    moorage.ok("run", "-d", "--name", "filtered", "busybox", "sleep", "100")
    assert moorage.ok("exec", "filtered", "sh", "-c", SECCOMP_MODE) == "2\n"
    assert moorage("exec", "filtered", "unshare", "-U", "true").code != 0


@pytest.mark.parametrize("option", ["seccomp=/etc/profile.json", "bogus", "apparmor=x"])
def test_an_unknown_security_option_fails_before_anything_is_made(moorage, option):
    result = moorage("run", "--rm", "--security-opt", option, "busybox", "true")
    assert result.code == 125
    assert "security-opt" in result.err or "seccomp" in result.err
    assert moorage.ok("ps", "-a", "-q") == ""
