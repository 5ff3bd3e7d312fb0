"""The embedded DNS server (127.0.0.11) on the real kernel: names and aliases on shared
user-defined networks, none on the default bridge, and forwarding of other names.

Forwarding goes to a tiny DNS server this test runs on a loopback address of the host
(127.77.0.1:53), named by a resolv.conf the engine is pointed at with
MOORAGE_HOST_RESOLV_CONF; nothing is sent to a real resolver.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from tests.kernel.conftest import Moorage, bridges_available, remove_all_containers

FAKE_RESOLVER = "127.77.0.1"


pytestmark = pytest.mark.skipif(not bridges_available(), reason="cannot create a bridge here")


class FakeResolver:
    """Answers outside.test with 192.0.2.55 and everything else with NXDOMAIN."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((FAKE_RESOLVER, 53))
        self.asked: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            data, client = self.sock.recvfrom(4096)
            query = DNSRecord.parse(data)
            name = str(query.q.qname).rstrip(".")
            self.asked.append(name)
            reply = query.reply()
            if name == "outside.test" and query.q.qtype == QTYPE.A:
                reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("192.0.2.55"), ttl=5))
            elif name != "outside.test":
                reply.header.rcode = RCODE.NXDOMAIN
            self.sock.sendto(reply.pack(), client)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def fake_resolver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeResolver]:
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {FAKE_RESOLVER}\n")
    monkeypatch.setenv("MOORAGE_HOST_RESOLV_CONF", str(conf))
    server = FakeResolver()
    yield server
    server.close()


@pytest.fixture
def networks(moorage: Moorage) -> Iterator[list[str]]:
    """Names of networks the test made; removed after the containers at the end."""
    made: list[str] = []
    yield made
    remove_all_containers()
    for name in made:
        moorage("network", "rm", name)


def make_network(moorage: Moorage, made: list[str], name: str) -> None:
    moorage.ok("network", "create", name)
    made.append(name)


def ip_on(moorage: Moorage, name: str, network: str) -> str:
    return moorage.ok(
        "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', name
    ).strip()


def test_containers_on_a_user_network_resolve_each_other_by_name_alias_and_short_id(
    moorage: Moorage, networks: list[str], fake_resolver: FakeResolver
) -> None:
    """S24/S25: ping by name, the --network-alias, and resolv.conf naming 127.0.0.11."""
    make_network(moorage, networks, "dnsapp")
    cid = moorage.ok(
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "dnsapp",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "60",
    ).strip()
    address = ip_on(moorage, "c1", "dnsapp")
    script = (
        "cat /etc/resolv.conf; ping -c1 -W2 c1; ping -c1 -W2 database; "
        f"nslookup {cid[:12]}; nslookup c1.dnsapp"
    )
    out = moorage.ok("run", "--rm", "--network", "dnsapp", "busybox", "sh", "-c", script)
    assert "nameserver 127.0.0.11" in out
    assert f"PING c1 ({address})" in out
    assert f"PING database ({address})" in out
    assert out.count(f"Address: {address}") == 2
    assert fake_resolver.asked == []  # container names never leave the engine


def test_the_default_bridge_has_no_name_resolution(moorage: Moorage) -> None:
    """S23: ping b1 from another container on the default bridge: bad address."""
    moorage.ok("run", "-d", "--name", "b1", "busybox", "sleep", "60")
    result = moorage("run", "--rm", "busybox", "ping", "-c1", "-W1", "b1")
    assert result.code != 0
    assert "bad address 'b1'" in result.out + result.err


def test_names_resolve_only_for_containers_sharing_a_network(
    moorage: Moorage, networks: list[str], fake_resolver: FakeResolver
) -> None:
    """S25: c3 on othernet cannot resolve c1 on dnsapp (the name is forwarded, and the
    outside world does not know it either)."""
    make_network(moorage, networks, "dnsapp")
    make_network(moorage, networks, "othernet")
    moorage.ok("run", "-d", "--name", "c1", "--network", "dnsapp", "busybox", "sleep", "60")
    result = moorage("run", "--rm", "--network", "othernet", "busybox", "nslookup", "c1")
    assert "NXDOMAIN" in result.out + result.err
    assert "c1" in fake_resolver.asked


def test_other_names_are_forwarded_to_the_hosts_resolvers(
    moorage: Moorage, networks: list[str], fake_resolver: FakeResolver
) -> None:
    make_network(moorage, networks, "dnsapp")
    out = moorage.ok("run", "--rm", "--network", "dnsapp", "busybox", "nslookup", "outside.test")
    assert "Address: 192.0.2.55" in out
    assert "outside.test" in fake_resolver.asked
