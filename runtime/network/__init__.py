"""Container networking: what the monitor calls around a container's life.

The monitor calls ``plug(record, pid)`` once the container's init has made its network
namespace and before it lets the init go on, and ``Plugged.unplug()`` once the init has
exited (before a restart plugs again). Everything else in this package (networks on
disk, IPAM, bridges and veths, NAT rules, published ports, the embedded DNS server)
stays behind these two calls, so the monitor knows nothing of networking.

``Plugged.services`` are objects with ``fileno()`` and ``on_readable()`` that need to
live as long as the container runs (the userland port proxy, the DNS server); the
monitor puts them in its selector loop, which keeps it single-threaded (it forks the
init again on restart, which must not happen with threads around).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

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

    def unplug(self) -> None:
        for service in self.services:
            service.close()
        self.services = []


def plug(record: Record, pid: int) -> Plugged:
    """Connect the container whose init is ``pid`` to its networks (none yet)."""
    return Plugged()
