"""Putting a running container on its networks and taking it off again.

For each attachment in the container's ``network.json``: make sure the network's bridge
and nft rules exist, take an address from IPAM, make a veth pair whose container end is
``ethN`` in the container's namespace (MAC 02:42 + the address, as Docker), address it,
and route by the gateway of the first network that has egress (on a network with IPv6
an IPv6 address and default route too, by that network's IPv6 gateway). The live
endpoints go to ``endpoints.json`` and the container's ``/etc/hosts`` is rewritten in
place (it is bind mounted, so the inode must stay). Taking off runs the same steps in
reverse and treats "already gone" as done: when the container's namespace dies the
kernel deletes the veth pair by itself.

Host-side veths are named ``<link prefix><container id><network id>`` cut to 15 bytes.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from runtime import paths
from runtime.errors import KernelError, MoorageError, NotFound
from runtime.network import endpoints, ipam, links, sandbox, store
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
        links.ensure_bridge(
            network.bridge, network.gateway, network.prefixlen, network.gateway6, network.prefixlen6
        )
    sync_rules()


def sync_rules() -> None:
    from runtime.network import nat  # not on the hot path: only when a bridge is made

    with store.locked():
        nat.sync(store.all_unlocked())


def plug_one(cid: str, pid: int, attachment: Attachment, ifname: str, route: bool) -> Endpoint:
    """Put the container whose init is ``pid`` on one network; returns the endpoint."""
    network = _network(attachment)
    ensure(network)
    address = ipam.allocate(network, cid, attachment.ipv4_address)
    address6 = ""
    veth = veth_name(cid, network.id)
    route_ok = route and not network.internal
    try:
        if network.enable_ipv6:
            address6 = ipam.allocate6(network, cid, attachment.ipv6_address)
        mac = attachment.mac_address or mac_for(address)
        try:
            links.add_veth(veth, network.bridge, pid, ifname, mac)
        except KernelError as e:
            if e.errno != errno.EEXIST:
                raise
            links.delete(veth)  # a leftover of a crash with the same name
            links.add_veth(veth, network.bridge, pid, ifname, mac)
        links.configure_inside(
            pid,
            ifname,
            address,
            network.prefixlen,
            network.gateway if route_ok else None,
            address6,
            network.prefixlen6,
            network.gateway6 if route_ok else None,
        )
    except BaseException:
        links.delete(veth)
        ipam.release(network, cid, address)
        if address6:
            ipam.release(network, cid, address6)
        raise
    return Endpoint(
        network_id=network.id,
        network_name=network.name,
        endpoint_id=store.new_id(),
        ip=address,
        prefixlen=network.prefixlen,
        gateway=network.gateway,
        mac=mac,
        aliases=attachment.aliases,
        user_defined=network.user_defined,
        ifname=ifname,
        veth=veth,
        requested_ip=attachment.ipv4_address,
        requested_ip6=attachment.ipv6_address,
        ip6=address6,
        prefixlen6=network.prefixlen6 if address6 else 0,
        gateway6=network.gateway6 if address6 else "",
    )


def unplug_one(cid: str, endpoint: Endpoint) -> None:
    links.delete(endpoint.veth)
    try:
        network = store.get(endpoint.network_id)
    except NotFound:
        return
    ipam.release(network, cid, endpoint.ip)
    if endpoint.ip6:
        ipam.release(network, cid, endpoint.ip6)


def _network(attachment: Attachment) -> store.Network:
    """The attachment's network; as Docker, by name when the id is gone (removed and
    made again), else "network NAME not found"."""
    try:
        return store.get(attachment.network_id)
    except NotFound:
        pass
    if attachment.network_name:
        try:
            return store.get(attachment.network_name)
        except NotFound:
            pass
    raise NotFound(
        f"network {attachment.network_name or attachment.network_id[:12]} not found"
    ) from None


def plug_all(record: Record, pid: int) -> list[Endpoint]:
    """Every attachment of the container, in order; all or nothing."""
    cid = record.id
    made: list[Endpoint] = []
    with endpoints.lock(cid):
        config = endpoints.load_config(cid)
        try:
            routed = False
            for index, attachment in enumerate(config.attachments):
                network = _network(attachment)
                if network.id != attachment.network_id:  # found by name: made again
                    attachment = replace(attachment, network_id=network.id)
                    config.attachments[index] = attachment
                    endpoints.save_config(cid, config)
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
        pass  # the first failure is the one to report; gc finds what is left


def unplug_all(cid: str) -> None:
    with endpoints.lock(cid):
        for endpoint in endpoints.live(cid):
            unplug_one(cid, endpoint)
        endpoints.save_live(cid, [])


def write_hosts(record: Record, live: list[Endpoint]) -> None:
    """Rewrite /etc/hosts in place (the inode the bind mount holds must stay)."""
    text = sandbox.hosts(record.spec, record.hostname, live, endpoints.load_config(record.id).links)
    rewrite_in_place(record.directory / "hosts", text)


def rewrite_in_place(path: os.PathLike[str], text: str) -> None:
    """Overwrite, then cut to length: not O_TRUNC, whose truncation to 0 makes ext4
    flush the file at close (auto_da_alloc), a few ms per start."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def write_resolv_conf(record: Record, embedded: bool) -> bool:
    """Point /etc/resolv.conf at the embedded server (127.0.0.11) or away from it, as the
    container's networks now need; rewritten only when that changes (a `network
    connect` or `disconnect` since the last start). True if it was rewritten."""
    path = record.directory / "resolv.conf"
    try:
        current = path.read_text()
        if (f"nameserver {sandbox.EMBEDDED_DNS}\n" in current) == embedded:
            return False
        rewrite_in_place(path, sandbox.resolv_conf(record.spec, embedded))
    except FileNotFoundError:
        return False  # none/host modes and the like keep what create wrote
    except OSError as e:
        raise KernelError.from_oserror("rewrite the container's resolv.conf", e) from e
    return True
