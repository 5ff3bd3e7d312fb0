"""Published ports on the real kernel: the userland proxy, the DNAT chains, `moorage port`.

Traffic stays on this host: loopback, the container bridges, and a network namespace
this test makes to stand for a second host (198.18.0.0/30, a benchmarking range, over a
veth pair). Nothing is sent to a real external address.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.network import ports
from tests.kernel.conftest import Moorage, bridges_available

SECOND_HOST_NS = "moorage-test-h2"
HOST_SIDE, PEER_SIDE = "mt-h2a", "mt-h2b"
HOST_IP, PEER_IP = "198.18.0.1", "198.18.0.2"
PAGE = "echo hello-from-web > /tmp/index.html && exec httpd -f -p 80 -h /tmp"


pytestmark = pytest.mark.skipif(not bridges_available(), reason="cannot create a bridge here")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def second_host() -> Iterator[str]:
    """A network namespace joined to the host by a veth pair; yields its name."""
    subprocess.run(["ip", "netns", "del", SECOND_HOST_NS], capture_output=True)
    _ip("netns", "add", SECOND_HOST_NS)
    try:
        _ip("link", "add", HOST_SIDE, "type", "veth", "peer", "name", PEER_SIDE)
        _ip("link", "set", PEER_SIDE, "netns", SECOND_HOST_NS)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_SIDE)
        _ip("link", "set", HOST_SIDE, "up")
        _ip("-n", SECOND_HOST_NS, "addr", "add", f"{PEER_IP}/30", "dev", PEER_SIDE)
        _ip("-n", SECOND_HOST_NS, "link", "set", PEER_SIDE, "up")
        _ip("-n", SECOND_HOST_NS, "link", "set", "lo", "up")
        yield SECOND_HOST_NS
    finally:
        subprocess.run(["ip", "link", "del", HOST_SIDE], capture_output=True)
        subprocess.run(["ip", "netns", "del", SECOND_HOST_NS], capture_output=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def http_get(
    host: str, port: int, netns: str | None = None, timeout: float = 5, path: str = "/"
) -> str:
    """GET ``path`` from the host, or from inside ``netns``; retries while httpd starts."""
    code = (
        "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
        f"'http://{host}:{port}{path}', timeout={timeout}).read().decode())"
    )
    argv = [sys.executable, "-c", code]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    deadline = time.monotonic() + 10
    while True:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
        if done.returncode == 0 or time.monotonic() > deadline:
            return done.stdout if done.returncode == 0 else f"failed: {done.stderr[-300:]}"
        time.sleep(0.2)


def dnat_packets(cid: str) -> int:
    """Packets the container's prerouting DNAT rules have matched so far."""
    done = subprocess.run(
        ["nft", "-j", "list", "chain", "ip", ports.table(), f"pre-{cid[:12]}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return 0
    total = 0
    for item in json.loads(done.stdout)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            total += expr.get("counter", {}).get("packets", 0)
    return total


def chains_of(cid: str) -> list[str]:
    done = subprocess.run(
        ["nft", "list", "table", "ip", ports.table()], capture_output=True, text=True
    )
    return [
        line.split()[1]
        for line in done.stdout.splitlines()
        if line.strip().startswith("chain") and cid[:12] in line
    ]


def test_a_published_port_answers_on_loopback_the_host_address_a_second_host_and_containers(
    moorage: Moorage, second_host: str
) -> None:
    """S21: -p HOST:80, PORTS, `port`, and the page from everywhere it should answer."""
    host_port = free_port()
    cid = moorage.ok(
        "run", "-d", "--name", "web", "-p", f"{host_port}:80", "busybox", "sh", "-c", PAGE
    ).strip()
    assert http_get("127.0.0.1", host_port) == "hello-from-web\n"
    assert http_get(HOST_IP, host_port) == "hello-from-web\n"
    before = dnat_packets(cid)
    assert http_get(HOST_IP, host_port, netns=second_host) == "hello-from-web\n"
    assert dnat_packets(cid) > before, "the second host was not served by the DNAT rule"
    # From another container, through the host's address (the proxy answers: hairpin).
    page = moorage.ok("run", "--rm", "busybox", "wget", "-qO-", f"http://{HOST_IP}:{host_port}/")
    assert page == "hello-from-web\n"
    row = moorage.ok("ps", "--filter", "name=web", "--format", "{{.Ports}}").strip()
    assert row == f"0.0.0.0:{host_port}->80/tcp"
    assert moorage.ok("port", "web").splitlines() == [f"80/tcp -> 0.0.0.0:{host_port}"]
    assert moorage.ok("port", "web", "80").strip() == f"0.0.0.0:{host_port}"
    missing = moorage("port", "web", "81")
    assert missing.code == 1 and "No public port '81/tcp' published for web" in missing.err


def test_random_host_ports_are_reported_and_answer(moorage: Moorage) -> None:
    """S11: -p CONTAINER, -p IP::CONTAINER and -P with --expose get random host ports."""
    moorage.ok(
        "run",
        "-d",
        "--name",
        "anyport",
        "-p",
        "80",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        PAGE,
    )
    lines = moorage.ok("port", "anyport", "80").split()
    assert len(lines) == 2
    everywhere, local = lines
    assert everywhere.startswith("0.0.0.0:") and local.startswith("127.0.0.1:")
    for line in lines:
        port = int(line.rsplit(":", 1)[1])
        assert port > 1024
        assert http_get("127.0.0.1", port) == "hello-from-web\n"
    moorage.ok(
        "run",
        "-d",
        "--name",
        "allports",
        "-P",
        "--expose",
        "80",
        "--expose",
        "90",
        "busybox",
        "sh",
        "-c",
        PAGE,
    )
    mapping = moorage.ok("port", "allports").splitlines()
    assert [line.split(" -> ")[0] for line in mapping] == ["80/tcp", "90/tcp"]
    port = int(mapping[0].rsplit(":", 1)[1])
    assert http_get("127.0.0.1", port) == "hello-from-web\n"


UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo " + data, peer)
"""

ASK_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for _ in range(20):
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(100)[0].decode())
        break
    except socket.timeout:
        pass
"""


def test_udp_ports_relay_datagrams_both_ways_from_loopback_and_a_second_host(
    moorage: Moorage, second_host: str
) -> None:
    """Busybox's nc has no -u here, so the UDP server is a Python echo started by the
    test inside the container's network namespace (nsenter), as a container's would be."""
    host_port = free_port(socket.SOCK_DGRAM)
    moorage.ok(
        "run", "-d", "--name", "udpsink", "-p", f"{host_port}:9999/udp", "busybox", "sleep", "60"
    )
    pid = moorage.ok("inspect", "-f", "{{.State.Pid}}", "udpsink").strip()
    echo = subprocess.Popen(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", UDP_ECHO],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout is not None and echo.stdout.readline() == "ready\n"
        for where, netns in (("127.0.0.1", None), (HOST_IP, None), (HOST_IP, second_host)):
            argv = [sys.executable, "-c", ASK_UDP, where, str(host_port)]
            if netns:
                argv = ["ip", "netns", "exec", netns, *argv]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert done.stdout.strip() == "echo ping", (where, netns, done.stderr)
    finally:
        echo.kill()
        echo.wait()
        if echo.stdout:
            echo.stdout.close()


def test_a_host_port_already_taken_fails_clearly_and_starts_nothing(moorage: Moorage) -> None:
    """S21: 'Bind for 0.0.0.0:PORT failed: port is already allocated', left Created."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        host_port = taken.getsockname()[1]
        result = moorage(
            "run", "-d", "--name", "web2", "-p", f"{host_port}:80", "busybox", "sleep", "60"
        )
    assert result.code == 125
    assert f"Bind for 0.0.0.0:{host_port} failed: port is already allocated" in result.err
    assert (
        moorage.ok("ps", "-a", "--filter", "name=web2", "--format", "{{.State}}").strip()
        == "created"
    )
    cid = moorage.ok("inspect", "-f", "{{.Id}}", "web2").strip()
    assert chains_of(cid) == []


def test_a_start_that_fails_building_the_root_says_why_and_frees_its_port(
    moorage: Moorage,
) -> None:
    """The init builds its root while the monitor publishes the port: the init's own
    reason is the one reported, and the port, its rules and the veth are let go."""
    host_port = free_port()
    result = moorage(
        "run", "-d", "--name", "badroot", "-p", f"{host_port}:80",
        "-v", "/etc/hostname:/bin", "busybox", "true",
    )  # fmt: skip
    assert result.code != 0
    assert "Not a directory" in result.err and "/bin" in result.err, result.err
    cid = moorage.ok("inspect", "-f", "{{.Id}}", "badroot").strip()
    assert chains_of(cid) == []
    assert moorage.ok("inspect", "-f", "{{json .NetworkSettings.Ports}}", "badroot").strip() in (
        "{}",
        "null",
    )
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert cid[:8] not in links
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", host_port))  # the proxy let go of it


def test_two_containers_cannot_hold_the_same_host_port(moorage: Moorage) -> None:
    """S11: a second -p HOST:... fails with a non-zero status."""
    host_port = free_port()
    moorage.ok("run", "-d", "--name", "first", "-p", f"{host_port}:80", "busybox", "sleep", "60")
    second = moorage(
        "run", "-d", "--name", "second", "-p", f"{host_port}:8000", "busybox", "sleep", "60"
    )
    assert second.code == 125 and "port is already allocated" in second.err


def test_stopping_a_container_frees_its_port_and_removes_its_rules(moorage: Moorage) -> None:
    host_port = free_port()
    cid = moorage.ok(
        "run", "-d", "--name", "brief", "-p", f"{host_port}:80", "busybox", "sleep", "60"
    ).strip()
    assert chains_of(cid) == [f"pre-{cid[:12]}", f"out-{cid[:12]}"]
    moorage.ok("stop", "-t", "1", "brief")
    assert chains_of(cid) == []
    assert moorage.ok("ps", "-a", "--filter", "name=brief", "--format", "{{.Ports}}").strip() == ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", host_port))  # the proxy let go of it


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("70000:80", "invalid hostPort: 70000"),
        ("8080:0", "invalid containerPort: 0"),
        ("8080:abc", "invalid containerPort: abc"),
        ("80/icmp", "invalid proto: icmp"),
    ],
)
def test_bad_port_specs_fail_at_create_and_leave_nothing(
    moorage: Moorage, flag: str, message: str
) -> None:
    result = moorage("run", "-d", "--name", "badport", "-p", flag, "busybox", "true")
    assert result.code == 125
    assert message in result.err
    assert moorage.ok("ps", "-a", "-q", "--filter", "name=badport").strip() == ""


def test_the_ambassador_pattern_keeps_clients_unchanged_when_the_backend_moves(
    moorage: Moorage,
) -> None:
    """S26: a relay container (nc -e) linked to the backend; the client's command is the
    same before and after the backend is replaced. The relay's port is also published,
    so the host reaches the backend through it."""
    host_port = free_port()
    relay = "while true; do nc -l -p 8000 -e nc db 8000; done"
    for backend, page in (("db-1", "hello-one"), ("db-2", "hello-two")):
        moorage.ok(
            "run",
            "-d",
            "--name",
            backend,
            "busybox",
            "sh",
            "-c",
            f"echo {page} > /tmp/index.html && exec httpd -f -p 8000 -h /tmp",
        )
        moorage.ok(
            "run",
            "-d",
            "--name",
            "db-amb",
            "--link",
            f"{backend}:db",
            "-p",
            f"{host_port}:8000",
            "busybox",
            "sh",
            "-c",
            relay,
        )
        deadline = time.monotonic() + 10
        while True:
            client = moorage(
                "run", "--rm", "--link", "db-amb:db", "busybox", "wget", "-qO-", "http://db:8000/"
            )
            if client.code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert client.out == f"{page}\n", client.err
        assert http_get("127.0.0.1", host_port) == f"{page}\n"
        moorage.ok("rm", "-f", backend, "db-amb")


def test_publish_all_takes_the_images_exposed_port(moorage: Moorage, tmp_path: Path) -> None:
    """S11: an image with EXPOSE 8000 run with -P; `port CID 8000`; weblocal on 127.0.0.1;
    a port the image never exposed still publishes with -p."""
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nRUN mkdir /www && echo "Hello, world!" > /www/index.html\n'
        'EXPOSE 8000\nCMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n'
    )
    moorage.ok("build", "-t", "porttest-web", str(tmp_path), timeout=120)
    cid = moorage.ok("run", "-d", "-P", "porttest-web").strip()
    row = moorage.ok("ps", "-l", "--format", "{{.Ports}}").strip()
    host_port = int(moorage.ok("port", cid, "8000").splitlines()[0].rsplit(":", 1)[1])
    assert row == f"0.0.0.0:{host_port}->8000/tcp"
    assert http_get("127.0.0.1", host_port) == "Hello, world!\n"
    moorage.ok("run", "-d", "--name", "weblocal", "-p", "127.0.0.1::8000", "porttest-web")
    local = moorage.ok("port", "weblocal", "8000").strip()
    assert local.startswith("127.0.0.1:")
    assert http_get("127.0.0.1", int(local.rsplit(":", 1)[1])) == "Hello, world!\n"
    host_port = free_port()
    moorage.ok(
        "run",
        "-d",
        "--name",
        "noexpose",
        "--hostname",
        "noexpose-host",
        "-p",
        f"{host_port}:9000",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "9000",
        "-h",
        "/etc",
    )
    assert http_get("127.0.0.1", host_port, path="/hostname") == "noexpose-host\n"


def test_containers_publishing_at_the_same_time_keep_each_others_rules(moorage: Moorage) -> None:
    """Starts and removals race on the shared table: each only adds or deletes its own
    chains, and the table goes with the last of them."""
    host_ports = [free_port() for _ in range(4)]
    starts = [
        moorage.popen(
            "run",
            "-d",
            "--name",
            f"many{i}",
            "-p",
            f"{port}:80",
            "busybox",
            "sh",
            "-c",
            PAGE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, port in enumerate(host_ports)
    ]
    for start in starts:
        _, err = start.communicate(timeout=60)
        assert start.returncode == 0, err
    for port in host_ports:
        assert http_get("127.0.0.1", port) == "hello-from-web\n"
    listing = subprocess.run(
        ["nft", "list", "table", "ip", ports.table()], capture_output=True, text=True, check=True
    ).stdout
    assert listing.count("dnat to") == 8
    removals = [
        moorage.popen("rm", "-f", f"many{i}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(4)
    ]
    for removal in removals:
        assert removal.wait(timeout=60) == 0
    gone = subprocess.run(["nft", "list", "table", "ip", ports.table()], capture_output=True)
    assert gone.returncode != 0, "the ports table outlived its last container"
