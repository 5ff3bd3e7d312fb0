"""The container spec: what a user asked for, validated before the first syscall.

``ContainerSpec`` is a frozen dataclass built by the CLI (and later by the dashboard's
services) from docker-style options. ``validate`` checks it against the host and returns
named reasons as ``InvalidSpec``; nothing here touches the kernel or the disk besides
reading host facts (CPU count, boot id).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from runtime import capabilities, seccomp, units
from runtime.errors import InvalidSpec

MIN_MEMORY = 6 * 1024 * 1024  # Docker's floor: "Minimum memory limit allowed is 6MB"
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    cmd: tuple[str, ...] | None = None  # None: the image's Cmd
    entrypoint: tuple[str, ...] | None = None  # None: the image's; (): cleared
    name: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    tty: bool = False
    stdin_open: bool = False
    stdin_once: bool = False
    auto_remove: bool = False
    restart_policy: str = "no"
    restart_max: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    memory: int = 0
    memory_swap: int = 0  # 0: default (twice memory); -1: unlimited
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0
    read_only: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    network_mode: str = "bridge"  # bridge, none, host, container:X or a network
    ipc_mode: str = "private"
    pid_mode: str = ""
    devices: tuple[str, ...] = ()  # HOST[:CONTAINER[:PERMS]]
    shm_size: int = 64 * 1024 * 1024
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    # Networking (runtime/network validates and applies these).
    network_aliases: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    mac_address: str = ""
    publish: tuple[str, ...] = ()  # -p as typed: [IP:][HOST:]CONTAINER[/PROTO]
    publish_all: bool = False  # -P
    expose: tuple[str, ...] = ()  # --expose PORT[/PROTO] or a range
    links: tuple[str, ...] = ()  # --link NAME[:ALIAS]
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # --add-host NAME:IP
    # Storage (runtime/volumes validates and applies these).
    volumes: tuple[str, ...] = ()  # -v as typed: [SOURCE:]TARGET[:OPTIONS]
    mounts: tuple[str, ...] = ()  # --mount as typed: type=...,source=...,target=...
    tmpfs: tuple[str, ...] = ()  # --tmpfs PATH[:OPTIONS]
    volumes_from: tuple[str, ...] = ()  # --volumes-from NAME[:ro|rw]
    security_opt: tuple[str, ...] = ()  # --security-opt seccomp=unconfined ...
    # Health check flags over the image's HEALTHCHECK (runtime/health validates, merges
    # and runs them); durations in nanoseconds, 0: the image's value or the default.
    health_cmd: str | None = None
    health_interval: int = 0
    health_timeout: int = 0
    health_start_period: int = 0
    health_retries: int = 0
    no_healthcheck: bool = False

    @property
    def seccomp_confined(self) -> bool:
        return not self.privileged and seccomp.parse_security_options(self.security_opt)

    @property
    def health_flags(self) -> bool:
        """Any --health-* or --no-healthcheck flag given. Without one there is nothing for
        ``runtime.health`` to validate, and a check only if the image has a HEALTHCHECK:
        ``run`` loads that module only then."""
        return bool(
            self.no_healthcheck
            or self.health_cmd
            or self.health_interval
            or self.health_timeout
            or self.health_start_period
            or self.health_retries
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("cmd", "entrypoint"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        for f in dataclasses.fields(cls):
            if f.type.startswith("tuple[str, ...]") and f.name not in ("cmd", "entrypoint"):
                values[f.name] = tuple(values.get(f.name) or ())
        return cls(**values)


def parse_restart(text: str) -> tuple[str, int]:
    """'on-failure:3' → ('on-failure', 3); rejects unknown policies like Docker."""
    name, _, count = text.partition(":")
    if name not in RESTART_POLICIES:
        raise InvalidSpec(f"invalid restart policy '{text}'")
    if count:
        if name != "on-failure":
            raise InvalidSpec(f"maximum retry count cannot be used with restart policy '{name}'")
        if not count.isdigit():
            raise InvalidSpec(f"maximum retry count must be an integer: {count}")
        return name, int(count)
    return name, 0


def _cpus_in(cpuset: str, limit: int) -> bool:
    for part in cpuset.split(","):
        bounds = part.split("-")
        if not all(b.isdigit() for b in bounds) or len(bounds) > 2:
            return False
        if any(int(b) >= limit for b in bounds):
            return False
    return True


def validate(spec: ContainerSpec) -> ContainerSpec:
    """Return ``spec`` if it can run on this host, else raise InvalidSpec with the reason."""
    if spec.memory and spec.memory < MIN_MEMORY:
        raise InvalidSpec("Minimum memory limit allowed is 6MB")
    if spec.memory_swap > 0:
        if not spec.memory:
            raise InvalidSpec("You should always set the Memory limit when using Memoryswap limit")
        if spec.memory_swap < spec.memory:
            raise InvalidSpec(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
    ncpu = os.cpu_count() or 1
    if spec.nano_cpus and not (10_000_000 <= spec.nano_cpus <= ncpu * 1_000_000_000):
        raise InvalidSpec(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )
    if spec.cpu_shares < 0:
        raise InvalidSpec("--cpu-shares must be a positive number")
    if spec.cpuset_cpus and not _cpus_in(spec.cpuset_cpus, ncpu):
        raise InvalidSpec(
            f"Requested CPUs are not available - requested {spec.cpuset_cpus}, "
            f"available: 0-{ncpu - 1}"
        )
    if spec.restart_policy not in RESTART_POLICIES:
        raise InvalidSpec(f"invalid restart policy '{spec.restart_policy}'")
    if spec.auto_remove and spec.restart_policy != "no":
        raise InvalidSpec("Conflicting options: --restart and --rm")
    if spec.hostname is not None and not _HOSTNAME.match(spec.hostname):
        raise InvalidSpec(f"invalid hostname format: {spec.hostname}")
    if spec.hostname and spec.network_mode.startswith("container:"):
        raise InvalidSpec("Conflicting options: hostname and the network mode")
    if spec.stop_signal:
        units.parse_signal(spec.stop_signal)
    if spec.stop_timeout is not None and spec.stop_timeout < -1:
        raise InvalidSpec("invalid stop timeout")
    for cap in spec.cap_add + spec.cap_drop:
        capabilities.normalise(cap)
    seccomp.parse_security_options(spec.security_opt)
    if not spec.network_mode:
        raise InvalidSpec("network mode cannot be empty")  # names: runtime.network checks
    if spec.ipc_mode not in ("private", "shareable", "host", "") and not spec.ipc_mode.startswith(
        "container:"
    ):
        raise InvalidSpec(f"invalid IPC mode: {spec.ipc_mode}")
    if spec.pid_mode not in ("", "host") and not spec.pid_mode.startswith("container:"):
        raise InvalidSpec(f"invalid PID mode: {spec.pid_mode}")
    if spec.log_driver not in ("json-file", "none"):
        raise InvalidSpec(f"logging driver not supported: {spec.log_driver}")
    for key in spec.log_opts:
        if key not in ("max-size", "max-file"):
            raise InvalidSpec(f"unknown log opt '{key}' for json-file log driver")
    for device in spec.devices:
        host = device.split(":")[0]
        if not os.path.exists(host):
            raise InvalidSpec(
                f"error gathering device information while adding custom device "
                f'"{host}": no such file or directory'
            )
    if spec.workdir is not None and spec.workdir and not spec.workdir.startswith("/"):
        raise InvalidSpec(
            f"the working directory '{spec.workdir}' is invalid, it needs to be an absolute path"
        )
    for item in spec.env:
        if not item or item.startswith("="):
            raise InvalidSpec(f"invalid environment variable: {item}")
    return spec
