"""The embedded DNS server's answers and forwarding, on real loopback sockets.

The server is the one containers get; here it listens in the test's own namespace (no
root needed), with a fixed directory of names and a small upstream server on loopback.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from runtime.network.dns import Directory, Resolver, answer, upstream_servers

DIRECTORY = Directory(
    names={
        "web": ["10.1.0.2"],
        "www": ["10.1.0.2"],
        "web.app": ["10.1.0.2"],
        "0123456789ab": ["10.1.0.2"],
    },
    reverse={"10.1.0.2": "web.app"},
)


class Upstream:
    """A tiny DNS server on loopback: answers example.test, stays silent if muted."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.muted = False
        self.seen = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            data, client = self.sock.recvfrom(4096)
            self.seen += 1
            if self.muted:
                continue
            query = DNSRecord.parse(data)
            reply = query.reply()
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("192.0.2.77"), ttl=5))
            self.sock.sendto(reply.pack(), client)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def resolver(upstream: Upstream) -> Iterator[Resolver]:
    server = Resolver(
        lambda: DIRECTORY,
        ["127.0.0.1"],
        address="127.0.0.1",
        port=0,
        upstream_port=upstream.port,
        try_timeout=0.2,
    )
    yield server
    server.close()


def ask(
    resolver: Resolver, name: str, qtype: str = "A", tcp: bool = False, timeout: float = 3.0
) -> DNSRecord:
    """Send one query and run the server's loop until the reply comes."""
    query = DNSRecord.question(name, qtype)
    if tcp:
        client = socket.create_connection(resolver.listener.getsockname())
        client.sendall(struct.pack("!H", len(query.pack())) + query.pack())
    else:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.sendto(query.pack(), resolver.udp.getsockname())
    client.setblocking(False)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([resolver, client], [], [], 0.05)
            if resolver in ready:
                resolver.on_readable()
            if client in ready:
                data += client.recv(65535)
                if not tcp:
                    break
                if len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0]:
                    data = data[2:]
                    break
        assert data, f"no answer for {name}"
    finally:
        client.close()
    reply = DNSRecord.parse(data)
    assert reply.header.id == query.header.id
    return reply


def test_container_names_aliases_and_short_ids_answer_with_their_address(
    resolver: Resolver,
) -> None:
    for name in ("web", "www", "WEB", "web.app", "0123456789ab"):
        reply = ask(resolver, name)
        assert [str(rr.rdata) for rr in reply.rr] == ["10.1.0.2"], name
        assert reply.header.rcode == RCODE.NOERROR


def test_a_container_name_has_no_ipv6_address_and_is_not_forwarded(
    resolver: Resolver, upstream: Upstream
) -> None:
    reply = ask(resolver, "web", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert upstream.seen == 0


def test_reverse_lookup_of_a_container_address_names_it(resolver: Resolver) -> None:
    reply = ask(resolver, "2.0.1.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web.app."]


def test_other_names_are_forwarded_and_come_back_with_the_askers_id(
    resolver: Resolver, upstream: Upstream
) -> None:
    reply = ask(resolver, "example.test")
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.77"]
    assert upstream.seen == 1


def test_queries_over_tcp_are_answered_and_forwarded(resolver: Resolver) -> None:
    assert [str(rr.rdata) for rr in ask(resolver, "www", tcp=True).rr] == ["10.1.0.2"]
    assert [str(rr.rdata) for rr in ask(resolver, "example.test", tcp=True).rr] == ["192.0.2.77"]


def test_a_silent_upstream_gets_servfail_after_its_tries(
    resolver: Resolver, upstream: Upstream
) -> None:
    upstream.muted = True
    started = time.monotonic()
    reply = ask(resolver, "example.test")
    assert reply.header.rcode == RCODE.SERVFAIL
    assert upstream.seen == 2  # tried twice, 0.2 s each
    assert time.monotonic() - started < 2


def test_answer_leaves_unknown_names_for_forwarding() -> None:
    assert answer(DNSRecord.question("db"), DIRECTORY) is None
    assert answer(DNSRecord.question("9.9.9.10.in-addr.arpa", "PTR"), DIRECTORY) is None


def test_upstreams_are_dns_flags_else_the_hosts_resolv_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search x\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.1\n")
    monkeypatch.setenv("MOORAGE_HOST_RESOLV_CONF", str(conf))
    assert upstream_servers() == ["127.0.0.53", "10.0.0.1"]
    assert upstream_servers(("9.9.9.9",)) == ["9.9.9.9"]
    conf.write_text("")
    assert upstream_servers() == ["8.8.8.8", "8.8.4.4"]
