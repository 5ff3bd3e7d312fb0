"""Session-end check: the test run fails if it left kernel objects or processes behind.

Every test cleans up what it made (STYLE.md). A test that forgets leaves a mount, a
cgroup, a veth or a process that outlives the run and disturbs the next one, and
nothing else would notice. This plugin looks once, after every fixture is torn down, for
what a test run may create:

- mounts in ``/proc/self/mountinfo`` that mention the test root or the test prefix;
- cgroup directories whose name starts with the prefix, in every hierarchy;
- network links named ``mt-*`` (veth names must fit in 15 bytes) or ``<prefix>*``;
- network namespaces under ``/run/netns`` named ``<prefix>*``;
- nftables tables named ``<prefix>*``;
- processes whose command line or environment mentions the test root.

It reads only; it never removes anything, so a human can see what was left.
Another test session running at the same time on the same machine uses the same prefix,
so its live objects count too: run kernel test sessions one at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Deep enough for <controller>/<prefix>/<id> and a nesting under a systemd slice.
CGROUP_DEPTH = 4
LINK_PREFIX = "mt-"


def find(test_root: Path, prefix: str) -> list[str]:
    """One line per object left behind; empty when the machine is clean."""
    return [
        *_mounts(test_root, prefix),
        *_cgroups(prefix),
        *_links(prefix),
        *_netns(prefix),
        *_nft_tables(prefix),
        *_processes(test_root),
    ]


def _mounts(test_root: Path, prefix: str) -> list[str]:
    found: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(test_root) in line or prefix in line:
            mount_point = line.split()[4]
            found.append(f"mount {mount_point}")
    return found


def _cgroups(prefix: str) -> list[str]:
    found: list[str] = []
    if not CGROUP_ROOT.is_dir():
        return found
    base_depth = len(CGROUP_ROOT.parts)
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        depth = len(Path(dirpath).parts) - base_depth
        for name in list(dirnames):
            if name.startswith(prefix):
                found.append(f"cgroup {dirpath}/{name}")
                dirnames.remove(name)  # its children are part of the same leftover
        if depth + 1 >= CGROUP_DEPTH:
            dirnames.clear()
    return found


def _links(prefix: str) -> list[str]:
    net = Path("/sys/class/net")
    if not net.is_dir():
        return []
    return [
        f"network link {name}"
        for name in sorted(os.listdir(net))
        if name.startswith(LINK_PREFIX) or name.startswith(prefix)
    ]


def _netns(prefix: str) -> list[str]:
    netns = Path("/run/netns")
    if not netns.is_dir():
        return []
    return [f"netns {name}" for name in sorted(os.listdir(netns)) if name.startswith(prefix)]


def _nft_tables(prefix: str) -> list[str]:
    nft = shutil.which("nft")
    if nft is None:
        return []
    result = subprocess.run(
        [nft, "list", "tables"], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:  # not root, or no nf_tables: nothing a test could have made
        return []
    found: list[str] = []
    for line in result.stdout.splitlines():
        words = line.split()  # "table inet moorage-test-nat"
        if len(words) == 3 and words[2].startswith(prefix):
            found.append(f"nftables table {words[1]} {words[2]}")
    return found


def _processes(test_root: Path) -> list[str]:
    me = os.getpid()
    needle = str(test_root).encode()
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile, or not ours to read
        if needle in cmdline or needle in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"process {entry.name}: {shown or '(no command line)'}")
    return found


class LeftoverCheck:
    """The pytest plugin: registered by tests/conftest.py with the session's test root."""

    def __init__(self, test_root: Path, prefix: str) -> None:
        self.test_root = test_root
        self.prefix = prefix
        self.found: list[str] = []

    # trylast: after pytest's own sessionfinish has torn down session-scoped fixtures.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.found = find(self.test_root, self.prefix)
        if self.found and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.found:
            return
        terminalreporter.section("left behind by the tests", red=True, bold=True)
        for line in self.found:
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"The run fails: each test must remove what it made. {self.test_root} is kept."
        )
