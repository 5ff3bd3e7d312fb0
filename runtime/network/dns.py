"""The embedded DNS server: Docker's 127.0.0.11 for containers on user-defined networks.

``serve`` runs in the container's monitor: it setns(2)s into the container's network
namespace just long enough to open a UDP socket and a TCP listener on 127.0.0.11:53
(sockets keep the namespace they were made in), then opens its upstream socket back in
the host's namespace, so host resolvers on loopback (127.0.0.53 ...) work too. The
resulting ``Resolver`` is one Service for the monitor's selector loop: an epoll(7)
instance holding those sockets, TCP clients and a timerfd for upstream deadlines.

It answers A, AAAA (on networks with IPv6) and PTR for the names, ``--network-alias``
aliases and short ids of the containers that share a user-defined network with the
asker (``name.network`` too), reading endpoints afresh per query. Every other name is
forwarded, as Docker does, to ``--dns`` servers or else the host's resolv.conf
nameservers (``MOORAGE_HOST_RESOLV_CONF`` names another file), each try TRY_TIMEOUT
seconds, SERVFAIL when all fail. Owns nothing on disk; never answers for containers the
asker shares no user-defined network with.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSError, DNSRecord

from runtime import syscalls
from runtime.errors import KernelError, MoorageError, NotFound
from runtime.network import links

if TYPE_CHECKING:
    from runtime.containers.store import Record
    from runtime.network import Service

ADDRESS = "127.0.0.11"
PORT = 53
TTL = 600  # what Docker's resolver gives its records
TRY_TIMEOUT = 2.0  # seconds per upstream try
TRIES = 2  # tries in all, round the upstream list: SERVFAIL within 4 s
MAX_PENDING = 256
MAX_TCP_CLIENTS = 64
MAX_TCP_BUFFER = 128 * 1024
IP_FREEBIND = 15  # <linux/in.h>; Python 3.11 does not name it
FALLBACK_SERVERS = ("8.8.8.8", "8.8.4.4")  # Docker's, when the host has none usable

IN, OUT, ERR, HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP


@dataclass(frozen=True)
class Directory:
    """What one container may resolve: name → addresses (IPv4 and IPv6), address →
    name."""

    names: dict[str, list[str]]
    reverse: dict[str, str]


def answer(query: DNSRecord, directory: Directory) -> DNSRecord | None:
    """The reply for a name we know, or None when the query must be forwarded."""
    if not query.questions:
        return None
    question = query.q
    name = str(question.qname).rstrip(".").lower()
    if question.qtype == QTYPE.PTR:
        target = _reverse_ip(name)
        if target is None or target not in directory.reverse:
            return None
        reply = query.reply()
        reply.add_answer(
            RR(question.qname, QTYPE.PTR, rdata=PTR(directory.reverse[target] + "."), ttl=TTL)
        )
        return reply
    addresses = directory.names.get(name)
    if addresses is None:
        return None
    reply = query.reply()
    for ip in addresses:
        v6 = ":" in ip
        if question.qtype == QTYPE.ANY or question.qtype == (QTYPE.AAAA if v6 else QTYPE.A):
            reply.add_answer(
                RR(
                    question.qname,
                    QTYPE.AAAA if v6 else QTYPE.A,
                    rdata=AAAA(ip) if v6 else A(ip),
                    ttl=TTL,
                )
            )
    # Other types of a container's name (AAAA without IPv6, MX ...) get an empty NOERROR:
    # forwarding them would only wait on the outside world for a name it cannot know.
    return reply


def _reverse_ip(name: str) -> str | None:
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32:
            return None
        try:
            return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
        except ValueError:
            return None
    if not name.endswith(".in-addr.arpa"):
        return None
    octets = name[: -len(".in-addr.arpa")].split(".")
    if len(octets) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(octets))))
    except ValueError:
        return None


def servfail(query: DNSRecord) -> DNSRecord:
    reply = query.reply(ra=1, aa=0)
    reply.header.rcode = RCODE.SERVFAIL
    return reply


def directory_for(cid: str) -> Directory:
    """Names visible from container ``cid``: containers on its user-defined networks."""
    from runtime.containers import store as containers
    from runtime.network import endpoints as endpoints_module
    from runtime.network import store as networks

    names: dict[str, list[str]] = {}
    reverse: dict[str, str] = {}
    for mine in endpoints_module.endpoints_of(cid):
        if not mine.user_defined:
            continue
        for other in networks.containers_on(mine.network_id):
            try:
                record = containers.load(other)
            except NotFound:
                continue  # removed while we looked
            for endpoint in endpoints_module.endpoints_of(other):
                if endpoint.network_id != mine.network_id:
                    continue
                keys = [
                    record.name,
                    record.id[:12],
                    *endpoint.aliases,
                    f"{record.name}.{endpoint.network_name}",
                ]
                ips = [endpoint.ip] + ([endpoint.ip6] if endpoint.ip6 else [])
                for key in keys:
                    found = names.setdefault(key.lower(), [])
                    found += [ip for ip in ips if ip not in found]
                for ip in ips:
                    reverse.setdefault(ip, f"{record.name}.{endpoint.network_name}")
    return Directory(names, reverse)


def upstream_servers(dns: Sequence[str] = ()) -> list[str]:
    """``--dns`` servers if given, else the host's resolv.conf nameservers (IPv4)."""
    servers = [s for s in dns if _is_ipv4(s)]
    if servers:
        return servers
    path = os.environ.get("MOORAGE_HOST_RESOLV_CONF", "/etc/resolv.conf")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and _is_ipv4(words[1]):
            servers.append(words[1])
    return servers or list(FALLBACK_SERVERS)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def serve(record: Record, pid: int, endpoints: Sequence[Any] = ()) -> list[Service]:
    """Start the resolver for container ``record`` whose init is ``pid``."""
    cid = record.id
    return [Resolver(lambda: directory_for(cid), upstream_servers(record.spec.dns), pid=pid)]


@dataclass
class _Pending:
    query: DNSRecord  # as the client sent it (its id restored in the reply)
    wire: bytes  # as sent upstream, with our id
    reply_to: Callable[[bytes], None]
    tries: int
    deadline: float


class Resolver:
    """The 127.0.0.11 server of one container (a monitor Service)."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        servers: list[str],
        *,
        pid: int | None = None,
        address: str = ADDRESS,
        port: int = PORT,
        upstream_port: int = 53,
        try_timeout: float = TRY_TIMEOUT,
    ) -> None:
        """Listen on ``address:port`` in the network namespace of ``pid`` (this one when
        None); forward to ``servers`` on ``upstream_port`` from this namespace."""
        self.directory = directory
        self.servers = servers
        self.upstream_port = upstream_port
        self.try_timeout = try_timeout
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._pending: dict[int, _Pending] = {}
        self._tcp: dict[int, _TcpClient] = {}
        self._closers: list[Callable[[], None]] = []
        try:
            with links.inside(pid) if pid is not None else contextlib.nullcontext():
                self.udp = self._socket(socket.SOCK_DGRAM, address, port)
                self.listener = self._socket(socket.SOCK_STREAM, address, port)
            self.listener.listen(32)
            self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.upstream.setblocking(False)
            self._closers.append(self.upstream.close)
            self.timer = syscalls.timerfd_create()
            self._closers.append(lambda: os.close(self.timer))
        except BaseException:
            self.close()
            raise
        self._watch(self.udp.fileno(), IN, self._on_udp)
        self._watch(self.listener.fileno(), IN, self._on_accept)
        self._watch(self.upstream.fileno(), IN, self._on_upstream)
        self._watch(self.timer, IN, self._on_timer)

    def _socket(self, kind: int, address: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        self._closers.append(sock.close)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Whether or not lo is up yet in there: the init brings it up before it
            # runs anything that could ask.
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((address, port))
        except OSError as e:
            raise KernelError.from_oserror(f"listen on {address}:{port} in the container", e) from e
        sock.setblocking(False)
        return sock

    # -- the monitor's Service interface

    def fileno(self) -> int:
        return self._epoll.fileno()

    def on_readable(self) -> None:
        for fd, events in self._epoll.poll(0):
            handler = self._handlers.get(fd)
            if handler is not None:
                try:
                    handler(events)
                except OSError:
                    pass  # one client's socket failing must not stop the container's monitor

    def close(self) -> None:
        for client in list(self._tcp.values()):
            client.close()
        for closer in reversed(self._closers):
            closer()
        self._closers = []
        self._pending.clear()
        self._epoll.close()

    # -- queries

    def _on_udp(self, _events: int) -> None:
        for _ in range(64):
            try:
                data, client = self.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue

            def reply(wire: bytes, client: Any = client) -> None:
                try:
                    self.udp.sendto(wire, client)
                except OSError:
                    pass  # the client went away; it will ask again

            self.handle(data, reply)

    def handle(self, data: bytes, reply_to: Callable[[bytes], None]) -> None:
        try:
            query = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error):
            return  # not DNS: ignore it, as a resolver does
        if query.header.qr:
            return
        try:
            local = answer(query, self.directory())
        except (OSError, ValueError, MoorageError):
            # The engine's files changed under us (a container going away): this query
            # fails, the monitor serving it must not.
            reply_to(servfail(query).pack())
            return
        if local is not None:
            reply_to(local.pack())
            return
        if len(self._pending) >= MAX_PENDING:
            reply_to(servfail(query).pack())
            return
        new_id = random.randrange(65536)
        while new_id in self._pending:
            new_id = random.randrange(65536)
        pending = _Pending(query, struct.pack("!H", new_id) + data[2:], reply_to, 0, 0.0)
        self._pending[new_id] = pending
        self._send(pending)

    def _send(self, pending: _Pending) -> None:
        server = self.servers[pending.tries % len(self.servers)]
        pending.tries += 1
        pending.deadline = time.monotonic() + self.try_timeout
        try:
            self.upstream.sendto(pending.wire, (server, self.upstream_port))
        except OSError:
            pending.deadline = time.monotonic()  # unreachable now: try the next one
        self._arm()

    def _on_upstream(self, _events: int) -> None:
        for _ in range(64):
            try:
                data, sender = self.upstream.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP refusal: that try's deadline moves on to the next
            if len(data) < 12 or sender[0] not in self.servers:
                continue
            (their_id,) = struct.unpack("!H", data[:2])
            pending = self._pending.pop(their_id, None)
            if pending is None:
                continue  # late, duplicate or forged
            pending.reply_to(struct.pack("!H", pending.query.header.id) + data[2:])
        self._arm()

    def _on_timer(self, _events: int) -> None:
        try:
            os.read(self.timer, 8)
        except BlockingIOError:
            pass
        now = time.monotonic()
        for key, pending in list(self._pending.items()):
            if pending.deadline > now:
                continue
            if pending.tries < max(TRIES, 1):
                self._send(pending)
            else:
                del self._pending[key]
                pending.reply_to(servfail(pending.query).pack())
        self._arm()

    def _arm(self) -> None:
        if not self._pending:
            syscalls.timerfd_settime(self.timer, 0)
            return
        soonest = min(p.deadline for p in self._pending.values())
        syscalls.timerfd_settime(self.timer, max(soonest - time.monotonic(), 0.001))

    # -- TCP clients (length-prefixed messages, RFC 1035 4.2.2)

    def _on_accept(self, _events: int) -> None:
        for _ in range(16):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if len(self._tcp) >= MAX_TCP_CLIENTS:
                oldest = next(iter(self._tcp.values()))
                oldest.close()
            sock.setblocking(False)
            client = _TcpClient(self, sock)
            self._tcp[sock.fileno()] = client
            self._watch(sock.fileno(), IN, client.on_event)

    def _watch(self, fd: int, mask: int, handler: Callable[[int], None] | None) -> None:
        if handler is None:
            self._handlers.pop(fd, None)
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            return
        if fd in self._handlers:
            self._epoll.modify(fd, mask)
        else:
            self._epoll.register(fd, mask)
        self._handlers[fd] = handler


class _TcpClient:
    def __init__(self, resolver: Resolver, sock: socket.socket) -> None:
        self.resolver = resolver
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closed = False

    def on_event(self, events: int) -> None:
        if events & ERR:
            self.close()
            return
        if events & (IN | HUP):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self.close()
                return
            if data == b"" or len(self.inbox) > MAX_TCP_BUFFER:
                self.close()  # the client is done (or flooding): pending answers drop
                return
            if data:
                self.inbox += data
                self._parse()
        if events & OUT:
            self._flush()

    def _parse(self) -> None:
        while len(self.inbox) >= 2:
            (size,) = struct.unpack("!H", self.inbox[:2])
            if len(self.inbox) < 2 + size:
                return
            message = bytes(self.inbox[2 : 2 + size])
            del self.inbox[: 2 + size]
            self.resolver.handle(message, self.send)

    def send(self, wire: bytes) -> None:
        if self.closed or len(self.outbox) > MAX_TCP_BUFFER:
            return
        self.outbox += struct.pack("!H", len(wire)) + wire
        self._flush()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outbox)
            del self.outbox[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            if e.errno != errno.EAGAIN:
                self.close()
                return
        if not self.closed:
            self.resolver._watch(self.fd, IN | (OUT if self.outbox else 0), self.on_event)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.resolver._tcp.pop(self.fd, None)
        self.resolver._watch(self.fd, 0, None)
        self.sock.close()
