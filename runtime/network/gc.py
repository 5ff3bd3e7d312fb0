"""Finding what a crash left of networking, and removing it.

A monitor that dies (SIGKILL, OOM, a host crash) never runs unplug: its container's
address allocations stay in IPAM, its ``endpoints.json`` stays, and if something still
holds the container's namespace its veths stay on the bridge. ``collect`` removes
veths named with our link prefix that no running container owns, bridges of networks
that no longer exist, the allocations and endpoint files of containers that are not
running, and rewrites the nft table from the store. ``remove_everything`` deletes every
kernel object the networks made (the test suite calls it at the end of a session).
"""

from __future__ import annotations

from runtime import paths, state
from runtime.errors import MoorageError
from runtime.network import endpoints, ipam, links, nat, store


def _running() -> set[str]:
    from runtime.containers import store as containers
    from runtime.containers.recovery import reconcile

    running = set()
    for cid in containers.ids():
        try:
            if reconcile(cid).status in state.ACTIVE:
                running.add(cid)
        except (MoorageError, OSError, ValueError):
            continue
    return running


def collect() -> dict[str, list[str]]:
    """Remove networking orphans; returns what went, by kind."""
    found: dict[str, list[str]] = {"veths": [], "bridges": [], "allocations": [], "rules": []}
    running = _running()
    owned = {e.veth for cid in running for e in endpoints.live(cid)}
    networks = store.list_networks()
    bridges = {n.bridge for n in networks if n.bridge}
    bridge_prefix = store.bridge_name("")
    for name in links.names():
        if not name.startswith(paths.link_prefix()) or name in bridges:
            continue
        if name.startswith(bridge_prefix):
            if links.delete(name):
                found["bridges"].append(name)
        elif name not in owned and links.delete(name):
            found["veths"].append(name)
    from runtime.containers import store as containers

    for cid in containers.ids():
        if cid not in running and endpoints.live(cid):
            endpoints.save_live(cid, [])
    for network in networks:
        if network.subnet:
            found["allocations"] += ipam.release_unless(network, running)
    from runtime.network import ports

    found["rules"] += [f"DNAT chain {chain}" for chain in ports.gc(running)]
    if found["bridges"] or nat.present():
        with store.locked():
            nat.sync(store.all_unlocked())
        if found["bridges"]:
            found["rules"].append(f"nftables table {nat.table()} rewritten")
    return found


def remove_everything() -> list[str]:
    """Delete every bridge, veth and nft table of ours (not the files on disk)."""
    gone = []
    bridges = {n.bridge for n in store.list_networks() if n.bridge}
    for name in links.names():
        if name.startswith(paths.link_prefix()) or name in bridges:
            if links.delete(name):
                gone.append(name)
    if nat.remove():
        gone.append(nat.table())
    from runtime.network import ports

    if nat.remove(ports.table()):
        gone.append(ports.table())
    return gone
