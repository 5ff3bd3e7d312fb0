"""Container networking: what the monitor calls around a container's life.

The monitor calls ``plug(record, pid)`` once the container's init has made its network
namespace and before it lets the init go on, and ``Plugged.unplug()`` once the init has
exited (before a restart plugs again). Everything else in this package (networks on
disk, IPAM, bridges and veths, NAT rules, published ports, the embedded DNS server)
stays behind these two calls, so the monitor knows nothing of networking.

``Plugged.services`` are objects with ``fileno()`` and ``on_readable()`` that need to
live as long as the container runs (the userland port proxy, the DNS server); the
monitor puts them in its selector loop, which keeps it single-threaded (it forks the
init again on restart, which must not happen with threads around). A live ``network
connect`` to a user-defined network asks the monitor (op ``network`` on its socket) to
call ``Plugged.refresh()``, which starts the DNS server then if it was not running; it
then keeps running until the container stops, as Docker's resolver does, even after a
disconnect from the last user-defined network.

The modules: ``store`` (networks on disk), ``ipam`` (addresses), ``endpoints`` (a
container's attachments and live endpoints), ``links`` (bridges, veths, through
``netlink``, a small rtnetlink client that spares a start the import of pyroute2),
``nat`` (nftables: egress, isolation, --internal; ``nftables`` runs the scripts
through libnftables in-process), ``wiring`` (plug/unplug one container), ``sandbox``
(create-time checks, /etc/hosts, resolv.conf, --link),
``settings`` (inspect documents), ``verbs`` (network create/ls/rm/prune/connect/
disconnect), ``gc`` (orphans after a crash); ``ports``, ``proxy`` and ``dns`` belong to
published ports and the embedded resolver.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runtime.containers.store import Record


class Service(Protocol):
    def fileno(self) -> int: ...

    def on_readable(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Plugged:
    """What ``plug`` set up for one run of a container; ``unplug`` undoes all of it."""

    services: list[Service] = field(default_factory=list)
    record: Record | None = None  # set once endpoints (may) exist
    pid: int = 0  # the container's init
    dns: bool = False  # the embedded DNS server is among the services

    def refresh(self) -> list[Service]:
        """After a live ``network connect``: the services that must start now (the DNS
        server, when the container just joined its first user-defined network)."""
        if self.record is None or self.dns:
            return []
        from runtime.network import endpoints

        live = endpoints.live(self.record.id)
        dns = _optional("dns") if any(e.user_defined for e in live) else None
        if dns is None:
            return []
        started: list[Service] = dns.serve(self.record, self.pid, live)
        self.services += started
        self.dns = True
        return started

    def unplug(self) -> None:
        for service in self.services:
            service.close()
        self.services = []
        record, self.record = self.record, None
        if record is None:
            return
        from runtime.network import wiring

        try:
            ports = _optional("ports")
            if ports is not None:
                ports.unpublish(record)
        finally:
            wiring.unplug_all(record.id)


def _optional(name: str) -> Any:
    """The ports/dns modules, written in parallel by another engineer: None until then."""
    try:
        return importlib.import_module(f"runtime.network.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"runtime.network.{name}":
            raise
        return None


def plug(record: Record, pid: int) -> Plugged:
    """Connect the container whose init is ``pid`` to its networks.

    ``none``, ``host`` and ``container:`` modes have nothing to plug. Otherwise every
    attachment gets its veth and address, then published ports and (on a user-defined
    network) the embedded DNS server start. On failure everything made is undone.
    """
    from runtime.network import endpoints, sandbox, wiring

    if sandbox.mode_kind(record.spec.network_mode) != "network":
        return Plugged()
    if not endpoints.load_config(record.id).attachments:
        return Plugged(record=record, pid=pid)  # a later `network connect` may add some
    live = wiring.plug_all(record, pid)
    plugged = Plugged(record=record, pid=pid)
    try:
        ports = _optional("ports")
        if ports is not None:
            plugged.services += ports.publish(record, live)
        embedded = any(e.user_defined for e in live)
        # Only then import it: dnslib is 8 ms that the default bridge does not need.
        dns = _optional("dns") if embedded else None
        if dns is not None:
            plugged.services += dns.serve(record, pid, live)
            plugged.dns = True
        wiring.write_resolv_conf(record, embedded)
    except BaseException:
        plugged.unplug()
        raise
    return plugged
