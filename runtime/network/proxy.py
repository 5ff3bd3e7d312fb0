"""The userland port proxy: host ports relayed to a container's address, TCP and UDP.

A ``PortProxy`` lives in the container's monitor (in the host network namespace) for as
long as the container runs. Its listening sockets are what reserve the host ports: a bind
that fails is Docker's "port is already allocated". It serves what DNAT cannot:
connections to 127.0.0.1 (``route_localnet`` is 0) and from containers on a bridge.

It drives epoll(7): every socket sits in one private epoll instance whose fd is the
single ``fileno()`` the monitor's selector watches, so the monitor stays single-threaded
and never learns about connections. Sockets are non-blocking; a direction stops reading
while MAX_BUFFER bytes wait for a slow reader (no busy loop, bounded memory); EOF is
passed on as a half-close (``shutdown(SHUT_WR)``); an error on either side closes both.
UDP flows get one connected socket each towards the container, dropped after UDP_IDLE
seconds without traffic or when MAX_FLOWS is reached. Owns nothing on disk.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable

from runtime.errors import Conflict, KernelError

MAX_BUFFER = 256 * 1024  # per direction of one TCP connection
MAX_CONNECTIONS = 1024  # per container; past it the listeners pause
MAX_FLOWS = 512  # UDP clients per published UDP port
UDP_IDLE = 90.0  # seconds, as conntrack's UDP stream timeout
ACCEPTS_PER_WAKEUP = 64

IN, OUT, ERR, HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP


class PortProxy:
    """Every published port of one container, relayed to ``target`` (its IP)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._masks: dict[int, int] = {}
        self._listeners: list[socket.socket] = []
        self._accepters: dict[int, Callable[[int], None]] = {}
        self._tcp: set[_Splice] = set()
        self._udp: list[_UdpPort] = []
        self._paused = False
        self._swept = time.monotonic()

    # -- the monitor's Service interface

    def fileno(self) -> int:
        return self._epoll.fileno()

    def on_readable(self) -> None:
        for fd, events in self._epoll.poll(0):
            handler = self._handlers.get(fd)
            if handler is not None:  # closed by an earlier event of this same batch
                try:
                    handler(events)
                except OSError:
                    pass  # one connection failing must not stop the container's monitor
        now = time.monotonic()
        if now - self._swept > UDP_IDLE / 3:
            self._swept = now
            for port in self._udp:
                port.expire(now - UDP_IDLE)

    def close(self) -> None:
        for splice in list(self._tcp):
            splice.close()
        for port in self._udp:
            port.close()
        for sock in self._listeners:
            self.watch(sock.fileno(), 0, None)
            sock.close()
        self._listeners, self._udp, self._accepters = [], [], {}
        self._epoll.close()

    # -- publishing

    def bind(
        self, proto: str, host_ip: str, host_port: int, host_port_end: int, container_port: int
    ) -> int:
        """Listen on ``host_ip:host_port`` (any free port for 0, the first free one of
        ``host_port..host_port_end`` for a range); return the host port bound."""
        ip = host_ip or "0.0.0.0"
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        candidates = range(host_port, max(host_port, host_port_end) + 1)
        shown = f"{host_port}-{host_port_end}" if host_port_end > host_port else str(host_port)
        for port in candidates:
            sock = socket.socket(family, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    # Not for UDP: there it would let two containers share one port.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((ip, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(128)
            except OSError as e:
                sock.close()
                if e.errno == errno.EADDRINUSE:
                    continue
                if e.errno == errno.EADDRNOTAVAIL:
                    raise KernelError.from_oserror(
                        f"listen {proto} {ip}:{port}: cannot assign requested address", e
                    ) from e
                raise KernelError.from_oserror(f"listen {proto} {ip}:{port}", e) from e
            sock.setblocking(False)
            self._listeners.append(sock)
            bound = int(sock.getsockname()[1])
            if kind == socket.SOCK_STREAM:
                accepter = self._accepter(sock, container_port)
                self._accepters[sock.fileno()] = accepter
                self.watch(sock.fileno(), IN, accepter)
            else:
                udp = _UdpPort(self, sock, container_port)
                self._udp.append(udp)
                self.watch(sock.fileno(), IN, udp.on_listener)
            return bound
        raise Conflict(f"Bind for {ip}:{shown} failed: port is already allocated")

    # -- plumbing shared by the relays

    def watch(self, fd: int, mask: int, handler: Callable[[int], None] | None) -> None:
        """Set what ``fd`` waits for; 0 removes it, as epoll would still report hang-ups."""
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            self._epoll.unregister(fd)
            del self._masks[fd]
            self._handlers.pop(fd, None)
            return
        if old:
            self._epoll.modify(fd, mask)
        else:
            self._epoll.register(fd, mask)
        self._masks[fd] = mask
        if handler is not None:
            self._handlers[fd] = handler

    def _accept(self, listener: socket.socket, container_port: int) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            if len(self._tcp) >= MAX_CONNECTIONS:
                self._pause(True)
                return
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED and friends: that client is gone
                continue
            client.setblocking(False)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            code = upstream.connect_ex((self.target, container_port))
            if code not in (0, errno.EINPROGRESS):
                client.close()
                upstream.close()
                continue
            splice = _Splice(self, client, upstream)
            self._tcp.add(splice)
            splice.update()

    def _pause(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        for fd, accepter in self._accepters.items():
            self.watch(fd, 0 if paused else IN, accepter)

    def _accepter(self, listener: socket.socket, port: int) -> Callable[[int], None]:
        return lambda _events: self._accept(listener, port)

    def forget(self, splice: _Splice) -> None:
        self._tcp.discard(splice)
        if self._paused and len(self._tcp) < MAX_CONNECTIONS // 2:
            self._pause(False)


class _Side:
    __slots__ = ("sock", "fd", "pending", "read_eof", "write_shut", "hung_up")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.pending = bytearray()  # bytes still to be written to this socket
        self.read_eof = False  # it sent us EOF
        self.write_shut = False  # we sent it EOF (or can never write to it again)
        self.hung_up = False


class _Splice:
    """One proxied TCP connection: the client's socket and ours to the container."""

    def __init__(self, proxy: PortProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = _Side(client)
        self.upstream = _Side(upstream)
        self.connecting = True
        self.closed = False

    def _peer(self, side: _Side) -> _Side:
        return self.upstream if side is self.client else self.client

    def on_event(self, side: _Side, events: int) -> None:
        if self.closed:
            return
        if events & ERR:
            self.close()
            return
        if side is self.upstream and self.connecting:
            if side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.close()  # the container refused: the client sees its connection close
                return
            self.connecting = False
        if events & HUP:
            side.hung_up = True
        if events & (IN | HUP):
            self._read(side)
        if not self.closed:
            self._flush()
        if not self.closed:
            self.update()

    def _read(self, side: _Side) -> None:
        peer = self._peer(side)
        while not side.read_eof and len(peer.pending) < MAX_BUFFER:
            try:
                data = side.sock.recv(min(65536, MAX_BUFFER - len(peer.pending)))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not data:
                side.read_eof = True
                return
            peer.pending += data
            if not side.hung_up:
                return  # one read per wake-up keeps both directions fair

    def _flush(self) -> None:
        for side in (self.client, self.upstream):
            if side is self.upstream and self.connecting:
                continue
            if side.pending:
                if side.hung_up or side.write_shut:
                    self.close()  # nowhere to deliver what the other side sent
                    return
                try:
                    sent = side.sock.send(side.pending)
                    del side.pending[:sent]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.close()
                    return
            if not side.pending and self._peer(side).read_eof and not side.write_shut:
                side.write_shut = True
                try:
                    side.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if self.client.write_shut and self.upstream.write_shut:
            self.close()

    def update(self) -> None:
        for side in (self.client, self.upstream):
            peer = self._peer(side)
            mask = 0
            if side is self.upstream and self.connecting:
                mask = OUT
            else:
                if not side.read_eof and len(peer.pending) < MAX_BUFFER:
                    mask |= IN
                if side.pending:
                    mask |= OUT
            handler = self._on_client if side is self.client else self._on_upstream
            self.proxy.watch(side.fd, mask, handler)

    def _on_client(self, events: int) -> None:
        self.on_event(self.client, events)

    def _on_upstream(self, events: int) -> None:
        self.on_event(self.upstream, events)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.upstream):
            self.proxy.watch(side.fd, 0, None)
            side.sock.close()
        self.proxy.forget(self)


class _UdpPort:
    """One published UDP port: a flow (a connected socket) per client address."""

    def __init__(self, proxy: PortProxy, listener: socket.socket, container_port: int) -> None:
        self.proxy = proxy
        self.listener = listener
        self.container_port = container_port
        self.flows: dict[tuple[str, int], tuple[socket.socket, list[float]]] = {}

    def on_listener(self, _events: int) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                data, client = self.listener.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the listener; nothing to relay
            flow = self.flows.get(client)
            if flow is None:
                flow = self._open(client)
                if flow is None:
                    continue
            flow[1][0] = time.monotonic()
            try:
                flow[0].send(data)
            except OSError:
                pass  # datagrams may be lost; the client retries as over any network

    def _open(self, client: tuple[str, int]) -> tuple[socket.socket, list[float]] | None:
        if len(self.flows) >= MAX_FLOWS:
            oldest = min(self.flows, key=lambda c: self.flows[c][1][0])
            self._drop(oldest)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect((self.proxy.target, self.container_port))
        except OSError:
            sock.close()
            return None
        flow = (sock, [time.monotonic()])
        self.flows[client] = flow
        self.proxy.watch(sock.fileno(), IN, lambda _e: self._reply(client))
        return flow

    def _reply(self, client: tuple[str, int]) -> None:
        flow = self.flows.get(client)
        if flow is None:
            return
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                data = flow[0].recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNREFUSED: nothing listens in the container (yet)
                continue
            flow[1][0] = time.monotonic()
            try:
                self.listener.sendto(data, client)
            except OSError:
                pass

    def _drop(self, client: tuple[str, int]) -> None:
        sock, _ = self.flows.pop(client)
        self.proxy.watch(sock.fileno(), 0, None)
        sock.close()

    def expire(self, before: float) -> None:
        for client in [c for c, (_, last) in self.flows.items() if last[0] < before]:
            self._drop(client)

    def close(self) -> None:
        for client in list(self.flows):
            self._drop(client)
