"""Issue 3 follow-ups on the real kernel: the embedded DNS server after a live `network
connect`, `network rm` with only stopped containers attached, and IPv6 networks.

Traffic stays between containers on bridges the tests make (10.23x.0.0/24 and
fd00:…/64 subnets); nothing leaves the host.
"""

from __future__ import annotations

import json

import pytest

from runtime import paths
from runtime.network import links, nat, nftables, store
from tests.kernel import test_network_dns
from tests.kernel.conftest import Moorage, bridges_available

pytestmark = pytest.mark.skipif(not bridges_available(), reason="cannot create a bridge here")

SUBNET6 = "fd00:dead:beef::/64"
networks = test_network_dns.networks  # the fixture: made networks go after the containers


def create(moorage: Moorage, made: list[str], name: str, *options: str) -> str:
    network_id = moorage.ok("network", "create", *options, name).strip()
    made.append(name)
    return network_id


def settings(moorage: Moorage, name: str) -> dict:
    return json.loads(moorage.ok("inspect", name))[0]["NetworkSettings"]


def test_connecting_a_running_container_to_a_user_network_makes_its_dns_work_at_once(
    moorage: Moorage, networks: list[str]
) -> None:
    """S24 after `network connect`: the DNS server starts in the running container's
    monitor and resolv.conf names it; after a disconnect it keeps running (as Docker's)
    but knows nobody, and the next start goes back to the host's resolvers."""
    create(moorage, networks, "mt-dnsnet", "--subnet", "10.236.1.0/24")
    moorage.ok("run", "-d", "--name", "other", "--network", "mt-dnsnet", "busybox", "sleep", "100")
    moorage.ok("run", "-d", "--name", "late", "busybox", "sleep", "100")
    assert "127.0.0.11" not in moorage.ok("exec", "late", "cat", "/etc/resolv.conf")

    moorage.ok("network", "connect", "mt-dnsnet", "late")
    out = moorage.ok("exec", "late", "sh", "-c", "cat /etc/resolv.conf; nslookup other")
    assert "nameserver 127.0.0.11" in out
    assert f"Address: {settings(moorage, 'other')['Networks']['mt-dnsnet']['IPAddress']}" in out

    moorage.ok("network", "disconnect", "mt-dnsnet", "late")
    after = moorage("exec", "late", "nslookup", "other")
    assert "NXDOMAIN" in after.out + after.err  # the server answers, the name is gone
    moorage.ok("stop", "-t", "0", "late")
    moorage.ok("start", "late")
    assert "127.0.0.11" not in moorage.ok("exec", "late", "cat", "/etc/resolv.conf")


def test_a_container_without_a_network_cannot_be_connected_to_one(
    moorage: Moorage, networks: list[str]
) -> None:
    """Docker's ErrConflictNoNetwork: `--network none` stays alone."""
    create(moorage, networks, "mt-lonely", "--subnet", "10.236.5.0/24")
    moorage.ok("run", "-d", "--name", "hermit", "--network", "none", "busybox", "sleep", "100")
    result = moorage("network", "connect", "mt-lonely", "hermit")
    assert result.code != 0
    assert (
        "cannot be connected to multiple networks with one of the networks in private "
        "(none) mode" in result.err
    )
    links_inside = moorage.ok("exec", "hermit", "ip", "-o", "link").splitlines()
    assert [line.split(": ")[1] for line in links_inside] == ["lo"]


def test_network_rm_removes_a_network_only_stopped_containers_are_on(
    moorage: Moorage, networks: list[str]
) -> None:
    """As Docker: only active endpoints block `network rm`; the stopped container then
    fails to start with "network NAME not found", and starts again once a network of
    that name exists."""
    network_id = create(moorage, networks, "mt-gone", "--subnet", "10.236.2.0/24")
    moorage.ok("run", "-d", "--name", "idle", "--network", "mt-gone", "busybox", "sleep", "100")
    busy = moorage("network", "rm", "mt-gone")
    assert busy.code != 0
    assert (
        f"error while removing network: network mt-gone id {network_id} has active endpoints"
    ) in busy.err
    moorage.ok("stop", "-t", "0", "idle")
    assert moorage.ok("network", "rm", "mt-gone").strip() == "mt-gone"
    assert not links.exists(store.bridge_name(network_id))

    failed = moorage("start", "idle")
    assert failed.code != 0
    assert "network mt-gone not found" in failed.err

    create(moorage, networks, "mt-gone", "--subnet", "10.236.3.0/24")
    moorage.ok("start", "idle")
    assert settings(moorage, "idle")["Networks"]["mt-gone"]["IPAddress"].startswith("10.236.3.")


def ipv6_usable() -> bool:
    return links.ipv6_available()


@pytest.mark.skipif(
    not ipv6_usable(), reason="IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6)"
)
def test_an_ipv6_network_gives_addresses_a_gateway_ping_and_aaaa_records(
    moorage: Moorage, networks: list[str]
) -> None:
    create(moorage, networks, "mt-six", "--ipv6", "--subnet", "10.236.4.0/24", "--subnet", SUBNET6)
    moorage.ok("run", "-d", "--name", "six1", "--network", "mt-six", "busybox", "sleep", "100")
    entry = settings(moorage, "six1")["Networks"]["mt-six"]
    assert entry["GlobalIPv6Address"] == "fd00:dead:beef::2"
    assert (entry["GlobalIPv6PrefixLen"], entry["IPv6Gateway"]) == (64, "fd00:dead:beef::1")
    assert entry["IPAddress"] == "10.236.4.2"

    out = moorage.ok(
        "run",
        "--rm",
        "--network",
        "mt-six",
        "busybox",
        "sh",
        "-c",
        "ip -6 addr show eth0; ip -6 route; ping -6 -c1 -W2 six1; "
        "ping -6 -c1 -W2 fd00:dead:beef::1; nslookup -type=AAAA six1; "
        "cat /etc/hosts",
    )
    assert "inet6 fd00:dead:beef::3/64 scope global" in out
    assert "default via fd00:dead:beef::1 dev eth0" in out
    assert out.count("1 packets received") == 2, out
    assert "Address: fd00:dead:beef::2" in out
    assert "\nfd00:dead:beef::3\t" in out  # /etc/hosts names its IPv6 address too

    document = json.loads(moorage.ok("network", "inspect", "mt-six"))[0]
    assert document["EnableIPv6"] is True
    assert {"Subnet": SUBNET6, "Gateway": "fd00:dead:beef::1"} in document["IPAM"]["Config"]
    assert [c["IPv6Address"] for c in document["Containers"].values()] == ["fd00:dead:beef::2/64"]
    assert (
        moorage.ok("network", "ls", "-f", "name=mt-six", "--format", "{{.IPv6}}").strip() == "true"
    )


def test_the_default_bridge_stays_ipv4_only(moorage: Moorage) -> None:
    moorage.ok("run", "-d", "--name", "four", "busybox", "sleep", "100")
    data = settings(moorage, "four")
    assert data["IPAddress"] and data["GlobalIPv6Address"] == ""
    assert data["Networks"]["bridge"]["IPv6Gateway"] == ""
    assert json.loads(moorage.ok("network", "inspect", "bridge"))[0]["EnableIPv6"] is False


@pytest.mark.parametrize(
    "options, message",
    [
        (("--ipv6", "--subnet", "fd00:zz::/64"), "invalid CIDR address: fd00:zz::/64"),
        (("--ipv6", "--subnet", "fd00:dead::/130"), "invalid CIDR address"),
        (("--subnet", "fd00:beef::/64"), "IPv6 is not enabled"),
        (
            ("--ipv6", "--subnet", "fd00:1::/64", "--subnet", "fd00:2::/64"),
            "only one IPv4 and one IPv6 subnet",
        ),
        (("--ipv6", "--subnet", "fd00:1::/64", "--gateway", "fd00:2::1"), "not within subnet"),
    ],
)
def test_bad_ipv6_input_is_refused(
    moorage: Moorage, options: tuple[str, ...], message: str
) -> None:
    result = moorage("network", "create", *options, "mt-bad6")
    assert result.code != 0 and message in result.err, result.err
    assert moorage("network", "inspect", "mt-bad6").code != 0


@pytest.mark.skipif(not ipv6_usable(), reason="IPv6 is disabled on this host")
def test_overlapping_ipv6_subnets_are_refused(moorage: Moorage, networks: list[str]) -> None:
    create(moorage, networks, "mt-six-a", "--ipv6", "--subnet", "fd00:cafe::/48")
    result = moorage("network", "create", "--ipv6", "--subnet", "fd00:cafe:0:1::/64", "mt-six-b")
    if result.code == 0:
        networks.append("mt-six-b")  # for the cleanup, should the check below fail
    assert result.code != 0
    assert "overlaps with other one on this address space (fd00:cafe::/48" in result.err


@pytest.mark.parametrize("through", ["libnftables", "the nft binary"])
def test_nft_scripts_apply_and_list_in_process_or_through_the_binary(
    monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    if through == "the nft binary":
        monkeypatch.setattr(nftables, "_load", lambda: None)
    elif nftables._load() is None:
        pytest.skip("libnftables.so.1 cannot be loaded here")
    table = f"{paths.prefix()}-probe"
    try:
        assert nftables.run(f"add table ip {table}\nadd chain ip {table} c\n").ok
        listed = nftables.run(f"list table ip {table}\n", json=True)
        assert listed.ok
        assert [
            item["chain"]["name"] for item in json.loads(listed.out)["nftables"] if "chain" in item
        ] == ["c"]
        refused = nftables.run(f"add rule ip {table} missing-chain accept\n")
        assert not refused.ok and "No such file or directory" in refused.err
    finally:
        nftables.run(f"delete table ip {table}\n")
    assert "No such file" in nftables.run(f"list table ip {table}\n").err


@pytest.mark.skipif(not ipv6_usable(), reason="IPv6 is disabled on this host")
def test_the_ipv6_isolation_table_lives_as_long_as_an_ipv6_network(
    moorage: Moorage, networks: list[str]
) -> None:
    create(
        moorage,
        networks,
        "mt-six-t",
        "--ipv6",
        "--subnet",
        "10.236.6.0/24",
        "--subnet",
        "fd00:6::/64",
    )
    listing = nftables.run(f"list table ip6 {nat.table()}\n")
    assert listing.ok and "mt-br-" in listing.out
    moorage.ok("network", "rm", "mt-six-t")
    networks.remove("mt-six-t")
    assert not nftables.run(f"list table ip6 {nat.table()}\n").ok
