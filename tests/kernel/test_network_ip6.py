"""``--ip6`` on ``run`` and ``network connect``: a chosen IPv6 address on a user network.

As docker's: the address must lie in the network's IPv6 subnet (not its gateway), only
user-defined networks with IPv6 take one, and ``inspect`` shows it under
``IPAMConfig.IPv6Address`` and ``GlobalIPv6Address``. Traffic stays on bridges the tests
make (fd00:… subnets); nothing leaves the host.
"""

from __future__ import annotations

import pytest

from tests.kernel.conftest import Moorage
from tests.kernel.test_network_followups import create, ipv6_usable, networks, settings

pytestmark = [
    pytest.mark.usefixtures("networks"),
    pytest.mark.skipif(
        not ipv6_usable(), reason="IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6)"
    ),
]
__all__ = ["networks"]  # the fixture, imported so this module's tests can use it

SUBNET6 = "fd00:6:6::/64"


def test_run_and_connect_take_a_chosen_ipv6_address(moorage: Moorage, networks: list[str]) -> None:  # noqa: F811
    create(moorage, networks, "ip6-a", "--ipv6", "--subnet", "10.237.1.0/24", "--subnet", SUBNET6)
    create(
        moorage,
        networks,
        "ip6-b",
        "--ipv6",
        "--subnet",
        "10.237.2.0/24",
        "--subnet",
        "fd00:6:7::/64",
    )
    moorage.ok(
        "run",
        "-d",
        "--name",
        "chosen6",
        "--network",
        "ip6-a",
        "--ip6",
        "fd00:6:6::66",
        "busybox",
        "sleep",
        "100",
    )
    entry = settings(moorage, "chosen6")["Networks"]["ip6-a"]
    assert entry["GlobalIPv6Address"] == "fd00:6:6::66"
    assert entry["IPAMConfig"] == {"IPv6Address": "fd00:6:6::66"}
    assert entry["IPAddress"] == "10.237.1.2"  # IPv4 still from the pool

    # Reachable at that address from another container on the network.
    out = moorage.ok(
        "run",
        "--rm",
        "--network",
        "ip6-a",
        "busybox",
        "sh",
        "-c",
        "ping -6 -c1 -W2 fd00:6:6::66 && nslookup -type=AAAA chosen6",
    )
    assert "1 packets received" in out and "Address: fd00:6:6::66" in out

    moorage.ok("network", "connect", "--ip6", "fd00:6:7::77", "ip6-b", "chosen6")
    entry = settings(moorage, "chosen6")["Networks"]["ip6-b"]
    assert entry["GlobalIPv6Address"] == "fd00:6:7::77"
    assert entry["IPAMConfig"] == {"IPv6Address": "fd00:6:7::77"}
    inside = moorage.ok("exec", "chosen6", "ip", "-6", "addr")
    assert "inet6 fd00:6:7::77/64 scope global" in inside

    # The same address again is taken; the container keeps it across a restart.
    taken = moorage("run", "--rm", "--network", "ip6-a", "--ip6", "fd00:6:6::66", "busybox", "true")
    assert taken.code == 125 and "Address already in use: fd00:6:6::66" in taken.err
    moorage.ok("restart", "-t", "0", "chosen6")
    assert settings(moorage, "chosen6")["Networks"]["ip6-a"]["GlobalIPv6Address"] == "fd00:6:6::66"


@pytest.mark.parametrize(
    "network_options, ip6, message",
    [
        ((), "fd00:6:8::5", "network ip6-bad has no IPv6 subnet"),
        (
            ("--ipv6", "--subnet", "fd00:6:8::/64"),
            "fd00:6:9::5",
            "does not belong to any of this network's subnets (fd00:6:8::/64)",
        ),
        (("--ipv6", "--subnet", "fd00:6:8::/64"), "fd00:6:8::1", "it is the gateway of network"),
        (("--ipv6", "--subnet", "fd00:6:8::/64"), "fd00:6:8::zz", "invalid IPv6 address"),
        (("--ipv6", "--subnet", "fd00:6:8::/64"), "10.237.3.5", "invalid IPv6 address"),
    ],
)
def test_a_bad_ip6_is_refused_and_creates_nothing(
    moorage: Moorage,
    networks: list[str],
    network_options: tuple[str, ...],  # noqa: F811
    ip6: str,
    message: str,
) -> None:
    create(moorage, networks, "ip6-bad", "--subnet", "10.237.3.0/24", *network_options)
    before = moorage.ok("ps", "-aq")
    result = moorage(
        "run", "--name", "bad6", "--network", "ip6-bad", "--ip6", ip6, "busybox", "true"
    )
    assert result.code == 125 and message in result.err, result.err
    assert moorage.ok("ps", "-aq") == before
    moorage.ok("run", "-d", "--name", "plain6", "busybox", "sleep", "100")
    refused = moorage("network", "connect", "--ip6", ip6, "ip6-bad", "plain6")
    assert refused.code != 0 and message in refused.err, refused.err
    assert list(settings(moorage, "plain6")["Networks"]) == ["bridge"]


def test_ip6_is_refused_off_user_networks(moorage: Moorage) -> None:
    on_bridge = moorage("run", "--rm", "--ip6", "fd00:6:a::5", "busybox", "true")
    assert on_bridge.code == 125
    assert "supported on user defined networks only" in on_bridge.err
    no_network = moorage(
        "run", "--rm", "--network", "none", "--ip6", "fd00:6:a::5", "busybox", "true"
    )
    assert no_network.code == 125 and "conflicting options: --ip, --ip6" in no_network.err
