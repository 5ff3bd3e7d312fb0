"""IPv6 networks and the per-address IPAM, without root: files, text and DNS records."""

from __future__ import annotations

import json
import threading

import pytest
from dnslib import QTYPE, DNSRecord

from runtime.errors import InvalidSpec
from runtime.network import ipam, nat, netlink, store
from runtime.network.dns import Directory, answer
from tests.unit.test_network_store import private_root  # noqa: F401 - autouse fixture


def test_an_ipv6_network_keeps_its_subnet_and_takes_the_first_address_as_gateway():
    network = store.create("six", subnet="10.240.0.0/24", ipv6=True, subnet6="fd00:dead:beef::/64")
    again = store.get("six")
    assert (again.enable_ipv6, again.subnet6, again.gateway6, again.prefixlen6) == (
        True,
        "fd00:dead:beef::/64",
        "fd00:dead:beef::1",
        64,
    )
    assert ipam.allocate6(network, "a" * 64) == "fd00:dead:beef::2"
    assert ipam.allocate6(network, "b" * 64) == "fd00:dead:beef::3"
    assert ipam.allocate(network, "a" * 64) == "10.240.0.2"


def test_ipv6_without_a_subnet_gets_a_random_unique_local_64():
    network = store.create("ula", ipv6=True)
    assert network.subnet6.startswith("fd") and network.subnet6.endswith("::/64")
    assert network.subnet  # and an IPv4 subnet from the pool, as Docker


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"subnet6": "fd00::/64"}, "IPv6 is not enabled"),
        ({"ipv6": True, "subnet6": "fd00:zz::/64"}, "invalid CIDR"),
        ({"ipv6": True, "subnet6": "10.9.0.0/16"}, "invalid CIDR"),
        ({"ipv6": True, "subnet6": "fd00::/127"}, "too small"),
        ({"ipv6": True, "subnet6": "fd00::/64", "gateway6": "fd01::1"}, "not within subnet"),
    ],
)
def test_bad_ipv6_subnets_are_refused(kwargs, error):
    with pytest.raises(InvalidSpec, match=error):
        store.create("bad6", **kwargs)


def test_overlapping_ipv6_subnets_are_refused_and_ipv4_ones_do_not_clash_with_them():
    store.create("a6", subnet="10.240.1.0/24", ipv6=True, subnet6="fd00:1::/48")
    with pytest.raises(InvalidSpec, match=r"overlaps .*fd00:1::/48, network a6"):
        store.create("b6", subnet="10.240.2.0/24", ipv6=True, subnet6="fd00:1:0:5::/64")
    store.create("c6", subnet="10.240.3.0/24", ipv6=True, subnet6="fd00:2::/64")


def test_addresses_are_files_taken_once_even_by_racing_allocations():
    network = store.create("race", subnet="10.240.4.0/24")
    got: list[str] = []

    def take(n: int) -> None:
        got.append(ipam.allocate(network, f"{n:064d}"))

    threads = [threading.Thread(target=take, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 20
    assert ipam.allocations(network)[got[0]] in {f"{n:064d}" for n in range(20)}
    owner = ipam.allocations(network)[got[0]]
    assert ipam.release(network, owner) == [got[0]]
    assert got[0] not in ipam.allocations(network)


def test_an_ipam_json_of_an_older_version_is_converted_on_first_use():
    network = store.create("old", subnet="10.240.5.0/24")
    (network.directory / "ipam.json").write_text(json.dumps({"10.240.5.2": "a" * 64}))
    assert ipam.allocate(network, "b" * 64) == "10.240.5.3"
    assert ipam.allocations(network) == {"10.240.5.2": "a" * 64, "10.240.5.3": "b" * 64}
    assert not (network.directory / "ipam.json").exists()


def test_the_nft_script_has_an_ip6_isolation_twin_only_while_a_network_has_ipv6():
    four = store.create("four", subnet="10.240.6.0/24")
    assert f"delete table ip6 {nat.table()}" in nat.script([four])
    assert "ip6" not in nat.script([four], ip6_present=False)
    six = store.create("sixnat", subnet="10.240.7.0/24", ipv6=True, subnet6="fd00:7::/64")
    text = nat.script([four, six])
    twin = text.split(f"table ip6 {nat.table()} {{\n", 1)[1]
    assert "chain forward" in twin and "masquerade" not in twin
    assert f"delete table ip6 {nat.table()}" not in text


def test_an_ipv6_address_request_skips_duplicate_address_detection():
    request = netlink.new_address(7, "fd00::5", 64)
    family, prefixlen, flags, _scope, index = netlink._IFADDRMSG.unpack_from(request.body)
    assert (prefixlen, index) == (64, 7) and flags & netlink.IFA_F_NODAD
    assert family == 10  # AF_INET6


def test_container_names_answer_aaaa_with_their_ipv6_address_and_a_with_the_ipv4_one():
    directory = Directory(
        names={"web": ["10.1.0.2", "fd00::2"]},
        reverse={"10.1.0.2": "web.app", "fd00::2": "web.app"},
    )
    aaaa = answer(DNSRecord.question("web", "AAAA"), directory)
    assert aaaa is not None and [str(r.rdata) for r in aaaa.rr] == ["fd00::2"]
    a = answer(DNSRecord.question("web", "A"), directory)
    assert a is not None and [str(r.rdata) for r in a.rr] == ["10.1.0.2"]
    ptr = answer(
        DNSRecord.question(
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", "PTR"
        ),
        directory,
    )
    assert ptr is not None and ptr.rr[0].rtype == QTYPE.PTR
    assert str(ptr.rr[0].rdata) == "web.app."
