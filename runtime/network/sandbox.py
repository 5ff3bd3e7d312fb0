"""A container's network options at create: validation, /etc files, legacy links.

``validate`` checks ``--network``, ``--network-alias``, ``--ip``, ``--mac-address``,
``--dns``, ``--add-host`` and ``--link`` against the networks and containers that exist,
before anything is made. ``prepare`` turns them into the container's ``network.json``
attachments and the ``--link`` variables. ``resolv_conf`` and ``hosts`` write the text
of the container's ``/etc/resolv.conf`` and ``/etc/hosts`` (bind-mounted from its
directory; ``hosts`` is rewritten in place at each start, when the address is known).
Never touches the kernel.
"""

from __future__ import annotations

import ipaddress
import re

from runtime import paths, state
from runtime.errors import InvalidSpec, NotFound
from runtime.network import ipam, store
from runtime.network.endpoints import Attachment, Endpoint, Link, NetworkConfig, endpoints_of
from runtime.spec import ContainerSpec

HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
EMBEDDED_DNS = "127.0.0.11"
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")


def mode_kind(network_mode: str) -> str:
    """'none', 'host', 'container' or 'network' (the default bridge or a user network)."""
    if network_mode in ("none", "host"):
        return network_mode
    if network_mode.startswith("container:"):
        return "container"
    return "network"


def network_of(spec: ContainerSpec) -> store.Network | None:
    """The network ``--network`` names, or None for none/host/container:."""
    if mode_kind(spec.network_mode) != "network":
        return None
    return store.get("bridge" if spec.network_mode in ("", "default") else spec.network_mode)


def _running(ref: str) -> tuple[str, str]:
    from runtime.containers import store as containers

    cid = containers.resolve(ref)
    record = containers.load(cid)
    if state.load(paths.container(cid)).status not in (state.RUNNING, state.PAUSED):
        raise InvalidSpec(f"cannot use container {record.name}: it is not running")
    return cid, record.name


def validate(spec: ContainerSpec) -> None:
    """Raise InvalidSpec/NotFound for options the networks cannot honour."""
    kind = mode_kind(spec.network_mode)
    if kind == "container":
        target = spec.network_mode.split(":", 1)[1]
        try:
            _running(target)
        except InvalidSpec:
            raise InvalidSpec(
                f"cannot join network namespace of a non running container: {target} is not running"
            ) from None
    network = network_of(spec)
    if network is not None and network.driver != "bridge":
        network = None  # `--network <id of host>` and the like: nothing to attach
    if kind != "network" and (
        spec.ipv4_address or spec.ipv6_address or spec.network_aliases or spec.mac_address
    ):
        raise InvalidSpec(
            f"conflicting options: --ip, --ip6, --network-alias and --mac-address "
            f"cannot be used with network mode {spec.network_mode}"
        )
    if spec.network_aliases and network is not None and not network.user_defined:
        raise InvalidSpec(
            "network-scoped alias is supported only for containers in user defined networks"
        )
    if spec.ipv4_address and network is not None:
        ipam.check_requested(network, spec.ipv4_address)
    if spec.ipv6_address and network is not None:
        ipam.check_requested(network, spec.ipv6_address, 6)
    if spec.mac_address and not _MAC.fullmatch(spec.mac_address):
        raise InvalidSpec(f"invalid MAC address: {spec.mac_address}")
    for server in spec.dns:
        _ip(server, f"{server} is not an ip address")
    for entry in spec.extra_hosts:
        name, sep, address = entry.partition(":")
        if not sep or not name:
            raise InvalidSpec(
                f'invalid argument "{entry}" for "--add-host" flag: bad format for add-host'
            )
        _ip(address, f'invalid argument "{entry}" for "--add-host" flag: invalid IP address')
    if spec.links and kind != "network":
        raise InvalidSpec(
            f"conflicting options: --link cannot be used with network mode {spec.network_mode}"
        )
    for item in spec.links:
        target, _, alias = item.partition(":")
        if not target:
            raise InvalidSpec(f"invalid link: {item}")
        try:
            _running(target)
        except InvalidSpec:
            raise InvalidSpec(
                f"Cannot link to a non running container: /{target} AS /{alias or target}"
            ) from None
        except NotFound:
            raise NotFound(f"could not get container for {target}") from None


def _ip(text: str, message: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise InvalidSpec(message) from None


def prepare(spec: ContainerSpec) -> NetworkConfig:
    """The attachments and links a validated spec asks for."""
    config = NetworkConfig()
    network = network_of(spec)
    if network is not None and network.driver == "bridge":
        config.attachments.append(
            Attachment(
                network.id,
                tuple(spec.network_aliases),
                spec.ipv4_address,
                spec.mac_address.lower(),
                network.name,
                spec.ipv6_address,
            )
        )
    for item in spec.links:
        target, _, alias = item.partition(":")
        cid, name = _running(target)
        config.links.append(Link(cid, name, alias or name))
    return config


def _exposed(target_cid: str) -> list[tuple[int, str]]:
    """The target's exposed ports (image EXPOSE, --expose, -p), lowest first, tcp first."""
    from runtime.containers import store as containers
    from runtime.network import ports

    record = containers.load(target_cid)
    found = set()
    for key in ports.requested(record.spec, record.image_config)[1]:
        number, _, proto = key.partition("/")
        found.add((int(number), proto or "tcp"))
    return sorted(found, key=lambda p: (p[0], p[1] != "tcp"))


def link_env(config: NetworkConfig, consumer: str) -> list[str]:
    """Docker's legacy link variables: ALIAS_PORT*, ALIAS_NAME, ALIAS_ENV_*."""
    from runtime.containers import store as containers

    env: list[str] = []
    for link in config.links:
        alias = link.alias.upper().replace("-", "_")
        found = endpoints_of(link.target)
        address = found[0].ip if found else ""
        ports = _exposed(link.target)
        if ports and address:
            port, proto = ports[0]
            env.append(f"{alias}_PORT={proto}://{address}:{port}")
        for port, proto in ports if address else []:
            key = f"{alias}_PORT_{port}_{proto.upper()}"
            env += [
                f"{key}={proto}://{address}:{port}",
                f"{key}_ADDR={address}",
                f"{key}_PORT={port}",
                f"{key}_PROTO={proto}",
            ]
        env.append(f"{alias}_NAME=/{consumer}/{link.alias}")
        for item in containers.load(link.target).env:
            key, sep, value = item.partition("=")
            if sep and key not in ("HOME", "PATH"):
                env.append(f"{alias}_ENV_{key}={value}")
    return env


def _host_resolv() -> list[str]:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read().splitlines()
    except OSError:
        return []


def resolv_conf(spec: ContainerSpec, user_defined: bool) -> str:
    """The container's /etc/resolv.conf: 127.0.0.11 on user networks, else the host's."""
    host = _host_resolv()
    search = list(spec.dns_search) or [
        w for line in host if line.startswith("search") for w in line.split()[1:]
    ]
    options = [w for line in host if line.startswith("options") for w in line.split()[1:]]
    if user_defined:
        servers = [EMBEDDED_DNS]
        options = ["ndots:0"] + list(spec.dns_options)
    elif spec.dns:
        servers = list(spec.dns)
        options = options + list(spec.dns_options)
    else:
        servers = [
            line.split()[1]
            for line in host
            if line.startswith("nameserver") and len(line.split()) > 1
        ]
        if spec.network_mode != "host":
            servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
        servers = servers or ["8.8.8.8", "8.8.4.4"]
        options = options + list(spec.dns_options)
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(dict.fromkeys(options)))
    return "\n".join(lines) + "\n"


def hosts(spec: ContainerSpec, hostname: str, endpoints: list[Endpoint], links: list[Link]) -> str:
    """The container's /etc/hosts: localhost, its own address, links, --add-host."""
    extra = "".join(f"{e.partition(':')[2]}\t{e.partition(':')[0]}\n" for e in spec.extra_hosts)
    if spec.network_mode == "host":
        try:
            with open("/etc/hosts") as f:
                return f.read() + extra
        except OSError:
            return HOSTS_HEADER + extra
    text = HOSTS_HEADER + extra
    for link in links:
        found = endpoints_of(link.target)
        if found:
            names = " ".join(dict.fromkeys([link.alias, link.target[:12], link.name]))
            text += f"{found[0].ip}\t{names}\n"
    if endpoints:
        fqdn = f"{hostname}.{spec.domainname}" if spec.domainname else ""
        text += f"{endpoints[0].ip}\t{fqdn + ' ' if fqdn else ''}{hostname}\n"
        if endpoints[0].ip6:
            text += f"{endpoints[0].ip6}\t{fqdn + ' ' if fqdn else ''}{hostname}\n"
    return text
