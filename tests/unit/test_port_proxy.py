"""The userland port proxy on real loopback sockets: TCP with half-close and back
pressure, UDP flows, and a taken port refused with Docker's words."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from runtime.errors import Conflict
from runtime.network.proxy import PortProxy


class Loop:
    """Runs the proxy's events in a thread, as the monitor's selector loop would."""

    def __init__(self, proxy: PortProxy) -> None:
        self.proxy = proxy
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.proxy], [], [], 0.05)
            if ready:
                self.proxy.on_readable()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.proxy.close()


@pytest.fixture
def backend() -> Iterator[socket.socket]:
    """The 'container': a TCP server on loopback that reads to EOF, then answers, and a
    UDP echo server on the same port number."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([server, udp], [], [], 0.05)
            if udp in ready:
                data, peer = udp.recvfrom(2048)
                udp.sendto(b"echo " + data, peer)
            if server in ready:
                conn, _ = server.accept()
                with conn:
                    total = 0
                    while chunk := conn.recv(65536):
                        total += len(chunk)
                    conn.sendall(b"read %d bytes" % total)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server
    stop.set()
    thread.join()
    server.close()
    udp.close()


@pytest.fixture
def proxy() -> Iterator[PortProxy]:
    p = PortProxy("127.0.0.1")
    loop = Loop(p)
    yield p
    loop.close()


def test_tcp_passes_a_large_upload_then_the_half_close_then_the_answer(
    proxy: PortProxy, backend: socket.socket
) -> None:
    port = proxy.bind("tcp", "127.0.0.1", 0, 0, backend.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"x" * 3_000_000)  # far past the proxy's buffer: back pressure
    client.shutdown(socket.SHUT_WR)
    assert client.recv(100) == b"read 3000000 bytes"
    assert client.recv(100) == b""
    client.close()


def test_udp_datagrams_go_both_ways(proxy: PortProxy, backend: socket.socket) -> None:
    port = proxy.bind("udp", "127.0.0.1", 0, 0, backend.getsockname()[1])
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    client.sendto(b"ping", ("127.0.0.1", port))
    assert client.recvfrom(100)[0] == b"echo ping"
    client.close()


def test_a_refused_backend_closes_the_clients_connection(proxy: PortProxy) -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    dead_port = unused.getsockname()[1]
    unused.close()
    port = proxy.bind("tcp", "127.0.0.1", 0, 0, dead_port)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        assert client.recv(10) == b""
    except ConnectionResetError:
        pass
    client.close()


def test_a_taken_host_port_is_already_allocated(proxy: PortProxy) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(Conflict) as caught:
            proxy.bind("tcp", "127.0.0.1", port, 0, 80)
        assert str(caught.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    finally:
        taken.close()


def test_a_host_port_range_takes_the_first_free_port(proxy: PortProxy) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        free = socket.create_server(("127.0.0.1", port + 1))
        free.close()
    except OSError:
        taken.close()
        pytest.skip("the port after a random one is in use here")
    try:
        assert proxy.bind("tcp", "127.0.0.1", port, port + 1, 80) == port + 1
    finally:
        taken.close()
