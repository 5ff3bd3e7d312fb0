"""Network verbs, one public function each: create, remove, prune, list, inspect,
connect, disconnect; and ``forget`` for a container being removed.

The CLI and the dashboard call these and nothing deeper. ``connect``/``disconnect``
edit the container's ``network.json`` and, when it runs, hot-plug or unplug the veth
at once (and on a first user-defined network start the embedded DNS server in its
monitor and point its resolv.conf at it); a stopped container picks the change up at
its next start. As Docker, only running containers (active endpoints) keep a network
from being removed; a stopped container left on a removed network fails to start with
"network NAME not found".
"""

from __future__ import annotations

import errno
from typing import Any

from runtime import paths, state
from runtime.errors import Conflict, InUse, InvalidSpec, MissingFeature, MoorageError, NotFound
from runtime.network import endpoints, ipam, links, settings, store, wiring
from runtime.network.endpoints import Attachment

FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


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
) -> store.Network:
    if ipv6 and not links.ipv6_available():
        raise MissingFeature(
            "ipv6",
            errno.EAFNOSUPPORT,
            "IPv6 is disabled on this host "
            "(net.ipv6.conf.all.disable_ipv6=1): cannot create an IPv6 "
            "network",
        )
    network = store.create(
        name, subnet, gateway, ip_range, internal, labels, driver, ipv6, subnet6, gateway6
    )
    try:
        wiring.ensure(network)
    except MoorageError:
        store.delete(network)
        wiring.sync_rules()
        raise
    return network


def remove(ref: str) -> store.Network:
    network = store.get(ref)
    if not network.user_defined:
        raise Conflict(f"{network.name} is a pre-defined network and cannot be removed")
    users = active_on(network.id)
    if users:
        raise InUse(
            f"error while removing network: network {network.name} id {network.id} "
            f"has active endpoints"
        )
    links.delete(network.bridge)
    store.delete(network)
    wiring.sync_rules()
    return network


def active_on(network_id: str) -> list[str]:
    """Ids of the running containers with an endpoint on the network (stopped ones that
    are configured on it do not count, as in Docker)."""
    return [
        cid
        for cid in store.containers_on(network_id)
        if any(e.network_id == network_id for e in endpoints.endpoints_of(cid))
    ]


def prune(filters: dict[str, list[str]] | None = None) -> list[str]:
    """Remove user-defined networks no running container is on; returns their names."""
    removed = []
    for network in list_networks(filters):
        if network.user_defined and not active_on(network.id):
            try:
                remove(network.id)
                removed.append(network.name)
            except (InUse, NotFound):
                continue
    return removed


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTERS:
            raise InvalidSpec(f"invalid filter '{item}'")
        filters.setdefault(key, []).append(value)
    return filters


def _matches(network: store.Network, key: str, value: str) -> bool:
    if key == "driver":
        return network.driver == value
    if key == "id":
        return network.id.startswith(value)
    if key == "name":
        return value in network.name
    if key == "scope":
        return value == "local"
    if key == "type":
        return value == ("custom" if network.user_defined else "builtin")
    if key == "dangling":
        return (value in ("true", "1")) == (network.user_defined and not active_on(network.id))
    k, sep, v = value.partition("=")
    return k in network.labels and (not sep or network.labels[k] == v)


def list_networks(filters: dict[str, list[str]] | None = None) -> list[store.Network]:
    rows = []
    for network in store.list_networks():
        # Values of one key are alternatives; different keys must all match.
        if all(
            any(_matches(network, key, v) for v in values)
            for key, values in (filters or {}).items()
        ):
            rows.append(network)
    return rows


def inspect(ref: str) -> dict[str, Any]:
    return settings.network_document(store.get(ref))


def _container(ref: str) -> tuple[str, Any, state.State]:
    from runtime.containers import store as containers
    from runtime.containers.recovery import reconcile

    cid = containers.resolve(ref)
    return cid, containers.load(cid), reconcile(cid)


def connect(
    network_ref: str,
    container_ref: str,
    aliases: tuple[str, ...] = (),
    ipv4_address: str = "",
    ipv6_address: str = "",
) -> None:
    network = store.get(network_ref)
    cid, record, st = _container(container_ref)
    from runtime.network import sandbox

    kind = sandbox.mode_kind(record.spec.network_mode)
    if kind == "none" or network.driver == "null":  # Docker's words for each case
        raise Conflict(
            "container cannot be connected to multiple networks with one of the "
            "networks in private (none) mode"
        )
    if kind == "host" or network.driver == "host":
        raise Conflict(
            "container cannot be disconnected from host network or connected to host network"
        )
    if kind != "network" or network.driver != "bridge":
        raise Conflict(
            "container sharing network namespace with another container or host "
            "cannot be connected to any other network"
        )
    if aliases and not network.user_defined:
        raise InvalidSpec(
            "network-scoped alias is supported only for containers in user defined networks"
        )
    if ipv4_address:
        ipam.check_requested(network, ipv4_address)
    if ipv6_address:
        ipam.check_requested(network, ipv6_address, 6)
    with endpoints.lock(cid):
        config = endpoints.load_config(cid)
        if any(a.network_id == network.id for a in config.attachments):
            raise Conflict(
                f"endpoint with name {record.name} already exists in network {network.name}"
            )
        attachment = Attachment(
            network.id,
            tuple(aliases),
            ipv4_address,
            network_name=network.name,
            ipv6_address=ipv6_address,
        )
        running = st.status in (state.RUNNING, state.PAUSED) and bool(st.pid)
        if running:
            live = endpoints.live(cid)
            # Every ethN in there is one of ours: the first name no endpoint has is free.
            used = {e.ifname for e in live}
            ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            route = not network.internal and not any(
                not store.get(e.network_id).internal for e in live if _exists(e.network_id)
            )
            live.append(wiring.plug_one(cid, st.pid, attachment, ifname, route))
            endpoints.save_live(cid, live)
        config.attachments.append(attachment)
        endpoints.save_config(cid, config)
    if running and network.user_defined:
        _start_dns(cid, record)


def _start_dns(cid: str, record: Any) -> None:
    """Have the monitor start the embedded DNS server (if not running yet), then point
    resolv.conf at it: in that order, so no lookup ever goes to a server not there."""
    from runtime import attach

    try:
        answer = attach.request(cid, {"op": "network"}, timeout=5.0)
    except (OSError, MoorageError):
        return  # the monitor is gone (the container stopped meanwhile)
    if answer.get("ok"):
        wiring.write_resolv_conf(record, True)


def _exists(network_id: str) -> bool:
    try:
        store.get(network_id)
        return True
    except NotFound:
        return False


def disconnect(network_ref: str, container_ref: str, force: bool = False) -> None:
    network = store.get(network_ref)
    cid, record, st = _container(container_ref)
    with endpoints.lock(cid):
        config = endpoints.load_config(cid)
        if not any(a.network_id == network.id for a in config.attachments):
            raise Conflict(f"container {record.name} is not connected to network {network.name}")
        config.attachments = [a for a in config.attachments if a.network_id != network.id]
        live = endpoints.live(cid)
        for endpoint in [e for e in live if e.network_id == network.id]:
            wiring.unplug_one(cid, endpoint)
            live.remove(endpoint)
        endpoints.save_live(cid, live)
        endpoints.save_config(cid, config)


def forget(cid: str) -> None:
    """A container is being removed: its veths and addresses go with it. Idempotent."""
    if not paths.container(cid).exists():
        return
    with endpoints.lock(cid):
        for endpoint in endpoints.live(cid):
            try:
                wiring.unplug_one(cid, endpoint)
            except MoorageError:
                pass  # gc will find it; removal must not stop half-way
        endpoints.save_live(cid, [])
        attached = {a.network_id for a in endpoints.load_config(cid).attachments}
    # What a crash left on its networks (on networks it has left since, gc finds it).
    for network_id in attached:
        if _exists(network_id):
            ipam.release(store.get(network_id), cid)
