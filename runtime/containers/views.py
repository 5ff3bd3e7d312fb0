"""Read-only views of containers: inspect, list, top, stats, logs.

``inspect`` returns the Docker-shaped document (``State``, ``Config``, ``HostConfig``,
``GraphDriver``, ``NetworkSettings`` ...) that ``moorage inspect`` prints and templates
read; ``summary`` is the row ``ps`` shows. Reading reconciles, so a container whose
monitor died shows as exited. Nothing here changes a running container.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime import cgroups, health, paths, state, volumes
from runtime import logs as json_logs
from runtime.containers import store
from runtime.containers.recovery import reconcile
from runtime.errors import Conflict, InvalidSpec, NotFound
from runtime.network import ports as net_ports
from runtime.network.settings import network_settings

ZERO_TIME = "0001-01-01T00:00:00Z"


def _ts(value: float) -> str:
    return json_logs.timestamp(value) if value else ZERO_TIME


def inspect(ref: str) -> dict[str, Any]:
    cid = store.resolve(ref)
    record = store.load(cid)
    st = reconcile(cid)
    return document(record, st)


def document(record: store.Record, st: state.State) -> dict[str, Any]:
    spec = record.spec
    directory = record.directory
    cfg = record.image_config
    entrypoint = list(spec.entrypoint) if spec.entrypoint is not None else cfg.get("Entrypoint")
    return {
        "Id": record.id,
        "Created": _ts(record.created),
        "Path": record.path,
        "Args": record.args,
        "State": {
            "Status": st.status,
            "Running": st.status in (state.RUNNING, state.PAUSED),
            "Paused": st.status == state.PAUSED,
            "Restarting": st.status == state.RESTARTING,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == state.DEAD,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": _ts(st.started_at),
            "FinishedAt": _ts(st.finished_at),
            **({"Health": h} if (h := health.document(record, st)) else {}),
        },
        "Image": record.image_id,
        "ResolvConfPath": str(directory / "resolv.conf"),
        "HostnamePath": str(directory / "hostname"),
        "HostsPath": str(directory / "hosts"),
        "LogPath": str(directory / f"{record.id}-json.log"),
        "Name": "/" + record.name,
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "Binds": list(spec.volumes) or None,
            "VolumesFrom": list(spec.volumes_from) or None,
            "Mounts": volumes.host_config_mounts(spec.mounts),
            "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in spec.tmpfs} or None,
            "LogConfig": {"Type": spec.log_driver, "Config": dict(spec.log_opts)},
            "NetworkMode": spec.network_mode,
            "PortBindings": net_ports.port_bindings(spec),
            "PublishAllPorts": spec.publish_all,
            "RestartPolicy": {"Name": spec.restart_policy, "MaximumRetryCount": spec.restart_max},
            "AutoRemove": spec.auto_remove,
            "CapAdd": list(spec.cap_add) or None,
            "CapDrop": list(spec.cap_drop) or None,
            "Dns": list(spec.dns),
            "DnsOptions": list(spec.dns_options),
            "DnsSearch": list(spec.dns_search),
            "ExtraHosts": list(spec.extra_hosts) or None,
            "Links": [
                f"/{link.partition(':')[0]}:/{record.name}/"
                f"{link.partition(':')[2] or link.partition(':')[0]}"
                for link in spec.links
            ]
            or None,
            "IpcMode": spec.ipc_mode or "private",
            "PidMode": spec.pid_mode,
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only,
            "ShmSize": spec.shm_size,
            "Memory": spec.memory,
            "MemorySwap": spec.memory_swap
            if spec.memory_swap
            else (spec.memory * 2 if spec.memory else 0),
            "NanoCpus": spec.nano_cpus,
            "CpuShares": spec.cpu_shares,
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpusetCpus": spec.cpuset_cpus,
            "CpusetMems": spec.cpuset_mems,
            "PidsLimit": spec.pids_limit or None,
            "Devices": [
                {
                    "PathOnHost": d.split(":")[0],
                    "PathInContainer": (d.split(":") + [d.split(":")[0]])[1],
                    "CgroupPermissions": "rwm",
                }
                for d in spec.devices
            ],
            "Init": spec.init or None,
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join([str(directory / "init")] + list(reversed(record.layer_dirs))),
                "UpperDir": str(directory / "upper"),
                "WorkDir": str(directory / "work"),
                "MergedDir": str(directory / "merged"),
            },
        },
        "Mounts": record.extra.get("mounts", []),
        "Config": {
            "Hostname": record.hostname,
            "Domainname": spec.domainname or "",
            "User": record.user,
            "AttachStdin": spec.stdin_open,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": spec.tty,
            "OpenStdin": spec.stdin_open,
            "StdinOnce": spec.stdin_once,
            "Env": record.env,
            "Cmd": record.args if entrypoint else record.argv,
            "Image": record.image_ref,
            "Volumes": cfg.get("Volumes"),
            "ExposedPorts": {key: {} for key in net_ports.requested(spec, cfg)[1]} or None,
            "WorkingDir": record.workdir,
            "Entrypoint": entrypoint or None,
            "OnBuild": None,
            "Labels": record.labels,
            "StopSignal": record.stop_signal,
            "StopTimeout": record.stop_timeout,
            **({"Healthcheck": c} if (c := health.merged(spec, cfg)) else {}),
        },
        "NetworkSettings": network_settings(record, st),
    }


@dataclass(frozen=True)
class Summary:
    """One ``ps`` row; attribute names are the ``--format`` fields Docker offers."""

    ID: str
    Names: str
    Image: str
    ImageID: str
    Command: str
    CreatedAt: str
    Created: float
    State: str
    ExitCode: int
    StartedAt: float
    FinishedAt: float
    Ports: str
    Labels: dict[str, str]
    Status_: dict[str, Any]

    def label(self, key: str) -> str:
        return self.Labels.get(key, "")


def _command(record: store.Record) -> str:
    return " ".join(record.argv)


def _matches(record: store.Record, st: state.State, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "status":
            if st.status not in values:
                return False
        elif key == "name":
            if not any(v.lstrip("/") in record.name for v in values):
                return False
        elif key == "id":
            if not any(record.id.startswith(v) for v in values):
                return False
        elif key == "label":
            for v in values:
                k, sep, val = v.partition("=")
                if k not in record.labels or (sep and record.labels[k] != val):
                    return False
        elif key == "ancestor":
            if not any(_is_ancestor(v, record) for v in values):
                return False
        elif key == "exited":
            if st.status != state.EXITED or str(st.exit_code) not in values:
                return False
        elif key == "health":
            if health.status_of(record, st) not in values:
                return False
        else:
            raise InvalidSpec(f"invalid filter '{key}'")
    return True


def _is_ancestor(value: str, record: store.Record) -> bool:
    from runtime import images

    if value == record.image_ref:
        return True
    try:
        return images.resolve(value).id == record.image_id
    except NotFound:
        return False


def list_containers(
    all: bool = False, filters: dict[str, list[str]] | None = None
) -> list[tuple[store.Record, state.State]]:
    """Containers newest first; only running ones unless ``all``."""
    rows = []
    for cid in store.ids():
        try:
            record = store.load(cid)
            st = reconcile(cid)
        except (NotFound, FileNotFoundError):
            continue  # removed while we looked
        if (
            not all
            and st.status not in (state.RUNNING, state.PAUSED, state.RESTARTING)
            and not (filters and "status" in filters)
        ):
            continue
        if filters and not _matches(record, st, filters):
            continue
        rows.append((record, st))
    rows.sort(key=lambda row: row[0].created, reverse=True)
    return rows


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    valid = {"status", "name", "id", "label", "ancestor", "exited", "health"}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in valid:
            raise InvalidSpec(f"invalid filter '{item}'")
        if key == "health" and value not in health.STATUSES:
            raise InvalidSpec(f"Unrecognised filter value for health: {value}")
        filters.setdefault(key, []).append(value)
    return filters


def _running(cid: str) -> tuple[store.Record, state.State]:
    record = store.load(cid)
    st = reconcile(cid)
    if st.status not in (state.RUNNING, state.PAUSED):
        raise Conflict(f"Container {cid} is not running")
    return record, st


def top(ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """``ps`` on the host, limited to the container's processes (host pids, as Docker)."""
    cid = store.resolve(ref)
    _running(cid)
    pids = set(cgroups.open_cgroup(cid).pids())
    args = ps_args or ["-ef"]
    # -ww: ps otherwise cuts commands at 80 columns whenever it finds a terminal width.
    output = subprocess.run(["ps", *args, "-ww"], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise InvalidSpec(f"ps: {output.stderr.strip()}")
    lines = output.stdout.splitlines()
    headers = lines[0].split()
    if "PID" not in headers:
        raise InvalidSpec("Couldn't find PID field in ps output")
    pid_col = headers.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(headers) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            rows.append(fields)
    return headers, rows


@dataclass(frozen=True)
class Sample:
    cid: str
    name: str
    taken: float
    cpu_total: int
    system_total: int
    online_cpus: int
    memory_usage: int
    memory_limit: int
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def _net_io(pid: int) -> tuple[int, int]:
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, data = line.split(":", 1)
                if name.strip() == "lo":
                    continue
                values = data.split()
                rx += int(values[0])
                tx += int(values[8])
    except OSError:
        pass
    return rx, tx


def sample(ref: str) -> Sample:
    cid = store.resolve(ref)
    record, st = _running(cid)
    stats = cgroups.open_cgroup(cid).stats()
    rx, tx = _net_io(st.pid)
    limit = stats.memory_limit
    host_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Sample(
        cid,
        record.name,
        time.time(),
        stats.cpu_total_ns,
        _system_cpu_ns(),
        os.cpu_count() or 1,
        max(0, stats.memory_usage - stats.memory_cache),
        min(limit, host_memory) if limit else host_memory,
        rx,
        tx,
        stats.blkio_read_bytes,
        stats.blkio_write_bytes,
        stats.pids_current,
    )


def cpu_percent(before: Sample, after: Sample) -> float:
    """Docker's formula: container CPU delta over system delta, times online CPUs."""
    cpu_delta = after.cpu_total - before.cpu_total
    system_delta = after.system_total - before.system_total
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * after.online_cpus * 100.0


def logs(
    ref: str,
    tail: int | None = None,
    since: float | None = None,
    until: float | None = None,
    follow: bool = False,
) -> Iterator[json_logs.Entry]:
    cid = store.resolve(ref)
    record = store.load(cid)
    if record.spec.log_driver == "none":
        raise InvalidSpec("configured logging driver does not support reading")
    directory = paths.container(cid)

    def running() -> bool:
        try:
            return reconcile(cid).status in state.ACTIVE
        except FileNotFoundError:
            return False

    return json_logs.read(directory / f"{cid}-json.log", tail, since, until, follow, running)
