"""Bridge networking on the real kernel: addresses, routes, TCP/UDP between containers,
user networks, isolation, --internal, links, DNS options, connect/disconnect, cleanup.

Traffic stays on this host: between containers, and toward a network namespace this
test makes to stand for "outside" (198.51.100.0/30, a documentation range). Nothing
is sent to a real external address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from runtime import paths, state
from runtime.network import endpoints, ipam, links, store
from tests.kernel.conftest import Moorage, bridges_available, remove_all_containers

OUTSIDE_NS = "moorage-test-out"
OUTSIDE_HOST, OUTSIDE_PEER = "198.51.100.1", "198.51.100.2"


pytestmark = pytest.mark.skipif(not bridges_available(), reason="cannot create a bridge here")


class Networks:
    """Creates networks through the CLI and removes them (after the containers) at the end."""

    def __init__(self, moorage: Moorage) -> None:
        self.moorage = moorage
        self.names: list[str] = []

    def create(self, name: str, *options: str) -> str:
        out = self.moorage.ok("network", "create", *options, name).strip()
        self.names.append(name)
        return out


@pytest.fixture
def networks(moorage: Moorage) -> Iterator[Networks]:
    made = Networks(moorage)
    yield made
    remove_all_containers()
    for name in made.names:
        moorage("network", "rm", name)


def ip_of(moorage: Moorage, name: str, network: str | None = None) -> str:
    data = json.loads(moorage.ok("inspect", name))[0]["NetworkSettings"]
    if network is None:
        return data["IPAddress"] or next(iter(data["Networks"].values()))["IPAddress"]
    return data["Networks"][network]["IPAddress"]


def cid_of(moorage: Moorage, name: str) -> str:
    return moorage.ok("inspect", "-f", "{{.Id}}", name).strip()


def web(moorage: Moorage, name: str, *options: str) -> str:
    """A busybox httpd serving its /etc (so /hostname is the container's hostname)."""
    return moorage.ok(
        "run", "-d", "--name", name, *options, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"
    ).strip()


def fetch(moorage: Moorage, url: str, *options: str) -> tuple[int, str]:
    # busybox wget -T segfaults on a timeout; the timeout applet bounds it instead, under
    # a shell that stays (a lone command would be exec'd): as PID 1 the command
    # timeout execs would ignore its SIGTERM.
    result = moorage(
        "run",
        "--rm",
        *options,
        "busybox",
        "sh",
        "-c",
        f"timeout 5 wget -qO- {url}; exit $?",
        timeout=60,
    )
    return result.code, result.out


def test_a_container_on_the_default_bridge_gets_eth0_an_address_and_a_route(moorage):
    """S12 (--net bridge, ip_forward), S22 (built-in networks), S34 (IP in inspect)."""
    out = moorage.ok("run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr; ip route")
    subnet = store.get("bridge").subnet
    assert "eth0" in out and "inet 10.231." in out, out
    assert "default via 10.231.0.1 dev eth0" in out
    assert subnet == "10.231.0.0/16"
    assert links.exists("mt-br0")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"
    listing = moorage.ok("network", "ls")
    for row in (
        "bridge    bridge    local",
        "host      host      local",
        "none      null      local",
    ):
        assert row in listing
    bridge = json.loads(moorage.ok("network", "inspect", "bridge"))[0]
    assert bridge["IPAM"]["Config"][0]["Subnet"] == "10.231.0.0/16"
    assert bridge["Options"]["com.docker.network.bridge.name"] == "mt-br0"
    assert bridge["Scope"] == "local" and bridge["Internal"] is False


def test_containers_on_the_default_bridge_talk_over_tcp_and_udp(moorage):
    """S11/S23: by address on the default bridge, TCP with httpd/wget and UDP with nc."""
    web(moorage, "b1")
    address = ip_of(moorage, "b1")
    assert address.startswith("10.231.")
    code, out = fetch(moorage, f"http://{address}/hostname")
    assert code == 0 and out.strip() == cid_of(moorage, "b1")[:12]
    # Debian's busybox nc has no -u; syslogd -R sends UDP. The receiving end is a
    # socket this test opens inside the other container's namespace.
    moorage.ok("run", "-d", "--name", "u1", "busybox", "sleep", "100")
    pid = state.load(paths.container(cid_of(moorage, "u1"))).pid
    with links.inside(pid):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver:
        receiver.bind(("0.0.0.0", 9999))
        receiver.settimeout(15)
        moorage.ok(
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            f"syslogd -n -R {ip_of(moorage, 'u1')}:9999 & sleep 0.5; logger over-udp; sleep 1",
        )
        assert b"over-udp" in receiver.recv(4096)
    # No name resolution on the default bridge (S23).
    code, _ = fetch(moorage, "http://b1/hostname")
    assert code != 0


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(moorage, networks):
    """S24, S25: a bridge per network, 127.0.0.11 in resolv.conf, names and aliases."""
    nid = networks.create("mt-app")
    assert len(nid) == 64
    assert links.exists(store.bridge_name(nid))
    web(moorage, "c1", "--network", "mt-app", "--network-alias", "database")
    resolv = moorage.ok("run", "--rm", "--network", "mt-app", "busybox", "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in resolv and "ndots:0" in resolv
    short = cid_of(moorage, "c1")[:12]
    for name in ("c1", "database"):
        code, out = fetch(moorage, f"http://{name}/hostname", "--network", "mt-app")
        assert (code, out.strip()) == (0, short)
    inspected = json.loads(moorage.ok("network", "inspect", "mt-app"))[0]
    (entry,) = inspected["Containers"].values()
    assert entry["Name"] == "c1" and entry["MacAddress"].startswith("02:42:")
    assert entry["IPv4Address"].endswith("/16")
    settings = json.loads(moorage.ok("inspect", "c1"))[0]["NetworkSettings"]
    net = settings["Networks"]["mt-app"]
    assert net["NetworkID"] == nid and "database" in net["Aliases"]
    assert net["IPAddress"] and net["Gateway"] and net["IPPrefixLen"] == 16
    assert net["MacAddress"] == entry["MacAddress"]


def test_two_user_networks_are_isolated_until_a_container_joins_both(moorage, networks):
    """S25: no route between networks; `network connect` adds eth1 live, disconnect drops it."""
    networks.create("mt-a")
    networks.create("mt-b", "--subnet", "10.239.7.0/24")
    web(moorage, "srv", "--network", "mt-a")
    address = ip_of(moorage, "srv", "mt-a")
    code, _ = fetch(moorage, f"http://{address}/hostname", "--network", "mt-b")
    assert code != 0, "traffic crossed from one network to another"
    moorage.ok("network", "connect", "--alias", "second", "mt-b", "srv")
    inside = moorage.ok("exec", "srv", "ip", "-o", "-4", "addr")
    assert "eth1" in inside and "10.239.7." in inside
    other = ip_of(moorage, "srv", "mt-b")
    for url in (f"http://{other}/hostname", "http://second/hostname"):
        code, out = fetch(moorage, url, "--network", "mt-b")
        assert code == 0 and out.strip() == cid_of(moorage, "srv")[:12]
    code, _ = fetch(moorage, f"http://{address}/hostname", "--network", "mt-a")
    assert code == 0, "the first network stopped working after the second was added"
    moorage.ok("network", "disconnect", "mt-b", "srv")
    assert "eth1" not in moorage.ok("exec", "srv", "ip", "-o", "-4", "addr")
    assert ipam.allocations(store.get("mt-b")) == {}


def test_connecting_a_stopped_container_takes_effect_when_it_starts(moorage, networks):
    networks.create("mt-later")
    moorage.ok("create", "--name", "idle", "busybox", "sleep", "100")
    moorage.ok("network", "connect", "mt-later", "idle")
    moorage.ok("start", "idle")
    out = moorage.ok("exec", "idle", "ip", "-o", "-4", "addr")
    assert "eth0" in out and "eth1" in out
    moorage.ok("stop", "-t", "0", "idle")
    moorage.ok("network", "disconnect", "mt-later", "idle")
    moorage.ok("start", "idle")
    assert "eth1" not in moorage.ok("exec", "idle", "ip", "-o", "-4", "addr")


@pytest.fixture
def outside() -> Iterator[str]:
    """A network namespace routed from the host, standing for the outside world."""

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True)

    run("ip", "netns", "add", OUTSIDE_NS)
    server = None
    try:
        run("ip", "link", "add", "mt-out-h", "type", "veth", "peer", "name", "mt-out-n")
        run("ip", "link", "set", "mt-out-n", "netns", OUTSIDE_NS)
        run("ip", "addr", "add", f"{OUTSIDE_HOST}/30", "dev", "mt-out-h")
        run("ip", "link", "set", "mt-out-h", "up")
        run("ip", "-n", OUTSIDE_NS, "addr", "add", f"{OUTSIDE_PEER}/30", "dev", "mt-out-n")
        run("ip", "-n", OUTSIDE_NS, "link", "set", "mt-out-n", "up")
        run("ip", "-n", OUTSIDE_NS, "link", "set", "lo", "up")
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                OUTSIDE_NS,
                "busybox",
                "httpd",
                "-f",
                "-p",
                "18081",
                "-h",
                "/etc",
            ]
        )
        time.sleep(0.3)
        yield OUTSIDE_PEER
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", "mt-out-h"], capture_output=True)
        subprocess.run(["ip", "netns", "del", OUTSIDE_NS], capture_output=True)


def test_bridged_containers_reach_outside_but_internal_networks_do_not(moorage, networks, outside):
    """Egress by masquerade; `--internal` forwards nothing out."""
    url = f"http://{outside}:18081/hostname"
    code, out = fetch(moorage, url)
    assert code == 0 and out.strip(), "no egress from the default bridge"
    networks.create("mt-open")
    assert fetch(moorage, url, "--network", "mt-open")[0] == 0
    networks.create("mt-sealed", "--internal")
    code, _ = fetch(moorage, url, "--network", "mt-sealed")
    assert code != 0, "a container on an --internal network reached outside"
    assert "default" not in moorage.ok(
        "run", "--rm", "--network", "mt-sealed", "busybox", "ip", "route"
    )


def test_links_give_variables_and_a_hosts_entry(moorage):
    """S13 and the ambassador pattern (set-b S26)."""
    moorage.ok(
        "run",
        "-d",
        "--name",
        "mydb",
        "--expose",
        "2222",
        "--expose",
        "4444/udp",
        "-e",
        "DB_VERSION=1.0",
        "busybox",
        "sleep",
        "1000",
    )
    address = ip_of(moorage, "mydb")
    env = moorage.ok(
        "run", "--rm", "--name", "consumer", "--link", "mydb:database", "busybox", "env"
    )
    for line in (
        f"DATABASE_PORT=tcp://{address}:2222",
        f"DATABASE_PORT_2222_TCP=tcp://{address}:2222",
        f"DATABASE_PORT_2222_TCP_ADDR={address}",
        "DATABASE_PORT_2222_TCP_PORT=2222",
        "DATABASE_PORT_2222_TCP_PROTO=tcp",
        f"DATABASE_PORT_4444_UDP=udp://{address}:4444",
        "DATABASE_NAME=/consumer/database",
        "DATABASE_ENV_DB_VERSION=1.0",
    ):
        assert line in env.splitlines(), line
    hosts = moorage.ok("run", "--rm", "--link", "mydb:database", "busybox", "cat", "/etc/hosts")
    assert any(line.startswith(f"{address}\tdatabase") for line in hosts.splitlines())
    web(moorage, "db-1")
    moorage.ok(
        "run",
        "-d",
        "--name",
        "db-amb",
        "--link",
        "db-1:db",
        "busybox",
        "sh",
        "-c",
        "while true; do nc -l -p 8000 -e nc db 80; done",
    )
    code, out = fetch(moorage, "http://db:8000/hostname", "--link", "db-amb:db")
    assert code == 0 and out.strip() == cid_of(moorage, "db-1")[:12]
    moorage.ok("stop", "-t", "0", "mydb")
    result = moorage("run", "--rm", "--link", "mydb:x", "busybox", "true")
    assert result.code == 125 and "non running container" in result.err


def test_dns_options_hostname_and_extra_hosts_reach_the_etc_files(moorage):
    """S26 (set-a), S12 (set-b): written literally on the default bridge."""
    out = moorage.ok(
        "run",
        "--rm",
        "--dns",
        "10.1.2.3",
        "--dns-search",
        "example.com",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "foo:10.9.8.7",
        "-h",
        "node1",
        "--domainname",
        "example.org",
        "--mac-address",
        "02:11:22:33:44:55",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname; ip link show eth0",
    )
    assert "nameserver 10.1.2.3" in out and "search example.com" in out
    assert "options ndots:2" in out and "10.9.8.7\tfoo" in out
    assert "\tnode1.example.org node1" in out and "\nnode1\n" in out
    assert "02:11:22:33:44:55" in out


def test_none_host_and_container_network_modes(moorage):
    """S27 (set-a), S12 (set-b)."""
    out = moorage.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    web(moorage, "joined-web")  # on the default bridge, which it makes if need be
    out = moorage.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert "mt-br0" in out
    code, out = fetch(moorage, "http://127.0.0.1/hostname", "--network", "container:joined-web")
    assert code == 0 and out.strip() == cid_of(moorage, "joined-web")[:12]


def test_removing_a_container_removes_its_veth_and_its_address(moorage, networks):
    networks.create("mt-gone")
    moorage.ok("run", "-d", "--name", "short", "--network", "mt-gone", "busybox", "sleep", "100")
    cid = cid_of(moorage, "short")
    (endpoint,) = endpoints.endpoints_of(cid)
    assert links.exists(endpoint.veth) and endpoint.veth.startswith("mt-")
    assert cid in ipam.allocations(store.get("mt-gone")).values()
    moorage.ok("rm", "-f", "short")
    assert not links.exists(endpoint.veth)
    assert ipam.allocations(store.get("mt-gone")) == {}


def test_gc_after_a_killed_monitor_releases_addresses_and_orphaned_links(moorage, networks):
    networks.create("mt-crash")
    moorage.ok("run", "-d", "--name", "victim", "--network", "mt-crash", "busybox", "sleep", "100")
    cid = cid_of(moorage, "victim")
    st = state.load(paths.container(cid))
    os.kill(st.monitor_pid, signal.SIGKILL)
    # An orphan a crash could leave while something held a namespace open.
    subprocess.run(
        ["ip", "link", "add", "mt-0rphan0", "type", "veth", "peer", "name", "mt-0rphan1"],
        check=True,
    )
    out = moorage.ok("system", "gc")
    assert "mt-0rphan0" in out or "mt-0rphan1" in out, out
    assert not links.exists("mt-0rphan0") and not links.exists("mt-0rphan1")
    assert ipam.allocations(store.get("mt-crash")) == {}
    assert endpoints.endpoints_of(cid) == []
    assert not [n for n in links.names() if n.startswith("mt-" + cid[:8])]


def test_network_rm_refuses_while_attached_and_prune_spares_built_ins(moorage, networks):
    """S28."""
    nid = networks.create("mt-busy")
    networks.create("mt-unused")
    moorage.ok("run", "-d", "--name", "holder", "--network", "mt-busy", "busybox", "sleep", "100")
    result = moorage("network", "rm", "mt-busy")
    assert result.code != 0 and "active endpoints" in result.err
    out = moorage.ok("network", "prune", "-f")
    assert "mt-unused" in out and "mt-busy" not in out
    moorage.ok("rm", "-f", "holder")
    assert moorage.ok("network", "rm", "mt-busy").strip() == "mt-busy"
    assert not links.exists(store.bridge_name(nid))
    names = moorage.ok("network", "ls", "--format", "{{.Name}}").split()
    assert names == ["bridge", "host", "none"]
    assert moorage.ok("network", "ls", "-q", "-f", "name=none").strip() == store.get("none").id[:12]


@pytest.mark.parametrize(
    "args, message",
    [
        (("network", "create", "--subnet", "10.231.5.0/24", "mt-overlap"), "overlaps"),
        (("network", "create", "--subnet", "10.300.0.0/16", "mt-badcidr"), "invalid CIDR"),
        (("network", "create", "--subnet", "10.238.0.0", "mt-nomask"), "invalid CIDR"),
        (
            ("run", "--rm", "--network", "mt-nowhere", "busybox", "true"),
            "network mt-nowhere not found",
        ),
        (("network", "connect", "mt-nowhere", "x"), "network mt-nowhere not found"),
    ],
)
def test_bad_network_input_is_refused(moorage, args, message):
    result = moorage(*args)
    assert result.code != 0 and message in result.err, result.err
    assert "mt-overlap" not in moorage.ok("network", "ls")


def test_bad_attachments_are_refused_and_leave_nothing(moorage, networks):
    networks.create("mt-strict", "--subnet", "10.238.1.0/24")
    duplicate = moorage("network", "create", "mt-strict")
    assert duplicate.code != 0 and "already exists" in duplicate.err
    outside_ip = moorage(
        "run", "--rm", "--network", "mt-strict", "--ip", "10.238.2.5", "busybox", "true"
    )
    assert outside_ip.code == 125 and "does not belong" in outside_ip.err
    assert moorage.ok("ps", "-aq") == ""
    moorage.ok(
        "run",
        "-d",
        "--name",
        "twice",
        "--network",
        "mt-strict",
        "--ip",
        "10.238.1.50",
        "busybox",
        "sleep",
        "100",
    )
    assert ip_of(moorage, "twice", "mt-strict") == "10.238.1.50"
    again = moorage("network", "connect", "mt-strict", "twice")
    assert again.code != 0 and "already exists in network" in again.err
    moorage.ok("create", "--name", "asleep", "busybox", "true")
    joined = moorage("run", "--rm", "--network", "container:asleep", "busybox", "true")
    assert joined.code == 125 and "non running container" in joined.err
