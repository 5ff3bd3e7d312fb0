"""runtime.network.netlink against the kernel: acks, errno, a veth into another netns.

Makes a bridge ``mt-nlbr0`` and veths ``mt-nlv*`` in the host namespace and a
``unshare -n sleep`` process for a namespace to move a peer into; removes all of them.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import KernelError
from runtime.network import links, netlink
from runtime.network.netlink import Netlink

BRIDGE = "mt-nlbr0"
VETH = "mt-nlv0"


@pytest.fixture
def bridge() -> Iterator[int]:
    with Netlink() as nl:
        try:
            nl.request(netlink.new_link(BRIDGE, "bridge"))
        except KernelError as e:
            pytest.skip(f"cannot create a bridge here: {e}")
        try:
            yield nl.index(BRIDGE)
        finally:
            nl.delete(VETH)
            nl.delete(BRIDGE)


@pytest.fixture
def netns_pid() -> Iterator[int]:
    child = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    try:
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{child.pid}/ns/net") == own:  # until unshare is done
            if child.poll() is not None:
                pytest.skip("unshare -n failed here")
        yield child.pid
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def test_looking_up_a_missing_link_raises_kernel_error_with_enodev() -> None:
    with Netlink() as nl, pytest.raises(KernelError) as caught:
        nl.index("mt-nl-missing")
    assert caught.value.errno == errno.ENODEV
    assert "look up link mt-nl-missing" in str(caught.value)


def test_creating_a_link_that_exists_raises_kernel_error_with_eexist(bridge: int) -> None:
    with Netlink() as nl, pytest.raises(KernelError) as caught:
        nl.request(netlink.new_link(BRIDGE, "bridge"))
    assert caught.value.errno == errno.EEXIST


def test_a_refused_request_carries_the_kernels_own_reason() -> None:
    with Netlink() as nl, pytest.raises(KernelError) as caught:
        nl.request(netlink.new_link("mt-nlx0", "no-such-kind"))
    assert caught.value.errno == errno.EOPNOTSUPP
    assert str(caught.value).startswith("create no-such-kind mt-nlx0: ")
    assert str(caught.value).count(":") >= 2  # NETLINK_EXT_ACK's sentence follows


def test_a_veth_peer_lands_in_the_pid_namespace_with_host_end_up_on_the_bridge(
    bridge: int, netns_pid: int
) -> None:
    links.add_veth(VETH, BRIDGE, netns_pid, "mt-nlp3", "02:42:0a:f6:00:05")
    host = Path("/sys/class/net") / VETH
    assert os.path.basename(os.readlink(host / "master")) == BRIDGE
    assert int((host / "flags").read_text(), 16) & netlink.IFF_UP
    assert not links.exists("mt-nlp3")  # the peer is not in the host namespace

    links.configure_inside(netns_pid, "mt-nlp3", "10.246.0.5", 24, "10.246.0.1")
    shown = subprocess.run(
        ["nsenter", "-t", str(netns_pid), "-n", "ip", "-o", "addr"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mt-nlp3" in shown and "inet 10.246.0.5/24 brd 10.246.0.255" in shown
    assert (
        "02:42:0a:f6:00:05"
        in subprocess.run(
            ["nsenter", "-t", str(netns_pid), "-n", "ip", "link", "show", "mt-nlp3"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    routes = subprocess.run(
        ["nsenter", "-t", str(netns_pid), "-n", "ip", "route"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "default via 10.246.0.1 dev mt-nlp3" in routes
    names = subprocess.run(
        ["nsenter", "-t", str(netns_pid), "-n", "ip", "-o", "link"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split(": ")[1].split("@")[0] for line in names.splitlines()] == ["lo", "mt-nlp3"]


@pytest.mark.skipif(not links.ipv6_available(), reason="IPv6 is disabled on this host")
def test_an_ipv6_address_is_usable_at_once_with_its_default_route(
    bridge: int, netns_pid: int
) -> None:
    """IFA_F_NODAD: no 'tentative' state to wait out before the first packet."""
    links.add_veth(VETH, BRIDGE, netns_pid, "mt-nlp3", "02:42:0a:f6:00:07")
    links.configure_inside(
        netns_pid, "mt-nlp3", "10.246.0.7", 24, None, "fd00:246::7", 64, "fd00:246::1"
    )
    shown = subprocess.run(
        ["nsenter", "-t", str(netns_pid), "-n", "ip", "-6", "addr", "show", "mt-nlp3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "inet6 fd00:246::7/64 scope global" in shown
    assert "tentative" not in shown.split("fd00:246::7")[1].split("\n")[0]
    routes = subprocess.run(
        ["nsenter", "-t", str(netns_pid), "-n", "ip", "-6", "route"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "default via fd00:246::1 dev mt-nlp3" in routes


def test_deleting_a_link_twice_reports_it_gone_the_second_time(bridge: int, netns_pid: int) -> None:
    links.add_veth(VETH, BRIDGE, netns_pid, "mt-nlp3", "02:42:0a:f6:00:06")
    assert links.delete(VETH) is True
    assert links.delete(VETH) is False
    assert not links.exists(VETH)
