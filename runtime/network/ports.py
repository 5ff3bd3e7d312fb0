"""Published ports: ``-p``, ``-P`` and ``--expose``, as Docker parses and applies them.

``parse_publish``/``parse_expose`` read the flags as typed (Docker's wording for every
error); ``validate`` runs them at ``create``. ``publish`` runs in the container's monitor
once its endpoints exist: it binds every host port with a userland proxy
(``runtime.network.proxy``; the bind is what reserves the port, so a taken port fails the
start with "port is already allocated") and adds DNAT rules for traffic to the host's
non-loopback addresses in the nftables table ``<prefix>-ports`` (family ``ip``). Each
container has its own pair of base chains there (``pre-<id12>`` on prerouting, skipping
packets that arrive from a bridge, where the proxy answers instead so that hairpin replies
come back through the host; ``out-<id12>`` on output), so containers starting and stopping
at once only ever add or delete their own chains. ``route_localnet`` is 0, so 127.0.0.1
is served by the proxy alone.

Owns on disk: ``<container dir>/ports.json`` (the bindings in force while the container
runs, with the random host ports chosen) and the lock ``<run root>/ports.lock`` that
serialises changes to the table. Never touches other tables or other containers' chains.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from runtime import paths
from runtime.errors import InvalidSpec, KernelError, NotFound
from runtime.network import nftables
from runtime.network.proxy import PortProxy
from runtime.spec import ContainerSpec
from runtime.state import flocked, read_json, write_json

if TYPE_CHECKING:
    from runtime.containers.store import Record
    from runtime.network import Service

PROTOCOLS = ("tcp", "udp")
_DIGITS = re.compile(r"[0-9]+")


class _Endpoint(Protocol):
    @property
    def ip(self) -> str: ...


@dataclass(frozen=True)
class Mapping:
    """One container port and where on the host it is published."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""  # "" = every address (shown as 0.0.0.0)
    host_port: int = 0  # 0 = any free port
    host_port_end: int = 0  # a range of host ports to pick one from

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def _port_range(text: str) -> tuple[int, int] | None:
    """Go's nat.ParsePortRange: ``80`` or ``80-90``, each a 16-bit number."""
    parts = text.split("-")
    if len(parts) > 2 or not all(_DIGITS.fullmatch(p) for p in parts):
        return None
    start, end = int(parts[0]), int(parts[-1])
    if end > 65535 or end < start:
        return None
    return start, end


def _split_proto(text: str) -> tuple[str, str]:
    port, _, proto = text.partition("/")
    return port, (proto or "tcp").lower()


def parse_publish(text: str) -> list[Mapping]:
    """``[IP:][HOST:]CONTAINER[/PROTO]`` with ranges, as ``docker run -p`` reads it."""
    parts = text.split(":")
    container = parts[-1]
    host_ip = ":".join(parts[:-2]) if len(parts) > 2 else ""
    host = parts[-2] if len(parts) > 1 else ""
    container, proto = _split_proto(container)
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidSpec(f"invalid IP address: {host_ip}") from None
    if not container:
        raise InvalidSpec(f"no port specified: {text}<empty>")
    ports = _port_range(container)
    if ports is None or ports[0] == 0:
        raise InvalidSpec(f"invalid containerPort: {container}")
    host_ports = (0, 0)
    if host:
        parsed = _port_range(host)
        if parsed is None:
            raise InvalidSpec(f"invalid hostPort: {host}")
        host_ports = parsed
    if proto not in PROTOCOLS:
        raise InvalidSpec(f"invalid proto: {proto}")
    count = ports[1] - ports[0]
    if host and host_ports[1] - host_ports[0] != count:
        if count:
            raise InvalidSpec(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
        # One container port and a host range: the range is a pool to pick a port from.
        return [Mapping(ports[0], proto, host_ip, host_ports[0], host_ports[1])]
    return [
        Mapping(ports[0] + i, proto, host_ip, host_ports[0] + i if host_ports[0] else 0)
        for i in range(count + 1)
    ]


def parse_expose(text: str) -> list[Mapping]:
    """``--expose PORT[/PROTO]`` or a range ``7000-7010/udp``."""
    if ":" in text:
        raise InvalidSpec(f"invalid port format for --expose: {text}")
    port, proto = _split_proto(text)
    ports = _port_range(port)
    if ports is None or ports[0] == 0:
        raise InvalidSpec(
            f"invalid range format for --expose: {text}, error: invalid syntax for port: {port}"
        )
    if proto not in PROTOCOLS:
        raise InvalidSpec(f"invalid proto: {proto}")
    return [Mapping(p, proto) for p in range(ports[0], ports[1] + 1)]


def validate(spec: ContainerSpec) -> None:
    """Parse the port flags (for their errors); called by ``create`` before anything."""
    for text in spec.publish:
        parse_publish(text)
    for text in spec.expose:
        parse_expose(text)
    if spec.network_mode.startswith("container:"):
        if spec.publish or spec.publish_all:
            raise InvalidSpec(
                "conflicting options: port publishing and the container type network mode"
            )
        if spec.expose:
            raise InvalidSpec(
                "conflicting options: port exposing and the container type network mode"
            )


def requested(spec: ContainerSpec, image_config: dict[str, Any]) -> tuple[list[Mapping], list[str]]:
    """What to publish and which ports are exposed (image EXPOSE, --expose and -p)."""
    mappings = [m for text in spec.publish for m in parse_publish(text)]
    exposed = dict.fromkeys(
        str(k) if "/" in str(k) else f"{k}/tcp" for k in image_config.get("ExposedPorts") or {}
    )
    exposed.update(dict.fromkeys(m.key for text in spec.expose for m in parse_expose(text)))
    exposed.update(dict.fromkeys(m.key for m in mappings))
    if spec.publish_all:
        published = {m.key for m in mappings}
        for key in exposed:
            if key not in published:
                number, _, proto = key.partition("/")
                mappings.append(Mapping(int(number), proto or "tcp"))
    return mappings, list(exposed)


def port_bindings(spec: ContainerSpec) -> dict[str, list[dict[str, str]]]:
    """``HostConfig.PortBindings``: the -p flags as asked (host port "" when random)."""
    result: dict[str, list[dict[str, str]]] = {}
    for text in spec.publish:
        for m in parse_publish(text):
            port = (
                ""
                if not m.host_port
                else str(m.host_port)
                if not m.host_port_end
                else f"{m.host_port}-{m.host_port_end}"
            )
            result.setdefault(m.key, []).append({"HostIp": m.host_ip, "HostPort": port})
    return result


def remove_table() -> bool:
    """Delete the whole ``<prefix>-ports`` table (test teardown, ``gc`` of everything)."""
    with _locked():
        if _table_chains() is None:
            return False
        _nft([f"delete table ip {table()}"], "delete the published-ports table")
    return True


# -- applying: proxy listeners and DNAT chains


def publish(record: Record, endpoints: Sequence[_Endpoint]) -> list[Service]:
    """Bind the host ports and add the DNAT rules; return the proxy to keep running."""
    if record.spec.network_mode in ("host", "none") or not endpoints:
        return []  # as Docker: -p means nothing without a network namespace of our own
    mappings, exposed = requested(record.spec, record.image_config)
    if not exposed:
        return []
    target = endpoints[0].ip
    proxy = PortProxy(target)
    try:
        bound = [
            (m, proxy.bind(m.proto, m.host_ip, m.host_port, m.host_port_end, m.container_port))
            for m in mappings
        ]
        # Saved first: it is what tells unpublish that there are chains to delete.
        _save(record, exposed, bound)
        if bound:
            _add_chains(record.id, target, bound)
    except BaseException:
        proxy.close()
        try:
            _delete_chains(record.id)
        except KernelError:
            pass  # the first failure is the one to report
        (record.directory / "ports.json").unlink(missing_ok=True)
        raise
    if not bound:
        proxy.close()  # only exposed: shown by ps, nothing to relay
        return []
    return [proxy]


def unpublish(record: Record) -> None:
    """Undo ``publish`` (the proxy itself closes with the monitor's services).

    Safe to call when nothing was published, and more than once. Only a container that
    published something pays for running nft here (``gc`` finds what a crash left).
    """
    path = record.directory / "ports.json"
    if not path.exists():
        return
    _delete_chains(record.id)
    path.unlink(missing_ok=True)


def bindings(record: Record) -> dict[str, list[dict[str, str]] | None]:
    """``NetworkSettings.Ports`` while the container runs: ``{"80/tcp": [{"HostIp":
    "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}``; empty when it is not running."""
    try:
        data = read_json(record.directory / "ports.json")
    except (FileNotFoundError, ValueError):
        return {}
    return dict(data.get("Ports") or {})


def port_lines(record: Record, private: str | None = None) -> list[str]:
    """What ``moorage port`` prints: ``80/tcp -> 0.0.0.0:8080`` lines, or with a private
    port (``80`` or ``80/udp``) just ``0.0.0.0:8080``."""
    ports = bindings(record)
    if private is not None:
        key = private if "/" in private else f"{private}/tcp"
        found = ports.get(key)
        if not found:
            raise NotFound(f"No public port '{key}' published for {record.name}")
        return [_host_port(b) for b in found]
    lines = []
    for key, found in sorted(ports.items(), key=lambda kv: _sort_key(kv[0])):
        lines += [f"{key} -> {_host_port(b)}" for b in found or ()]
    return lines


def _host_port(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{binding['HostPort']}" if ":" in ip else f"{ip}:{binding['HostPort']}"


def _sort_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    return int(number) if number.isdigit() else 0, proto


def _save(record: Record, exposed: list[str], bound: list[tuple[Mapping, int]]) -> None:
    ports: dict[str, list[dict[str, str]] | None] = dict.fromkeys(exposed)
    for mapping, host_port in bound:
        entry = {"HostIp": mapping.host_ip or "0.0.0.0", "HostPort": str(host_port)}
        ports[mapping.key] = [*(ports.get(mapping.key) or []), entry]
    write_json(record.directory / "ports.json", {"Ports": ports})


def table() -> str:
    return f"{paths.prefix()}-ports"


def _chains(cid: str) -> tuple[str, str]:
    return f"pre-{cid[:12]}", f"out-{cid[:12]}"


def _rules(target: str, bound: list[tuple[Mapping, int]]) -> tuple[list[str], list[str]]:
    pre: list[str] = []
    out: list[str] = []
    for mapping, host_port in bound:
        ip = mapping.host_ip
        if ip and (":" in ip or ipaddress.ip_address(ip).is_loopback):
            continue  # IPv6 and loopback bindings are served by the proxy alone
        where = (
            f"ip daddr {ip}"
            if ip and ip != "0.0.0.0"
            else "fib daddr type local ip daddr != 127.0.0.0/8"
        )
        rule = (
            f"{where} {mapping.proto} dport {host_port} "
            f"counter dnat to {target}:{mapping.container_port}"
        )
        # From a bridge (another container) the proxy answers: DNAT back onto the same
        # bridge would let the reply bypass the host and reach the client unNATed.
        pre.append(f'meta iifkind != "bridge" {rule}')
        out.append(rule)
    return pre, out


def _add_chains(cid: str, target: str, bound: list[tuple[Mapping, int]]) -> None:
    pre_rules, out_rules = _rules(target, bound)
    if not pre_rules:
        return
    t = table()
    pre, out = _chains(cid)
    lines = [
        f"add table ip {t}",
        f"add chain ip {t} {pre} {{ type nat hook prerouting priority dstnat; }}",
        f"add chain ip {t} {out} {{ type nat hook output priority -100; }}",
        # a chain left by a monitor that was killed would still hold old rules
        f"flush chain ip {t} {pre}",
        f"flush chain ip {t} {out}",
    ]
    lines += [f"add rule ip {t} {pre} {r}" for r in pre_rules]
    lines += [f"add rule ip {t} {out} {r}" for r in out_rules]
    with _locked():
        _nft(lines, "add DNAT rules for published ports")


def _delete_chains(cid: str) -> None:
    with _locked():
        present = _table_chains()
        if present is None:
            return
        mine = [c for c in _chains(cid) if c in present]
        if not mine:
            return
        if set(mine) == present:
            _nft([f"delete table ip {table()}"], "delete the published-ports table")
            return
        lines = []
        for chain in mine:
            lines += [f"flush chain ip {table()} {chain}", f"delete chain ip {table()} {chain}"]
        _nft(lines, "delete DNAT rules for published ports")


def gc(live_ids: set[str]) -> list[str]:
    """Delete the chains of containers not in ``live_ids``; return the chains deleted."""
    with _locked():
        present = _table_chains() or set()
    live = {cid[:12] for cid in live_ids}
    orphans = sorted({c.split("-", 1)[1] for c in present if c.split("-", 1)[1] not in live})
    for short in orphans:
        _delete_chains(short)
    return [c for c in sorted(present) if c.split("-", 1)[1] in orphans]


def _table_chains() -> set[str] | None:
    """Names of the chains in our table, None when there is no table."""
    done = nftables.run(f"list table ip {table()}\n", json=True)
    if not done.ok:
        if "No such file or directory" in done.err:
            return None
        raise KernelError("nft list table", errno.EIO, done.err)
    items = json.loads(done.out).get("nftables", [])
    return {item["chain"]["name"] for item in items if "chain" in item}


def _nft(lines: list[str], what: str) -> None:
    done = nftables.run("\n".join(lines) + "\n")
    if not done.ok:
        raise KernelError(f"nft: {what}", errno.EINVAL, done.err)


@contextmanager
def _locked() -> Iterator[None]:
    paths.run_root().mkdir(parents=True, exist_ok=True)
    with flocked(paths.run_root() / "ports.lock"):
        yield
