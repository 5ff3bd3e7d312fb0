"""Putting a running container on its networks and taking it off again.

For each attachment in the container's ``network.json``: make sure the network's bridge
and nft rules exist, take an address from IPAM, make a veth pair whose container end is
``ethN`` in the container's namespace (MAC 02:42 + the address, as Docker), address it,
and route by the gateway of the first network that has egress. The live endpoints go to
``endpoints.json`` and the container's ``/etc/hosts`` is rewritten in place (it is bind
mounted, so the inode must stay). Taking off runs the same steps in reverse and treats
"already gone" as done: when the container's namespace dies the kernel deletes the
veth pair by itself.

Host-side veths are named ``<link prefix><container id><network id>`` cut to 15 bytes.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from typing import TYPE_CHECKING

from runtime import paths
from runtime.errors import MoorageError, NotFound
from runtime.network import endpoints, ipam, links, nat, sandbox, store
from runtime.network.endpoints import Attachment, Endpoint

if TYPE_CHECKING:
    from runtime.containers.store import Record


def veth_name(cid: str, network_id: str) -> str:
    prefix = paths.link_prefix()
    room = 15 - len(prefix)
    return prefix + cid[: room - 4] + network_id[:4]


def mac_for(address: str) -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


def ensure(network: store.Network) -> None:
    """The network's bridge, ip_forward and the nft rules, made if missing."""
    if links.exists(network.bridge):
        return
    links.enable_forwarding()
    with store.locked():
        links.ensure_bridge(network.bridge, network.gateway, network.prefixlen)
    sync_rules()


def sync_rules() -> None:
    with store.locked():
        nat.sync(store.all_unlocked())


def plug_one(cid: str, pid: int, attachment: Attachment, ifname: str,
             route: bool) -> Endpoint:
    """Put the container whose init is ``pid`` on one network; returns the endpoint."""
    network = _network(attachment.network_id)
    ensure(network)
    address = ipam.allocate(network, cid, attachment.ipv4_address)
    veth = veth_name(cid, network.id)
    try:
        links.delete(veth)   # a leftover of a crash with the same name would block us
        mac = attachment.mac_address or mac_for(address)
        links.add_veth(veth, network.bridge, pid, ifname, mac)
        links.configure_inside(pid, ifname, address, network.prefixlen,
                               network.gateway if route and not network.internal else None)
    except BaseException:
        links.delete(veth)
        ipam.release(network, cid, address)
        raise
    return Endpoint(network_id=network.id, network_name=network.name,
                    endpoint_id=secrets.token_hex(32), ip=address,
                    prefixlen=network.prefixlen, gateway=network.gateway, mac=mac,
                    aliases=attachment.aliases, user_defined=network.user_defined,
                    ifname=ifname, veth=veth, requested_ip=attachment.ipv4_address)


def unplug_one(cid: str, endpoint: Endpoint) -> None:
    links.delete(endpoint.veth)
    try:
        network = store.get(endpoint.network_id)
    except NotFound:
        return
    ipam.release(network, cid, endpoint.ip)


def _network(network_id: str) -> store.Network:
    try:
        return store.get(network_id)
    except NotFound:
        raise NotFound(f"network {network_id[:12]} not found: it was removed while "
                       "the container was attached to it") from None


def plug_all(record: Record, pid: int) -> list[Endpoint]:
    """Every attachment of the container, in order; all or nothing."""
    cid = record.id
    made: list[Endpoint] = []
    with endpoints.lock(cid):
        config = endpoints.load_config(cid)
        try:
            routed = False
            for index, attachment in enumerate(config.attachments):
                network = _network(attachment.network_id)
                route = not routed and not network.internal
                made.append(plug_one(cid, pid, attachment, f"eth{index}", route))
                routed = routed or route
            endpoints.save_live(cid, made)
            write_hosts(record, made)
        except BaseException:
            for endpoint in reversed(made):
                _quietly_unplug(cid, endpoint)
            endpoints.save_live(cid, [])
            raise
    return made


def _quietly_unplug(cid: str, endpoint: Endpoint) -> None:
    try:
        unplug_one(cid, endpoint)
    except MoorageError:
        pass   # the first failure is the one to report; gc finds what is left


def unplug_all(cid: str) -> None:
    with endpoints.lock(cid):
        for endpoint in endpoints.live(cid):
            unplug_one(cid, endpoint)
        endpoints.save_live(cid, [])


def write_hosts(record: Record, live: list[Endpoint]) -> None:
    """Rewrite /etc/hosts in place (O_TRUNC keeps the inode the bind mount holds)."""
    text = sandbox.hosts(record.spec, record.hostname, live,
                         endpoints.load_config(record.id).links)
    path = record.directory / "hosts"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
