"""Fixtures for kernel tests that drive the real ``moorage`` CLI.

``moorage`` runs the installed command in a subprocess, with the session's private
engine root, and after each test force-removes every container the test left, so a
failing test cannot leak processes, cgroups or mounts into the next one.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from runtime import containers, images
from runtime.network import links

CLI = [sys.executable, "-m", "runtime.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str


class Moorage:
    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> Result:
        done = subprocess.run(
            CLI + list(args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        result = self(*args, input=input, timeout=timeout)
        assert result.code == 0, f"moorage {' '.join(args)} failed ({result.code}): {result.err}"
        return result.out

    def popen(self, *args: str, **kwargs: object) -> subprocess.Popen:  # type: ignore[type-arg]
        return subprocess.Popen(CLI + list(args), **kwargs)  # type: ignore[call-overload]


def remove_all_containers() -> None:
    for cid in containers.store.ids():
        try:
            containers.remove(cid, force=True)
        except Exception as e:  # noqa: BLE001 - report, but keep cleaning the rest
            print(f"cleanup of {cid[:12]} failed: {e}", file=sys.stderr)


@pytest.fixture(scope="session")
def busybox() -> images.Image:
    return images.ensure_busybox()


@pytest.fixture
def moorage(busybox: images.Image) -> Moorage:
    # Again for each test (a no-op when it is there): a test of `image prune -a` or
    # `rmi` may remove busybox, and the tests after it must not depend on the order.
    images.ensure_busybox()
    yield Moorage()
    remove_all_containers()


@pytest.fixture(scope="session", autouse=True)
def _no_containers_outlive_the_session() -> None:
    yield
    if os.environ.get("MOORAGE_ROOT"):
        remove_all_containers()


@functools.cache
def bridges_available() -> bool:
    """Probe once per session: can this kernel make a bridge (the network tests' premise)?"""
    try:
        links.ensure_bridge("mt-probe0", "10.250.255.1", 30)
        links.delete("mt-probe0")
        return True
    except Exception:  # noqa: BLE001 - any failure means no bridges here
        return False
