"""Test-session setup shared by every suite: a private engine root, and the leftover check.

Before collection imports any test module, ``pytest_configure`` points ``MOORAGE_ROOT``
and ``MOORAGE_RUN`` at fresh directories under ``/var/tmp`` (the root ext4, where overlay
upper dirs work; tmpfs would not take some of them) and sets ``MOORAGE_PREFIX`` to
``moorage-test`` so the run's cgroups, links and netns are told apart from real ones.
Nothing a test does can reach ``/var/lib/moorage`` or ``/run/moorage``.

At the end the leftover check (tests/leftovers.py) fails the run if anything is left;
only then is the test root removed, and it is kept when something was left, because
removing a tree with a mount still in it would reach through the mount.

Test sessions on one machine take turns (an flock on ``/var/tmp/moorage-test.lock``):
they share one prefix, the host's cgroup trees and its links, so a second session
running alongside would trip over the first one's objects and its leftover check would
report them. xdist workers run under their controller's turn.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.leftovers import LeftoverCheck

TEST_PREFIX = "moorage-test"
# MOORAGE_TEST_TMPDIR moves the test roots elsewhere, e.g. onto a disk with more room.
TEST_PARENT = Path(os.environ.get("MOORAGE_TEST_TMPDIR", "/var/tmp"))
TURN_WAIT = 900  # seconds; longer than any sane session on this 2-core machine


@dataclass(frozen=True)
class MoorageDirs:
    base: Path
    root: Path
    run: Path
    prefix: str


_dirs_key = pytest.StashKey[MoorageDirs]()
_check_key = pytest.StashKey[LeftoverCheck]()
_lock_key = pytest.StashKey[int]()


def _take_turn() -> int:
    """Wait until no other test session runs on this machine; the fd holds the turn."""
    path = TEST_PARENT / f"{TEST_PREFIX}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + TURN_WAIT
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        # A bounded wait: a stray process that forked from a crashed session (and so
        # shares its lock) must not stall every later run without a word.
        if time.monotonic() > deadline:
            os.close(fd)
            raise pytest.UsageError(
                f"another Moorage test session has held {path} for {TURN_WAIT} s; "
                f"`fuser -v {path}` shows which process"
            )
        if not announced:
            print("waiting for another Moorage test session to finish ...", file=sys.stderr)
            announced = True
        time.sleep(0.5)


def pytest_configure(config: pytest.Config) -> None:
    TEST_PARENT.mkdir(parents=True, exist_ok=True)
    if "PYTEST_XDIST_WORKER" not in os.environ:
        config.stash[_lock_key] = _take_turn()
    base = Path(tempfile.mkdtemp(prefix=f"{TEST_PREFIX}-{os.getpid()}-", dir=TEST_PARENT))
    dirs = MoorageDirs(base=base, root=base / "root", run=base / "run", prefix=TEST_PREFIX)
    dirs.root.mkdir()
    dirs.run.mkdir()
    os.environ["MOORAGE_ROOT"] = str(dirs.root)
    os.environ["MOORAGE_RUN"] = str(dirs.run)
    os.environ["MOORAGE_PREFIX"] = TEST_PREFIX
    # docker.io images come from a closed loopback port: a missing image fails at once
    # and no test sends a packet off the machine (port 9, discard, is not served here).
    os.environ["MOORAGE_DOCKER_HUB"] = "127.0.0.1:9"
    # Links named mt-* (the leftover check finds them), on subnets a real engine on this
    # host does not use (its defaults are 10.203.0.0/16 and a pool in 10.208.0.0/12).
    os.environ["MOORAGE_LINK_PREFIX"] = "mt-"
    os.environ["MOORAGE_BRIDGE"] = "mt-br0"
    os.environ["MOORAGE_DEFAULT_SUBNET"] = "10.231.0.0/16"
    os.environ["MOORAGE_ADDRESS_POOL"] = "10.232.0.0/13"
    config.stash[_dirs_key] = dirs
    check = LeftoverCheck(base, TEST_PREFIX)
    config.stash[_check_key] = check
    config.pluginmanager.register(check, "moorage-leftover-check")


def pytest_unconfigure(config: pytest.Config) -> None:
    dirs = config.stash.get(_dirs_key, None)
    check = config.stash.get(_check_key, None)
    if dirs is not None and check is not None and not check.found:
        shutil.rmtree(dirs.base, ignore_errors=True)
    lock = config.stash.get(_lock_key, None)
    if lock is not None:
        os.close(lock)


@pytest.fixture(scope="session", autouse=True)
def _networks_go_at_the_end() -> Iterator[None]:
    """Bridges and nft tables outlive their containers (as docker0 does), so the last
    thing a session does, after every suite's own teardown, is remove them."""
    yield
    if os.geteuid() == 0:
        from runtime.network import gc as network_gc

        network_gc.remove_everything()


@pytest.fixture(scope="session", autouse=True)
def _warm_servers_end_with_the_session(pytestconfig: pytest.Config) -> Iterator[None]:
    """The session's `moorage` commands start a warm server in its run dir; it is the
    session's own process, and ends with it (the leftover check would find it)."""
    yield
    dirs = pytestconfig.stash.get(_dirs_key, None)
    if dirs is not None and dirs.run.exists():
        from runtime.cli import warm_server

        warm_server.stop(str(dirs.run))


@pytest.fixture(scope="session")
def moorage_dirs(pytestconfig: pytest.Config) -> MoorageDirs:
    """The session's engine root, run dir and kernel-object prefix (already in os.environ)."""
    return pytestconfig.stash[_dirs_key]
