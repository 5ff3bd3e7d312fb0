"""Which networks a container is on, and its live endpoints on them.

Two files in the container's directory, both removed with it:

- ``network.json``: what was asked for and survives restarts: the attachments (network
  id, ``--network-alias`` aliases, ``--ip``, ``--ip6``, ``--mac-address``) in order,
  ``eth0`` first, and the legacy ``--link`` targets. ``connect``/``disconnect`` edit it.
- ``endpoints.json``: what exists while the container runs: one ``Endpoint`` per
  attachment with its address, MAC and host-side veth. Written by plug, emptied by
  unplug; ``endpoints_of`` reads it. Nothing here touches the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime import paths, state
from runtime.state import flocked, read_json, write_json


@dataclass(frozen=True)
class Attachment:
    network_id: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""  # --ip, empty: any
    mac_address: str = ""  # --mac-address, empty: 02:42 + the address
    network_name: str = ""  # at attach time: what "network X not found" names
    ipv6_address: str = ""  # --ip6, empty: any (on a network with IPv6)


@dataclass(frozen=True)
class Link:
    target: str  # container id
    name: str  # its name when linked
    alias: str


@dataclass
class NetworkConfig:
    attachments: list[Attachment] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "attachments": [asdict(a) for a in self.attachments],
            "links": [asdict(link) for link in self.links],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls(
            attachments=[
                Attachment(
                    a["network_id"],
                    tuple(a.get("aliases") or ()),
                    a.get("ipv4_address", ""),
                    a.get("mac_address", ""),
                    a.get("network_name", ""),
                    a.get("ipv6_address", ""),
                )
                for a in data.get("attachments", [])
            ],
            links=[Link(**link) for link in data.get("links", [])],
        )


@dataclass(frozen=True)
class Endpoint:
    network_id: str
    network_name: str
    endpoint_id: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    aliases: tuple[str, ...]
    user_defined: bool
    ifname: str  # inside the container: eth0, eth1 ...
    veth: str  # host side
    requested_ip: str = ""  # the --ip it was asked for, for IPAMConfig
    requested_ip6: str = ""  # the --ip6
    ip6: str = ""  # on a network with IPv6
    prefixlen6: int = 0
    gateway6: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoint:
        values = dict(data)
        values["aliases"] = tuple(values.get("aliases") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


def _config_path(cid: str) -> Path:
    return paths.container(cid) / "network.json"


def _live_path(cid: str) -> Path:
    return paths.container(cid) / "endpoints.json"


def lock(cid: str) -> Any:
    """Serialises changes to one container's network files (plug, connect, disconnect)."""
    return flocked(paths.container(cid) / "network.lock")


def load_config(cid: str) -> NetworkConfig:
    try:
        return NetworkConfig.from_json(read_json(_config_path(cid)))
    except FileNotFoundError:
        return NetworkConfig()


def save_config(cid: str, config: NetworkConfig) -> None:
    write_json(_config_path(cid), config.to_json())


def all_attachments() -> Iterator[tuple[str, list[Attachment]]]:
    """(container id, attachments) for every container with a network.json."""
    try:
        entries = list(os.scandir(paths.containers()))
    except FileNotFoundError:
        return
    for entry in entries:
        if len(entry.name) == 64 and os.path.exists(os.path.join(entry.path, "network.json")):
            try:
                yield entry.name, load_config(entry.name).attachments
            except (OSError, ValueError, KeyError):
                continue  # being removed or written right now


def live(cid: str) -> list[Endpoint]:
    """The endpoints file as it is, whatever the container's state."""
    try:
        return [Endpoint.from_json(e) for e in read_json(_live_path(cid))]
    except (FileNotFoundError, NotADirectoryError):
        return []


def save_live(cid: str, endpoints: list[Endpoint]) -> None:
    if endpoints:
        write_json(_live_path(cid), [e.to_json() for e in endpoints])
    else:
        try:
            os.unlink(_live_path(cid))
        except FileNotFoundError:
            pass


def has_networks(cid: str) -> bool:
    """Whether removal has network state to undo (``verbs.forget``): live endpoints, or
    attachments whose addresses a crash may have left in IPAM. False on none/host, so
    removing such a container need not load the network verbs at all."""
    try:
        return bool(live(cid) or load_config(cid).attachments)
    except NotADirectoryError:
        return False


def endpoints_of(cid: str) -> list[Endpoint]:
    """The running container's endpoints; empty when stopped or on none/host."""
    try:
        status = state.load(paths.container(cid)).status
    except (FileNotFoundError, ValueError):
        return []
    if status in (state.EXITED, state.DEAD):
        return []
    return live(cid)
