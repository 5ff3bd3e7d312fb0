"""The attach protocol's framing, on a real socket pair."""

from __future__ import annotations

import socket

from runtime import attach


def client_on(sock: socket.socket) -> attach.Client:
    client = attach.Client.__new__(attach.Client)
    client.sock = sock
    client.reader = attach.FrameReader()
    client._pending = []
    return client


def test_one_chunk_holding_several_frames_yields_them_all_at_once():
    ours, monitors = socket.socketpair()
    with ours, monitors:
        monitors.sendall(
            attach.frame(attach.STDOUT, b"ps\r\n")
            + attach.frame(attach.STDOUT, b"PID USER\r\n")
            + attach.frame(attach.STDERR, b"oops")[:5]
        )
        client = client_on(ours)
        assert client.recv_some() == [(attach.STDOUT, b"ps\r\n"), (attach.STDOUT, b"PID USER\r\n")]
        monitors.sendall(attach.frame(attach.STDERR, b"oops")[5:])
        assert client.recv_some() == [(attach.STDERR, b"oops")]
        monitors.close()
        assert client.recv_some() is None


def test_recv_some_hands_over_frames_recv_left_pending():
    ours, monitors = socket.socketpair()
    with ours, monitors:
        monitors.sendall(attach.frame(attach.STDOUT, b"a") + attach.frame(attach.STDOUT, b"b"))
        client = client_on(ours)
        assert client.recv() == (attach.STDOUT, b"a")
        assert client.recv_some() == [(attach.STDOUT, b"b")]
