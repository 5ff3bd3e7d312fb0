"""IPv4 address management: who holds which address on which network.

Owns ``<network dir>/ipam.json``: ``{address: container id}``. Every read-modify-write
happens under the store's lock, so two containers starting at once never get the same
address. An address is held from plug (start or live connect) to unplug; a crash leaves
allocations behind, which ``gc`` releases for containers that are not running.
Never touches the kernel.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from runtime.errors import Conflict, InvalidSpec
from runtime.network.store import Network, locked
from runtime.state import read_json, write_json


def _path(network: Network) -> Path:
    return network.directory / "ipam.json"


def _read(network: Network) -> dict[str, str]:
    try:
        return dict(read_json(_path(network)))
    except FileNotFoundError:
        return {}


def allocations(network: Network) -> dict[str, str]:
    """address → container id, as on disk now."""
    return _read(network)


def check_requested(network: Network, address: str) -> None:
    """Refuse an ``--ip`` that this network cannot give (before anything is made)."""
    if not network.user_defined:
        raise InvalidSpec("user specified IP address is supported on user defined networks "
                          "only")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise InvalidSpec(f"invalid IPv4 address: {address}") from None
    subnet = ipaddress.ip_network(network.subnet)
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidSpec(f"invalid address {address}: it does not belong to any of this "
                          f"network's subnets ({network.subnet})")
    if str(ip) == network.gateway:
        raise InvalidSpec(f"invalid address {address}: it is the gateway of network "
                          f"{network.name}")


def allocate(network: Network, cid: str, requested: str = "") -> str:
    """Give ``cid`` an address on ``network`` (``requested`` if set); returns it."""
    with locked():
        taken = _read(network)
        if requested:
            check_requested(network, requested)
            owner = taken.get(requested)
            if owner and owner != cid:
                raise Conflict(f"Address already in use: {requested} is held by container "
                               f"{owner[:12]} on network {network.name}")
            address = requested
        else:
            address = _first_free(network, taken, cid)
        taken[address] = cid
        write_json(_path(network), taken)
        return address


def _first_free(network: Network, taken: dict[str, str], cid: str) -> str:
    pool = ipaddress.ip_network(network.ip_range or network.subnet)
    subnet = ipaddress.ip_network(network.subnet)
    skip = {str(subnet.network_address), str(subnet.broadcast_address), network.gateway}
    for ip in pool.hosts() if pool.prefixlen < 31 else pool:
        text = str(ip)
        if text in skip:
            continue
        if taken.get(text) in (None, cid):
            return text
    raise Conflict(f"no available IPv4 addresses on network {network.name}")


def release(network: Network, cid: str, address: str | None = None) -> list[str]:
    """Drop ``cid``'s allocations on ``network`` (only ``address`` if given)."""
    with locked():
        taken = _read(network)
        gone = [ip for ip, owner in taken.items()
                if owner == cid and (address is None or ip == address)]
        if gone:
            for ip in gone:
                del taken[ip]
            write_json(_path(network), taken)
        return gone


def release_unless(network: Network, keep: set[str]) -> list[str]:
    """Drop allocations of containers not in ``keep`` (``gc``); returns 'ip (cid)' lines."""
    with locked():
        taken = _read(network)
        gone = {ip: owner for ip, owner in taken.items() if owner not in keep}
        if gone:
            write_json(_path(network), {ip: o for ip, o in taken.items() if ip not in gone})
        return [f"{network.name} {ip} ({owner[:12]})" for ip, owner in gone.items()]
