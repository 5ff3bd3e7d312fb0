"""``registry.Registry.close()``: kept-alive sockets of every thread are closed."""

from __future__ import annotations

import gc
import http.server
import threading
import warnings
from collections.abc import Iterator

import pytest

from runtime.registry import Registry


class _KeepAlive(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _open_sockets(reg: Registry) -> list[object]:
    return [conn.sock for pool in reg._pools for conn in pool.values() if conn.sock is not None]


def test_close_shuts_the_pooled_connections_of_every_thread_without_resource_warnings(
    server: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with Registry(server, use_stored=False) as reg:
            reg.request("GET", "/v2/")
            # A download thread's connection, left in its pool after the thread ended.
            worker = threading.Thread(target=reg.request, args=("GET", "/v2/"))
            worker.start()
            worker.join(10)
            sockets = _open_sockets(reg)
            assert len(sockets) == 2
        assert _open_sockets(reg) == []
        assert all(s.fileno() == -1 for s in sockets)  # type: ignore[attr-defined]
        del sockets, worker
        gc.collect()  # a socket left open would warn here, and the filter makes it fail


def test_a_closed_session_dials_again_on_its_next_request(server: str) -> None:
    reg = Registry(server, use_stored=False)
    reg.request("GET", "/v2/")
    reg.close()
    _, resp = reg.request("GET", "/v2/")
    assert resp is not None and resp.status == 200
    assert len(_open_sockets(reg)) == 1
    reg.close()
    assert _open_sockets(reg) == []
