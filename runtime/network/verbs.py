"""Network verbs, one public function each: create, remove, prune, list, inspect,
connect, disconnect; and ``forget`` for a container being removed.

The CLI and the dashboard call these and nothing deeper. ``connect``/``disconnect``
edit the container's ``network.json`` and, when it runs, hot-plug or unplug the veth
at once; a stopped container picks the change up at its next start.
"""

from __future__ import annotations

from typing import Any

from runtime import paths, state
from runtime.errors import Conflict, InUse, InvalidSpec, MoorageError, NotFound
from runtime.network import endpoints, ipam, links, settings, store, wiring
from runtime.network.endpoints import Attachment

FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


def create(name: str, subnet: str = "", gateway: str = "", ip_range: str = "",
           internal: bool = False, labels: dict[str, str] | None = None,
           driver: str = "bridge") -> store.Network:
    network = store.create(name, subnet, gateway, ip_range, internal, labels, driver)
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
    users = store.containers_on(network.id)
    if users:
        raise InUse(f"error while removing network: network {network.name} id {network.id} "
                    f"has active endpoints ({len(users)} container(s) attached)")
    links.delete(network.bridge)
    store.delete(network)
    wiring.sync_rules()
    return network


def prune(filters: dict[str, list[str]] | None = None) -> list[str]:
    """Remove user-defined networks no container is on; returns their names."""
    removed = []
    for network in list_networks(filters):
        if network.user_defined and not store.containers_on(network.id):
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
        return (value in ("true", "1")) == (network.user_defined
                                            and not store.containers_on(network.id))
    k, sep, v = value.partition("=")
    return k in network.labels and (not sep or network.labels[k] == v)


def list_networks(filters: dict[str, list[str]] | None = None) -> list[store.Network]:
    rows = []
    for network in store.list_networks():
        # Values of one key are alternatives; different keys must all match.
        if all(any(_matches(network, key, v) for v in values)
               for key, values in (filters or {}).items()):
            rows.append(network)
    return rows


def inspect(ref: str) -> dict[str, Any]:
    return settings.network_document(store.get(ref))


def _container(ref: str) -> tuple[str, Any, state.State]:
    from runtime.containers import store as containers
    from runtime.containers.recovery import reconcile
    cid = containers.resolve(ref)
    return cid, containers.load(cid), reconcile(cid)


def connect(network_ref: str, container_ref: str, aliases: tuple[str, ...] = (),
            ipv4_address: str = "") -> None:
    network = store.get(network_ref)
    cid, record, st = _container(container_ref)
    from runtime.network import sandbox
    if sandbox.mode_kind(record.spec.network_mode) != "network" or network.driver != "bridge":
        raise Conflict(f"container {record.name} cannot be connected to network "
                       f"{network.name}: it uses network mode {record.spec.network_mode}")
    if aliases and not network.user_defined:
        raise InvalidSpec("network-scoped alias is supported only for containers in user "
                          "defined networks")
    if ipv4_address:
        ipam.check_requested(network, ipv4_address)
    with endpoints.lock(cid):
        config = endpoints.load_config(cid)
        if any(a.network_id == network.id for a in config.attachments):
            raise Conflict(f"endpoint with name {record.name} already exists in network "
                           f"{network.name}")
        attachment = Attachment(network.id, tuple(aliases), ipv4_address)
        if st.status in (state.RUNNING, state.PAUSED) and st.pid:
            live = endpoints.live(cid)
            inside = set(links.names_inside(st.pid))
            ifname = next(f"eth{i}" for i in range(len(inside) + 1) if f"eth{i}" not in inside)
            route = not network.internal and not any(
                not store.get(e.network_id).internal for e in live if _exists(e.network_id))
            live.append(wiring.plug_one(cid, st.pid, attachment, ifname, route))
            endpoints.save_live(cid, live)
        config.attachments.append(attachment)
        endpoints.save_config(cid, config)


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
            raise Conflict(f"container {record.name} is not connected to network "
                           f"{network.name}")
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
                pass   # gc will find it; removal must not stop half-way
        endpoints.save_live(cid, [])
    for network in store.list_networks():
        if network.subnet:
            ipam.release(network, cid)

