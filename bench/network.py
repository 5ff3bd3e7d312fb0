"""Networking: start-up on the default bridge and 50 published ports, against docker and podman.

Runs, on this machine and from one busybox rootfs (moorage's bootstrapped image, as in
``run_start.py``), interleaved round by round in rotating order:

1. ``run --rm busybox true`` on each engine's default network: moorage's ``bridge``
   (a private bridge and subnet, see below), docker's default bridge, podman's default
   ``podman`` network (netavark). Wall time per command, ``--runs`` times.
2. 50 containers, one CLI call each, ``run -d -p <port>:80 busybox httpd -f -p 80``, then
   one HTTP GET per published port on 127.0.0.1 (any HTTP answer counts: busybox httpd
   answers 404 for ``/`` since the image has no index.html), then one ``rm -f`` of all 50.
   ``--rounds`` times.

Kernel interfaces: those of the engines it drives; ``ip(8)`` for the bridge docker uses and
to check that the chosen subnets are unrouted; ``nft(8)`` to list (and remove) the tables
that podman's netavark adds when they were absent at the start; ``bind(2)`` to check that the
host ports are free.

Owns ``--workdir`` (default ``/var/tmp/moorage-bench-network``), removed at the end, and
only while it runs: moorage's bridge ``mb-br0``, veths ``mb-*`` and nft tables
``moorage-bnet-*`` (subnet ``--moorage-subnet``), docker's bridge ``mb-docker0``
(``--docker-subnet``), podman's ``podman0`` and netavark's tables if they were absent at the
start. dockerd runs with ``--iptables=false`` (published ports through docker-proxy, no host
firewall changes on a shared machine): that is less work per port than a stock dockerd, so
it flatters docker. Never touches /var/lib/moorage, /var/lib/docker or a daemon it did not
start, and ends processes only by the pid it started.

    .venv/bin/python bench/network.py [--runs N] [--rounds N] [--containers 50] [--skip ENGINE]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import ipaddress
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

from _common import (
    BenchError,
    Stats,
    claim_workdir,
    ensure_packages,
    host_snapshot,
    log,
    markdown_table,
    ms,
    rotate,
    run,
    run_main,
    tear_down,
    timed,
    write_report,
)
from run_start import (
    IMAGE,
    PACKAGES,
    ULIMITS,
    Docker,
    Moorage,
    Podman,
    benchmark,
    set_up_engines,
)

MOORAGE_BRIDGE = "mb-br0"
DOCKER_BRIDGE = "mb-docker0"
PODMAN_BRIDGE = "podman0"
PODMAN_SUBNET = "10.88.0.0/16"  # podman's built-in default network
# Tables netavark (through iptables-nft) makes; removed at the end only if they were
# absent at the start and hold nothing but its chains and the base chains.
FIREWALL_TABLES = [("ip", "filter"), ("ip", "nat"), ("ip6", "filter"), ("ip6", "nat")]
BASE_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
HTTPD = ["httpd", "-f", "-p", "80"]


# ---------------------------------------------------------------- engines


class NetMoorage(Moorage):
    command = "moorage run --rm busybox true (default bridge)"

    def __init__(self, work: Path, subnet: str) -> None:
        super().__init__(work)
        # Names and subnet of its own: other engineers' engines and test suites on this
        # machine use moorage0/mg-/mt-/mx- and their own subnets and nft tables.
        self.env.update(
            MOORAGE_PREFIX="moorage-bnet",
            MOORAGE_LINK_PREFIX="mb-",
            MOORAGE_BRIDGE=MOORAGE_BRIDGE,
            MOORAGE_DEFAULT_SUBNET=subnet,
            MOORAGE_ADDRESS_POOL="10.180.0.0/14",
        )
        for key in (
            "MOORAGE_LINK_PREFIX",
            "MOORAGE_BRIDGE",
            "MOORAGE_DEFAULT_SUBNET",
            "MOORAGE_ADDRESS_POOL",
        ):
            os.environ[key] = self.env[key]  # for the in-process clean-up (gc)

    def run_once(self, n: int) -> float:
        return timed([*self.cli, "run", "--rm", "busybox", "true"], env=self.env)

    def start_published(self, port: int) -> str:
        return self.moorage("run", "-d", "-p", f"{port}:80", "busybox", *HTTPD).stdout.strip()

    def remove(self, ids: list[str]) -> None:
        self.moorage("rm", "-f", *ids)

    def cleanup(self) -> None:
        super().cleanup()
        if (self.work / "root").exists():
            from runtime.network import gc

            gone = gc.remove_everything()
            if gone:
                log(f"moorage networking removed: {', '.join(gone)}")


class NetDocker(Docker):
    command = "docker run --rm (default bridge, own dockerd)"

    def __init__(self, work: Path, subnet: str) -> None:
        super().__init__(work)
        self.subnet = ipaddress.ip_network(subnet)
        self.made_bridge = False

    def _daemon(self, cmd: list[str], logname: str) -> subprocess.Popen[bytes]:
        if cmd[0].endswith("dockerd"):
            # run_start.py's dockerd has no bridge; here containers get the default bridge
            # network on a bridge of our own, published ports through docker-proxy.
            cmd = [
                {
                    "--bridge=none": f"--bridge={DOCKER_BRIDGE}",
                    "--userland-proxy=false": "--userland-proxy=true",
                }.get(a, a)
                for a in cmd
            ]
        return super()._daemon(cmd, logname)

    def setup(self, rootfs: Path, tarball: Path) -> None:
        gateway = next(self.subnet.hosts())
        run(["ip", "link", "add", DOCKER_BRIDGE, "type", "bridge"])
        self.made_bridge = True
        run(["ip", "addr", "add", f"{gateway}/{self.subnet.prefixlen}", "dev", DOCKER_BRIDGE])
        run(["ip", "link", "set", DOCKER_BRIDGE, "up"])
        super().setup(rootfs, tarball)

    def run_once(self, n: int) -> float:
        return timed([*self.base, "run", "--rm", IMAGE, "true"], env=self.env)

    def start_published(self, port: int) -> str:
        return run(
            [*self.base, "run", "-d", "-p", f"{port}:80", IMAGE, *HTTPD], env=self.env
        ).stdout.strip()

    def remove(self, ids: list[str]) -> None:
        run([*self.base, "rm", "-f", *ids], env=self.env)

    def cleanup(self) -> None:
        super().cleanup()
        if self.made_bridge:
            run(["ip", "link", "del", DOCKER_BRIDGE], check=False)


class NetPodman(Podman):
    command = "podman --runtime runc run --rm (default network, netavark; +ulimits)"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.base += ["--network-config-dir", str(self.work / "networks")]
        self.bridge_before = os.path.exists(f"/sys/class/net/{PODMAN_BRIDGE}")

    def run_once(self, n: int) -> float:
        return timed([*self.base, "run", "--rm", *ULIMITS, IMAGE, "true"])

    def start_published(self, port: int) -> str:
        return run(
            [*self.base, "run", "-d", "-p", f"{port}:80", *ULIMITS, IMAGE, *HTTPD]
        ).stdout.strip()

    def remove(self, ids: list[str]) -> None:
        run([*self.base, "rm", "-f", "-t", "0", *ids])

    def cleanup(self) -> None:
        super().cleanup()
        if not self.bridge_before and os.path.exists(f"/sys/class/net/{PODMAN_BRIDGE}"):
            run(["ip", "link", "del", PODMAN_BRIDGE], check=False)


NetEngine = NetMoorage | NetDocker | NetPodman


# ---------------------------------------------------------------- host checks


def routed_networks() -> list[ipaddress.IPv4Network]:
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout)
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default" and "." in dst:
            found.append(ipaddress.ip_network(dst, strict=False))
    return found


def check_subnets(subnets: dict[str, str]) -> None:
    routed = routed_networks()
    for what, subnet in subnets.items():
        net = ipaddress.ip_network(subnet)
        clash = [str(r) for r in routed if r.overlaps(net) and r.prefixlen > 0]
        if clash:
            raise BenchError(
                f"the {what} subnet {subnet} overlaps routes already on this host "
                f"({', '.join(clash)}); pick another with --{what}-subnet"
            )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def free_port_block(start: int, count: int) -> int:
    """First port >= start with ``count`` consecutive free ports below the ephemeral range."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    base = start
    while base + count <= low:
        taken = [p for p in range(base, base + count) if not port_is_free(p)]
        if not taken:
            return base
        base = taken[-1] + 1
    raise BenchError(f"no {count} consecutive free ports between {start} and {low}")


def http_answer(port: int, timeout: float = 15.0) -> int:
    """Status of one GET / on 127.0.0.1:port; retries while the server is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as e:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"nothing answered HTTP on 127.0.0.1:{port} within {timeout:.0f}s: {e}"
                ) from e
            time.sleep(0.02)
        finally:
            conn.close()


def nft_tables() -> set[tuple[str, str]]:
    done = run(["nft", "list", "tables"], check=False)
    return {
        tuple(row.split()[1:3])
        for row in done.stdout.splitlines()  # type: ignore[misc]
        if row.startswith("table ")
    }


def remove_netavark_tables(before: set[tuple[str, str]]) -> None:
    """Delete the iptables-nft tables podman's netavark made, if they were absent before
    and hold only its chains; anything else in them is someone else's and stays."""
    for family, name in set(FIREWALL_TABLES) & (nft_tables() - before):
        listing = run(["nft", "list", "table", family, name], check=False).stdout
        chains = {
            row.split()[1] for row in listing.splitlines() if row.strip().startswith("chain ")
        }
        foreign = [c for c in chains if c not in BASE_CHAINS and not c.startswith("NETAVARK")]
        if foreign:
            log(f"leaving nft table {family} {name}: it has chains {foreign}")
            continue
        run(["nft", "delete", "table", family, name], check=False)
        log(f"removed nft table {family} {name} (netavark's)")


# ---------------------------------------------------------------- the measurements


def published_round(engine: NetEngine, ports: range) -> tuple[float, float, float, set[int]]:
    """Start one container per port, GET each port, remove them all.

    Returns (seconds to start all, seconds until all answered, seconds to remove all,
    the HTTP statuses seen)."""
    ids: list[str] = []
    try:
        started = time.perf_counter()
        for port in ports:
            ids.append(engine.start_published(port))
        all_started = time.perf_counter() - started
        statuses = {http_answer(port) for port in ports}
        all_answered = time.perf_counter() - started
        t = time.perf_counter()
        engine.remove(ids)
        removed = time.perf_counter() - t
        ids = []
        return all_started, all_answered, removed, statuses
    finally:
        if ids:  # a failed round: take its containers down before raising
            try:
                engine.remove(ids)
            except BenchError as e:
                log(f"removing {engine.name}'s containers after a failure: {e}")


def bench_published(
    engines: list[NetEngine], rounds: int, ports: dict[str, range]
) -> tuple[dict[str, dict[str, Stats]], dict[str, set[int]], list[str]]:
    samples: dict[str, dict[str, list[float]]] = {
        e.name: {"start": [], "answer": [], "remove": []} for e in engines
    }
    statuses: dict[str, set[int]] = {e.name: set() for e in engines}
    failures: list[str] = []
    for rnd in range(rounds):
        for engine in rotate(engines, rnd):
            try:
                start, answer, remove, seen = published_round(engine, ports[engine.name])
            except BenchError as e:
                # One failed start loses that engine's round, not the whole bench: the
                # report lists it, and the medians are of the rounds that completed.
                failures.append(f"round {rnd + 1}, {engine.name}: {e}")
                log(f"published ports, round {rnd + 1}/{rounds}, {engine.name} FAILED: {e}")
                continue
            for key, value in (("start", start), ("answer", answer), ("remove", remove)):
                samples[engine.name][key].append(value)
            statuses[engine.name] |= seen
            log(
                f"published ports, round {rnd + 1}/{rounds}, {engine.name}: start {start:.1f}s, "
                f"all answered {answer:.1f}s, rm -f {remove:.1f}s"
            )
    return (
        {
            name: {k: Stats.of(v) for k, v in kinds.items()}
            for name, kinds in samples.items()
            if kinds["start"]
        },
        statuses,
        failures,
    )


def report(
    engines: list[NetEngine],
    true: dict[str, Stats],
    published: dict[str, dict[str, Stats]],
    statuses: dict[str, set[int]],
    failures: list[str],
    versions: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
    load: tuple[str, str],
) -> str:
    n = args.containers
    base = true["moorage"].median
    rows = [
        [
            e.name,
            e.command,
            ms(true[e.name].median),
            ms(true[e.name].p90),
            ms(true[e.name].minimum),
            ms(true[e.name].maximum),
            f"{true[e.name].median / base:.2f}",
        ]
        for e in engines
    ]
    pub_base = published["moorage"]["answer"].median if "moorage" in published else 0.0
    pub_rows = [
        [
            e.name,
            f"{published[e.name]['start'].median:.2f}",
            ms(published[e.name]["start"].median / n),
            f"{published[e.name]['answer'].median:.2f}",
            f"{published[e.name]['remove'].median:.2f}",
            f"{published[e.name]['answer'].median / pub_base:.2f}" if pub_base else "-",
            ",".join(map(str, sorted(statuses[e.name]))),
        ]
        for e in engines
        if e.name in published
    ]
    lines = [
        "# Networking: moorage vs docker and podman on their default networks",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, {platform.node()}, "
        f"kernel {platform.release()}, {os.cpu_count()} CPUs; 1-min load average {load[0]} at "
        f"start, {load[1]} at the end (a shared machine: compare runs at similar load).",
        "",
        f"## `run --rm busybox true` on the default network ({args.runs} runs each after "
        f"{args.warmup} warm-up rounds, interleaved)",
        "",
        markdown_table(
            ["engine", "command", "median ms", "p90 ms", "min ms", "max ms", "engine / moorage"],
            rows,
        ),
        "",
    ]
    if published:
        lines += [
            f"## {n} containers with a published port each ({args.rounds} rounds, medians)",
            "",
            f"`run -d -p PORT:80 busybox httpd -f -p 80` x {n} (one CLI call each), then one "
            "HTTP GET per port on 127.0.0.1 (any HTTP status counts as an answer), then one "
            f"`rm -f` of the {n}.",
            "",
            markdown_table(
                [
                    "engine",
                    f"start {n} s",
                    "per container ms",
                    "start + all answered s",
                    f"rm -f {n} s",
                    "engine / moorage (answered)",
                    "HTTP statuses",
                ],
                pub_rows,
            ),
            "",
        ]
    if failures:
        lines += ["Failed rounds (left out of the medians):", *(f"- {f}" for f in failures), ""]
    targets = []
    if "docker" in true:
        r = true["docker"].median / base
        targets.append(
            f"- run --rm on the default network, at least 3x faster than docker: "
            f"{r:.2f}x -> {'met' if r >= 3 else 'NOT met'}"
        )
        if pub_base and "docker" in published:
            r = published["docker"]["answer"].median / pub_base
            targets.append(
                f"- {n} published ports up and answering, at least 3x faster than "
                f"docker: {r:.2f}x -> {'met' if r >= 3 else 'NOT met'}"
            )
    lines += [
        "Targets (issue 3):",
        *targets,
        "",
        "dockerd ran with `--iptables=false --userland-proxy=true` on a bridge of the "
        "bench's own (no DNAT/masquerade rules per port): less work than a stock dockerd.",
        "",
        "Versions:",
        *(f"- {name}: {v}" for name, v in versions.items()),
        "",
        f"Whole bench: {elapsed:.0f}s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed run --rm per engine (20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the port test (3)")
    parser.add_argument("--containers", type=int, default=50, help="published containers (50)")
    parser.add_argument(
        "--port-base", type=int, default=24000, help="look for free host ports from here (24000)"
    )
    parser.add_argument("--moorage-subnet", default="10.177.0.0/16")
    parser.add_argument("--docker-subnet", default="10.178.0.0/24")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-network"))
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "docker"])
    args = parser.parse_args(argv)
    work = claim_workdir(
        "network.py", args.workdir, root_because="it runs containers", crash_hint=True
    )
    if work is None:
        return 1
    started = time.monotonic()
    load_at_start = f"{os.getloadavg()[0]:.2f}"
    ensure_packages(
        {
            binary: package
            for engine, needs in PACKAGES.items()
            if engine != "runc" and engine not in args.skip
            for binary, package in needs.items()
        }
    )
    subnets = {"moorage": args.moorage_subnet}
    if "docker" not in args.skip:
        subnets["docker"] = args.docker_subnet
        if os.path.exists(f"/sys/class/net/{DOCKER_BRIDGE}"):
            raise BenchError(f"a link {DOCKER_BRIDGE} exists already (a crashed bench?)")
    if "podman" not in args.skip:
        subnets["podman"] = PODMAN_SUBNET
    check_subnets(subnets)
    ports: dict[str, range] = {}
    base = args.port_base
    for name in ["moorage", *(e for e in ("docker", "podman") if e not in args.skip)]:
        base = free_port_block(base, args.containers)
        ports[name] = range(base, base + args.containers)
        base += args.containers
    log("host ports: " + ", ".join(f"{k} {r.start}-{r.stop - 1}" for k, r in ports.items()))
    before, tables_before = host_snapshot(), nft_tables()
    work.mkdir(parents=True)
    moorage = NetMoorage(work, args.moorage_subnet)
    engines: list[NetEngine] = [moorage]
    if "docker" not in args.skip:
        engines.append(NetDocker(work, args.docker_subnet))
    if "podman" not in args.skip:
        engines.append(NetPodman(work))
    try:
        set_up_engines(work, moorage, engines)
        log(f"timing run --rm: {args.runs} runs each (+{args.warmup} warm-up rounds)")
        true = benchmark(engines, args.runs, args.warmup, what="run --rm: ")
        published: dict[str, dict[str, Stats]] = {}
        statuses: dict[str, set[int]] = {}
        failures: list[str] = []
        if args.rounds and args.containers:
            log(f"timing {args.containers} published containers, {args.rounds} rounds")
            published, statuses, failures = bench_published(engines, args.rounds, ports)
        versions = {e.name: e.version() for e in engines}
    finally:
        tear_down(work, before, engines)
        remove_netavark_tables(tables_before)
    load = (load_at_start, f"{os.getloadavg()[0]:.2f}")
    text = report(
        engines,
        true,
        published,
        statuses,
        failures,
        versions,
        args,
        time.monotonic() - started,
        load,
    )
    out = write_report("network", text)
    log(f"written to {out}; total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    run_main(main)
