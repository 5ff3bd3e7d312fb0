"""Networks on disk: one directory per network under ``paths.networks()``.

``<id>/config.json`` holds a ``Network`` (name, driver, subnet, gateway, range, flags,
labels, the kernel bridge's name); ``<id>/ipam.json`` holds its address allocations
(``runtime.network.ipam``). One lock file, ``.lock``, serialises every change to networks
and allocations, which is what makes names unique and addresses single-owner.

A network may also have an IPv6 subnet (``--ipv6``, as Docker: the bridge gets the
subnet's first address as gateway, containers get addresses from it, no IPv6 NAT or
egress is set up). The built-in networks ``bridge``, ``host`` and ``none`` are created
on first use, IPv4 only like Docker's default bridge. The
default bridge's subnet comes from ``MOORAGE_DEFAULT_SUBNET`` (default 10.203.0.0/16,
clear of Docker's 172.17.0.0/16 and podman's 10.88.0.0/16); subnets of new networks
without ``--subnet`` are /16s taken from ``MOORAGE_ADDRESS_POOL`` (default
10.208.0.0/12) that overlap neither a network of ours nor a route of the host.
This module never touches the kernel besides reading ``/proc/net/route``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime import paths
from runtime.errors import InvalidSpec, NameInUse, NotFound
from runtime.state import flocked, read_json, write_json

AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
BUILTIN = ("bridge", "host", "none")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


@dataclass
class Network:
    id: str
    name: str
    driver: str = "bridge"
    subnet: str = ""  # CIDR, empty for host/none
    gateway: str = ""
    ip_range: str = ""  # CIDR within subnet to allocate from, empty: all of it
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    bridge: str = ""  # kernel link name
    created: float = 0.0
    enable_ipv6: bool = False
    subnet6: str = ""  # IPv6 CIDR when enable_ipv6
    gateway6: str = ""

    @property
    def prefixlen6(self) -> int:
        return ipaddress.ip_network(self.subnet6).prefixlen if self.subnet6 else 0

    @property
    def user_defined(self) -> bool:
        return self.name not in BUILTIN

    @property
    def directory(self) -> Path:
        return paths.networks() / self.id

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen if self.subnet else 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Network:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """The one lock over networks and their allocations."""
    paths.networks().mkdir(parents=True, exist_ok=True)
    with flocked(paths.networks() / ".lock"):
        yield


def default_subnet() -> str:
    return os.environ.get("MOORAGE_DEFAULT_SUBNET", "10.203.0.0/16")


def address_pool() -> str:
    return os.environ.get("MOORAGE_ADDRESS_POOL", "10.208.0.0/12")


def bridge_name(network_id: str) -> str:
    """``<link prefix>br-<id>`` cut to the 15 bytes a link name may have."""
    name = f"{paths.link_prefix()}br-"
    return name + network_id[: 15 - len(name)]


def _load(directory: Path) -> Network | None:
    try:
        return Network.from_json(read_json(directory / "config.json"))
    except (FileNotFoundError, NotADirectoryError):
        return None


def all_unlocked() -> list[Network]:
    """Every network on disk; for callers that already hold ``locked()``."""
    try:
        entries = list(os.scandir(paths.networks()))
    except FileNotFoundError:
        return []
    found = [n for e in entries if e.is_dir() and (n := _load(Path(e.path))) is not None]
    return sorted(found, key=lambda n: n.created)


def _save(network: Network) -> None:
    network.directory.mkdir(parents=True, exist_ok=True)
    write_json(network.directory / "config.json", network.to_json())


def _ensure_builtins() -> list[Network]:
    networks = all_unlocked()
    have = {n.name for n in networks}
    if all(name in have for name in BUILTIN):
        return networks
    with locked():
        networks = all_unlocked()
        have = {n.name for n in networks}
        for name in BUILTIN:
            if name in have:
                continue
            network = Network(id=new_id(), name=name, driver=DRIVERS[name], created=time.time())
            if name == "bridge":
                subnet = _parse_subnet(default_subnet())
                network.subnet = str(subnet)
                network.gateway = str(next(subnet.hosts()))
                network.bridge = paths.default_bridge()
                network.options = {
                    "com.docker.network.bridge.default_bridge": "true",
                    "com.docker.network.bridge.name": network.bridge,
                }
            _save(network)
            networks.append(network)
    return sorted(networks, key=lambda n: n.created)


def new_id() -> str:
    """64 random hex digits (os.urandom: ``secrets`` costs a start 10 ms of imports)."""
    return os.urandom(32).hex()


def list_networks() -> list[Network]:
    """Every network, built-in ones first (they are the oldest)."""
    return _ensure_builtins()


def get(name_or_id: str) -> Network:
    """A network by name, full id or unique id prefix, as Docker resolves them."""
    if len(name_or_id) == 64 and name_or_id.isalnum() and "/" not in name_or_id:
        # The hot path (plug, unplug) asks by full id: one file, not the whole store.
        found = _load(paths.networks() / name_or_id)
        if found is not None:
            return found
    networks = _ensure_builtins()
    for network in networks:
        if name_or_id in (network.name, network.id):
            return network
    if name_or_id and all(c in "0123456789abcdef" for c in name_or_id):
        matches = [n for n in networks if n.id.startswith(name_or_id)]
        if len(matches) == 1:
            return matches[0]
    raise NotFound(f"network {name_or_id} not found")


def _parse_subnet(text: str, version: int = 4) -> Any:
    """An IPv4 (or with ``version`` 6 an IPv6) subnet with room for a gateway and one
    container at least."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidSpec(f"invalid CIDR address: {text}") from None
    if network.version != version or "/" not in text:
        raise InvalidSpec(f"invalid CIDR address: {text}")
    most = 30 if version == 4 else 126
    if network.prefixlen > most:
        raise InvalidSpec(
            f"subnet {text} is too small: it needs room for a gateway and "
            f"containers (at most /{most})"
        )
    return network


def _host_routes() -> list[AnyNetwork]:
    """Destinations the host routes already (not the default route)."""
    routes = []
    try:
        with open("/proc/net/route") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                dest = int(fields[1], 16).to_bytes(4, "little")
                mask = int(fields[7], 16).to_bytes(4, "little")
                if mask == b"\0\0\0\0":
                    continue
                routes.append(
                    ipaddress.ip_network(
                        f"{ipaddress.IPv4Address(dest)}/{ipaddress.IPv4Address(mask)}", strict=False
                    )
                )
    except (OSError, ValueError, IndexError):
        pass
    return routes


def _free_subnet(taken: list[AnyNetwork]) -> ipaddress.IPv4Network:
    pool = _parse_subnet(address_pool())
    candidates = pool.subnets(new_prefix=16) if pool.prefixlen <= 16 else [pool]
    busy = taken + _host_routes()
    for candidate in candidates:
        if not any(candidate.overlaps(other) for other in busy):
            return candidate
    raise InvalidSpec(
        "could not find an available, non-overlapping IPv4 address pool "
        "among the defaults to assign to the network"
    )


def _random_ula() -> ipaddress.IPv6Network:
    """A /64 in a random fd00::/8 /48 (RFC 4193), as Docker picks without --subnet."""
    prefix = bytes([0xFD]) + os.urandom(5) + bytes(10)
    return ipaddress.IPv6Network((prefix, 64))


def _check_overlap(net: AnyNetwork, networks: list[Network]) -> None:
    for other in networks:
        for text in (other.subnet, other.subnet6):
            if (
                text
                and net.version == ipaddress.ip_network(text).version
                and net.overlaps(ipaddress.ip_network(text))
            ):
                raise InvalidSpec(
                    f"invalid pool request: Pool overlaps with other one on "
                    f"this address space ({text}, network {other.name})"
                )


def create(
    name: str,
    subnet: str = "",
    gateway: str = "",
    ip_range: str = "",
    internal: bool = False,
    labels: dict[str, str] | None = None,
    driver: str = "bridge",
    ipv6: bool = False,
    subnet6: str = "",
    gateway6: str = "",
) -> Network:
    """Record a new bridge network (the kernel bridge is made by the caller).

    ``subnet6``/``gateway6`` need ``ipv6``; with ``ipv6`` and no ``subnet6`` a random
    ULA /64 is taken."""
    if driver != "bridge":
        raise InvalidSpec(f'plugin "{driver}" not found: only the bridge driver is supported')
    if not _NAME.fullmatch(name):
        raise InvalidSpec(
            f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    _ensure_builtins()
    with locked():
        networks = all_unlocked()
        if any(n.name == name for n in networks):
            raise NameInUse(f"network with name {name} already exists")
        taken = [ipaddress.ip_network(n.subnet) for n in networks if n.subnet]
        if (subnet6 or gateway6) and not ipv6:
            raise InvalidSpec(
                f"invalid subnet {subnet6 or gateway6}: IPv6 subnet provided "
                "but IPv6 is not enabled (use --ipv6)"
            )
        net6 = _parse_subnet(subnet6, 6) if subnet6 else _random_ula() if ipv6 else None
        if net6 is not None:
            _check_overlap(net6, networks)
        if subnet:
            net = _parse_subnet(subnet)
            _check_overlap(net, networks)
        else:
            if gateway or ip_range:
                raise InvalidSpec("--gateway and --ip-range need --subnet")
            net = _free_subnet(taken)
        gw = _address_in(gateway, net, "gateway") if gateway else next(net.hosts())
        if ip_range:
            pool = _parse_subnet(ip_range)
            if not pool.subnet_of(net):
                raise InvalidSpec(f"invalid ip-range {ip_range}: it is not within subnet {net}")
        network = Network(
            id=new_id(),
            name=name,
            subnet=str(net),
            gateway=str(gw),
            ip_range=ip_range and str(_parse_subnet(ip_range)),
            internal=internal,
            labels=dict(labels or {}),
            created=time.time(),
        )
        if net6 is not None:
            gw6 = _address_in(gateway6, net6, "gateway") if gateway6 else next(net6.hosts())
            network.enable_ipv6, network.subnet6, network.gateway6 = True, str(net6), str(gw6)
        network.bridge = bridge_name(network.id)
        _save(network)
        return network


def _address_in(text: str, net: AnyNetwork, what: str) -> ipaddress._BaseAddress:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidSpec(f"invalid {what} address: {text}") from None
    if (
        address.version != net.version
        or address not in net
        or address in (net.network_address, net.broadcast_address)
    ):
        raise InvalidSpec(f"{what} address {text} is not within subnet {net}")
    return address


def delete(network: Network) -> None:
    """Forget a network's files (the caller checked it is unused and removed its bridge)."""
    import shutil  # here: no start needs it

    with locked():
        shutil.rmtree(network.directory, ignore_errors=True)


def containers_on(network_id: str) -> list[str]:
    """Ids of containers configured on the network, running or not."""
    from runtime.network import endpoints

    return [
        cid
        for cid, attachments in endpoints.all_attachments()
        if any(a.network_id == network_id for a in attachments)
    ]
