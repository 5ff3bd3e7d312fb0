"""IPv4 and IPv6 address management: who holds which address on which network.

Owns ``<network dir>/addresses/``: one file per address held, named by the address and
holding the container id. Taking an address is ``open(O_CREAT | O_EXCL)`` of its file,
so two containers starting at once never get the same address and no lock is needed;
giving it back is an unlink. (It replaced one ``ipam.json`` rewritten under the store's
lock: on ext4 each rename over the old file flushed it, 3 ms per start and per stop.
An ``ipam.json`` left by an older version is converted on first use.) An address is
held from plug (start or live connect) to unplug; a crash leaves allocations behind,
which ``gc`` releases for containers that are not running. Never touches the kernel.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from runtime.errors import Conflict, InvalidSpec
from runtime.network.store import Network, locked


def _dir(network: Network) -> Path:
    return network.directory / "addresses"


def _taken(network: Network) -> set[str]:
    """The addresses held now; makes the directory (converting an ``ipam.json``) the
    first time."""
    try:
        return set(os.listdir(_dir(network)))
    except FileNotFoundError:
        pass
    from runtime.state import read_json

    with locked():
        _dir(network).mkdir(exist_ok=True)
        legacy = network.directory / "ipam.json"
        try:
            held = dict(read_json(legacy))
        except FileNotFoundError:
            held = {}
        for address, cid in held.items():
            _claim(network, address, cid)
        legacy.unlink(missing_ok=True)
    return set(os.listdir(_dir(network)))


def _claim(network: Network, address: str, cid: str) -> bool:
    """Take ``address`` for ``cid``; False if somebody holds it."""
    try:
        fd = os.open(
            _dir(network) / address, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )
    except FileExistsError:
        return False
    try:
        os.write(fd, cid.encode())
    finally:
        os.close(fd)
    return True


def _owner(network: Network, address: str) -> str | None:
    try:
        with open(_dir(network) / address) as f:
            return f.read()
    except FileNotFoundError:
        return None


def allocations(network: Network) -> dict[str, str]:
    """address → container id, as on disk now."""
    found = {}
    for address in _taken(network):
        owner = _owner(network, address)
        if owner is not None:
            found[address] = owner
    return found


def check_requested(network: Network, address: str, version: int = 4) -> None:
    """Refuse an ``--ip`` (``--ip6`` with ``version`` 6) that this network cannot give,
    before anything is made."""
    if not network.user_defined:
        raise InvalidSpec("user specified IP address is supported on user defined networks only")
    try:
        ip = (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(address)
    except ValueError:
        raise InvalidSpec(f"invalid IPv{version} address: {address}") from None
    pool = network.subnet if version == 4 else network.subnet6
    if not pool:
        raise InvalidSpec(
            f"invalid address {address}: network {network.name} has no IPv6 "
            "subnet (create it with --ipv6 --subnet <IPv6 CIDR>)"
        )
    subnet = ipaddress.ip_network(pool)
    reserved = (
        {subnet.network_address, subnet.broadcast_address}
        if version == 4
        else {subnet.network_address}
    )
    if ip not in subnet or ip in reserved:
        raise InvalidSpec(
            f"invalid address {address}: it does not belong to any of this "
            f"network's subnets ({pool})"
        )
    gateway = network.gateway if version == 4 else network.gateway6
    if gateway and ip == ipaddress.ip_address(gateway):
        raise InvalidSpec(f"invalid address {address}: it is the gateway of network {network.name}")


def allocate(network: Network, cid: str, requested: str = "") -> str:
    """Give ``cid`` an IPv4 address on ``network`` (``requested`` if set); returns it."""
    taken = _taken(network)
    if requested:
        check_requested(network, requested)
        return _claim_requested(network, requested, cid)
    subnet = ipaddress.ip_network(network.subnet)
    skip = {str(subnet.network_address), str(subnet.broadcast_address), network.gateway}
    return _first_free(network, network.ip_range or network.subnet, skip | taken, cid, "IPv4")


def allocate6(network: Network, cid: str, requested: str = "") -> str:
    """Give ``cid`` an IPv6 address from the network's IPv6 subnet (``requested`` if set,
    in the compressed form its allocation file is named by); returns it."""
    if requested:
        check_requested(network, requested, 6)
        return _claim_requested(network, str(ipaddress.IPv6Address(requested)), cid)
    return _first_free(network, network.subnet6, {network.gateway6} | _taken(network), cid, "IPv6")


def _claim_requested(network: Network, address: str, cid: str) -> str:
    if not _claim(network, address, cid):
        owner = _owner(network, address)
        if owner != cid:
            raise Conflict(
                f"Address already in use: {address} is held by container "
                f"{(owner or '?')[:12]} on network {network.name}"
            )
    return address


def _hosts(pool: str) -> Iterator[str]:
    network = ipaddress.ip_network(pool)
    if network.version == 4 and network.prefixlen >= 31:
        return (str(ip) for ip in network)
    return (str(ip) for ip in network.hosts())


def _first_free(network: Network, pool: str, skip: set[str], cid: str, family: str) -> str:
    tried = 0
    for text in _hosts(pool):
        if text in skip:
            continue
        if _claim(network, text, cid):  # False: another start took it since the listing
            return text
        tried += 1
        if tried > 4096:
            break
    raise Conflict(f"no available {family} addresses on network {network.name}")


def release(network: Network, cid: str, address: str | None = None) -> list[str]:
    """Drop ``cid``'s allocations on ``network`` (only ``address`` if given)."""
    if address is not None:
        candidates = [address]
    else:
        candidates = list(allocations(network))
    gone = []
    for ip in candidates:
        if _owner(network, ip) == cid:
            try:
                os.unlink(_dir(network) / ip)
                gone.append(ip)
            except FileNotFoundError:
                pass
    return gone


def release_unless(network: Network, keep: set[str]) -> list[str]:
    """Drop allocations of containers not in ``keep`` (``gc``); returns 'ip (cid)' lines."""
    gone = []
    for ip, owner in allocations(network).items():
        if owner not in keep and owner:
            try:
                os.unlink(_dir(network) / ip)
            except FileNotFoundError:
                continue
            gone.append(f"{network.name} {ip} ({owner[:12]})")
    return gone
