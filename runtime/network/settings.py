"""Docker-shaped documents: a container's ``NetworkSettings`` and ``network inspect``.

Reads the network store, the container's ``network.json`` and ``endpoints.json`` and,
for ``Ports``, ``runtime.network.ports.bindings``. Never changes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime import state
from runtime.errors import NotFound
from runtime.logs import timestamp
from runtime.network import endpoints, sandbox, store
from runtime.network.endpoints import Attachment, Endpoint

if TYPE_CHECKING:
    from runtime.containers.store import Record


def _ports(record: Record) -> dict[str, Any]:
    from runtime import network

    ports = network._optional("ports")
    if ports is None:
        return {}
    return dict(ports.bindings(record) or {})


def _entry(
    network_id: str,
    aliases: tuple[str, ...],
    requested: Attachment | None,
    endpoint: Endpoint | None,
    short_id: str,
    user_defined: bool,
) -> dict[str, Any]:
    asked = {
        key: value
        for key, value in (
            ("IPv4Address", requested.ipv4_address if requested else ""),
            ("IPv6Address", requested.ipv6_address if requested else ""),
        )
        if value
    }
    return {
        "IPAMConfig": asked or None,
        "Links": None,
        "Aliases": (list(aliases) + [short_id]) if user_defined else None,
        "NetworkID": network_id,
        "EndpointID": endpoint.endpoint_id if endpoint else "",
        "Gateway": endpoint.gateway if endpoint else "",
        "IPAddress": endpoint.ip if endpoint else "",
        "IPPrefixLen": endpoint.prefixlen if endpoint else 0,
        "IPv6Gateway": endpoint.gateway6 if endpoint else "",
        "GlobalIPv6Address": endpoint.ip6 if endpoint else "",
        "GlobalIPv6PrefixLen": endpoint.prefixlen6 if endpoint else 0,
        "MacAddress": endpoint.mac if endpoint else "",
        "DriverOpts": None,
    }


def network_settings(record: Record, st: state.State) -> dict[str, Any]:
    """``NetworkSettings`` of ``docker inspect``: the default bridge's address on top,
    every network under ``Networks``."""
    running = st.status in (state.RUNNING, state.PAUSED) and bool(st.pid)
    live = {e.network_id: e for e in endpoints.live(record.id)} if running else {}
    networks: dict[str, Any] = {}
    kind = sandbox.mode_kind(record.spec.network_mode)
    if kind != "network":
        name = record.spec.network_mode
        try:
            network_id = store.get(name).id if kind != "container" else ""
        except NotFound:
            network_id = ""
        networks[name] = _entry(network_id, (), None, None, record.id[:12], False)
    for attachment in endpoints.load_config(record.id).attachments:
        try:
            network = store.get(attachment.network_id)
        except NotFound:
            continue
        networks[network.name] = _entry(
            network.id,
            attachment.aliases,
            attachment,
            live.get(network.id),
            record.id[:12],
            network.user_defined,
        )
    top = networks.get("bridge") if kind == "network" else None
    return {
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": _ports(record) if running else {},
        "SandboxKey": f"/proc/{st.pid}/ns/net" if st.pid else "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": top["EndpointID"] if top else "",
        "Gateway": top["Gateway"] if top else "",
        "GlobalIPv6Address": top["GlobalIPv6Address"] if top else "",
        "GlobalIPv6PrefixLen": top["GlobalIPv6PrefixLen"] if top else 0,
        "IPAddress": top["IPAddress"] if top else "",
        "IPPrefixLen": top["IPPrefixLen"] if top else 0,
        "IPv6Gateway": top["IPv6Gateway"] if top else "",
        "MacAddress": top["MacAddress"] if top else "",
        "Networks": networks,
    }


def network_document(network: store.Network) -> dict[str, Any]:
    """``docker network inspect``: one network with its running containers."""
    from runtime.containers import store as containers

    attached: dict[str, Any] = {}
    for cid in store.containers_on(network.id):
        for endpoint in endpoints.endpoints_of(cid):
            if endpoint.network_id != network.id:
                continue
            try:
                name = containers.load(cid).name
            except NotFound:
                continue
            attached[cid] = {
                "Name": name,
                "EndpointID": endpoint.endpoint_id,
                "MacAddress": endpoint.mac,
                "IPv4Address": f"{endpoint.ip}/{endpoint.prefixlen}",
                "IPv6Address": f"{endpoint.ip6}/{endpoint.prefixlen6}" if endpoint.ip6 else "",
            }
    config = []
    if network.subnet:
        entry = {"Subnet": network.subnet, "Gateway": network.gateway}
        if network.ip_range:
            entry["IPRange"] = network.ip_range
        config.append(entry)
    if network.subnet6:
        config.append({"Subnet": network.subnet6, "Gateway": network.gateway6})
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": timestamp(network.created),
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": network.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": attached,
        "Options": dict(network.options)
        if network.options or not network.bridge
        else {"com.docker.network.bridge.name": network.bridge},
        "Labels": dict(network.labels),
    }
