"""Start-up time and idle memory: moorage against runc, podman and dockerd.

Runs, on this machine and from one busybox rootfs (moorage's own bootstrapped image,
copied out of its layer directory):

- ``moorage run --rm --network none busybox true``
- ``runc run`` of an OCI bundle of the same rootfs (own pid/net/ipc/uts/mount namespaces)
- ``podman --runtime runc run --rm --network none`` of the rootfs ``podman import``-ed
- ``docker run --rm --network none`` against a dockerd and containerd started here

each ``--runs`` times, interleaved round by round so that drift hits every engine alike,
then measures the RSS and PSS of the per-container process that babysits an idle
container (moorage's monitor, containerd-shim-runc-v2, conmon).

Kernel interfaces: those of the engines it drives, plus ``/proc/<pid>/smaps_rollup``.
Owns ``--workdir`` (default ``/var/tmp/moorage-bench``): every engine's storage and state
lives under it, and the whole directory is removed at the end. Host paths that the
engines insist on (``/run/containerd``, podman's lock files, cgroup parents) are removed
only when this run created them. It never touches /var/lib/moorage, /var/lib/docker or a
daemon it did not start, and ends processes only by the pid it started or found for its
own private paths.

    .venv/bin/python bench/run_start.py [--runs N] [--warmup N] [--skip ENGINE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    BENCH_DIR,
    DOCKER_CGROUP_PARENT,
    BenchError,
    Memory,
    Stats,
    claim_workdir,
    copy_tree,
    ensure_packages,
    host_snapshot,
    log,
    markdown_table,
    memory_of,
    ms,
    parent_of,
    pids_whose_cmdline_has,
    rotate,
    run,
    run_main,
    stop_process,
    tear_down,
    timed,
    version_of,
    wait_for_socket,
    write_report,
)

REPO = BENCH_DIR.parent
# What each engine needs installed: binary path -> Debian package.
PACKAGES = {
    "runc": {"/usr/sbin/runc": "runc"},
    "podman": {"/usr/bin/podman": "podman", "/usr/bin/conmon": "conmon", "/usr/sbin/runc": "runc"},
    "docker": {
        "/usr/sbin/dockerd": "docker.io",
        "/usr/bin/containerd": "containerd",
        "/usr/sbin/runc": "runc",
    },
}
IMAGE = "bench-busybox:latest"
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


class Engine:
    name = ""
    command = ""
    monitor_label = ""

    def setup(self, rootfs: Path, tarball: Path) -> None: ...
    def run_once(self, n: int) -> float:
        raise NotImplementedError

    def idle_monitor(self) -> list[tuple[str, Memory]]:
        return []

    def version(self) -> str:
        return ""

    def cleanup(self) -> None: ...


class Moorage(Engine):
    name, command = "moorage", "moorage run --rm --network none busybox true"
    monitor_label = "monitor (python)"

    def __init__(self, work: Path) -> None:
        self.work = work / "moorage"
        # Python reads and writes bytecode as an installed package would: a session's
        # PYTHONDONTWRITEBYTECODE would make every run compile the engine from source
        # (~130 ms here). The cache goes to a private prefix, filled by the warm-up.
        self.env = dict(
            os.environ,
            MOORAGE_ROOT=str(self.work / "root"),
            MOORAGE_RUN=str(self.work / "run"),
            MOORAGE_PREFIX="moorage-bench",
            PYTHONPYCACHEPREFIX=str(self.work / "pycache"),
        )
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        script = Path(sys.executable).parent / "moorage"
        self.cli = [str(script)] if script.exists() else [sys.executable, "-m", "runtime.cli"]
        self.idle: str | None = None

    def moorage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.cli, *args], env=self.env, check=check)

    def bootstrap(self) -> list[Path]:
        """Build busybox in the private root; return its layer directories, lowest first."""
        self.moorage("image-bootstrap", "busybox")
        for key in ("MOORAGE_ROOT", "MOORAGE_RUN", "MOORAGE_PREFIX"):
            os.environ[key] = self.env[key]  # runtime.paths reads these at call time
        sys.path.insert(0, str(REPO))
        from runtime import images

        return images.resolve("busybox").layer_dirs()

    def run_once(self, n: int) -> float:
        return timed(
            [*self.cli, "run", "--rm", "--network", "none", "busybox", "true"], env=self.env
        )

    def idle_monitor(self) -> list[tuple[str, Memory]]:
        self.idle = self.moorage(
            "run", "-d", "--network", "none", "busybox", "sleep", "1000"
        ).stdout.strip()
        state = json.loads((self.work / "root/containers" / self.idle / "state.json").read_text())
        time.sleep(1)  # let it settle into its idle loop
        return [(self.monitor_label, memory_of(int(state["monitor_pid"])))]

    def version(self) -> str:
        shown = self.moorage("version", check=False).stdout
        numbers = [
            row.split(":", 1)[1].strip()
            for row in shown.splitlines()
            if row.strip().startswith(("Version:", "Python version:"))
        ]
        return "moorage " + ", python ".join(numbers[:2])

    def cleanup(self) -> None:
        if not (self.work / "root").exists():
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # --rm removal runs in the monitor after exit
            ids = self.moorage("ps", "-aq", "--no-trunc", check=False).stdout.split()
            if not ids:
                break
            self.moorage("rm", "-f", *ids, check=False)
            time.sleep(0.2)
        from runtime.cli import warm_server

        warm_server.stop(self.env["MOORAGE_RUN"])  # the one this bench's commands started


class Runc(Engine):
    name, command = "runc", "runc run --bundle B (own pid/net/ipc/uts/mnt ns)"

    def __init__(self, work: Path) -> None:
        self.bundle = work / "runc/bundle"
        self.state = work / "runc/state"

    def setup(self, rootfs: Path, tarball: Path) -> None:
        copy_tree(rootfs, self.bundle / "rootfs")
        run(["runc", "spec"], cwd=self.bundle)
        config_path = self.bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = ["true"]
        config["process"]["terminal"] = False
        config["root"]["readonly"] = False  # moorage gives a writable (overlay) root
        # runc's default spec already unshares pid, network, ipc, uts and mount: the
        # network namespace with only a loopback is what '--network none' means.
        config_path.write_text(json.dumps(config, indent=2))

    def run_once(self, n: int) -> float:
        cid = f"moorage-bench-{n}"
        # 'runc run' without --detach destroys the container when its init exits, so
        # the delete that follows finds nothing; it stays out of the timing as a guard.
        elapsed = timed(
            ["runc", "--root", str(self.state), "run", "--bundle", str(self.bundle), cid]
        )
        run(["runc", "--root", str(self.state), "delete", "-f", cid], check=False)
        return elapsed

    def version(self) -> str:
        return version_of(["runc", "--version"])

    def cleanup(self) -> None:
        if self.state.exists():
            listed = run(["runc", "--root", str(self.state), "list", "-q"], check=False)
            for cid in listed.stdout.split():
                run(["runc", "--root", str(self.state), "delete", "-f", cid], check=False)


class Podman(Engine):
    name, command = "podman", "podman --runtime runc run --rm --network none (+ulimits)"
    monitor_label = "conmon"

    def __init__(self, work: Path) -> None:
        self.work = work / "podman"
        self.base = [
            "podman",
            "--root",
            str(self.work / "root"),
            "--runroot",
            str(self.work / "run"),
            "--tmpdir",
            str(self.work / "tmp"),
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]

    def setup(self, rootfs: Path, tarball: Path) -> None:
        run([*self.base, "import", str(tarball), IMAGE])

    def run_once(self, n: int) -> float:
        return timed([*self.base, "run", "--rm", "--network", "none", *ULIMITS, IMAGE, "true"])

    def idle_monitor(self) -> list[tuple[str, Memory]]:
        cid = run(
            [*self.base, "run", "-d", "--network", "none", *ULIMITS, IMAGE, "sleep", "1000"]
        ).stdout.strip()
        conmon = run([*self.base, "inspect", "-f", "{{.State.ConmonPid}}", cid]).stdout
        time.sleep(1)
        return [(self.monitor_label, memory_of(int(conmon)))]

    def version(self) -> str:
        return version_of(["podman", "--version"]) + "; " + version_of(["conmon", "--version"])

    def cleanup(self) -> None:
        if self.work.exists():
            run([*self.base, "rm", "-af", "-t", "0"], check=False)
            run([*self.base, "rmi", "-af"], check=False)


class Docker(Engine):
    name, command = "docker", "docker run --rm --network none (own dockerd)"
    monitor_label = "containerd-shim-runc-v2"

    def __init__(self, work: Path) -> None:
        self.work = work / "docker"
        self.socket = work / "docker.sock"
        self.containerd_socket = self.work / "containerd.sock"
        client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        self.env = dict(os.environ, DOCKER_CONFIG=str(self.work / "client"))
        self.base = [client, "-H", f"unix://{self.socket}"]
        self.containerd: subprocess.Popen[bytes] | None = None
        self.dockerd: subprocess.Popen[bytes] | None = None

    def _daemon(self, cmd: list[str], logname: str) -> subprocess.Popen[bytes]:
        with open(self.work / logname, "ab") as logfile:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                start_new_session=True,
            )

    def setup(self, rootfs: Path, tarball: Path) -> None:
        self.work.mkdir(parents=True)
        config = self.work / "containerd.toml"
        # Our own containerd, with the CRI and opt plugins off: dockerd needs neither.
        config.write_text(
            "version = 2\n"
            f'root = "{self.work / "containerd/root"}"\n'
            f'state = "{self.work / "containerd/state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",'
            ' "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",'
            ' "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]\n'
            f'[grpc]\n  address = "{self.containerd_socket}"\n'
            f'[ttrpc]\n  address = "{self.containerd_socket}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
        )
        log("starting containerd")
        self.containerd = self._daemon(
            ["/usr/bin/containerd", "--config", str(config)], "containerd.log"
        )
        wait_for_socket(self.containerd_socket, self.containerd, "containerd")
        (self.work / "daemon.json").write_text("{}\n")
        log("starting dockerd")
        self.dockerd = self._daemon(
            [
                "/usr/sbin/dockerd",
                "--config-file",
                str(self.work / "daemon.json"),
                "--data-root",
                str(self.work / "data"),
                "--exec-root",
                str(self.work / "exec"),
                "--pidfile",
                str(self.work / "dockerd.pid"),
                "-H",
                f"unix://{self.socket}",
                "--containerd",
                str(self.containerd_socket),
                "--containerd-namespace",
                "moorage-bench",
                "--containerd-plugins-namespace",
                "moorage-bench-plugins",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                "--cgroup-parent",
                f"/{DOCKER_CGROUP_PARENT}",
                "--log-level",
                "warn",
            ],
            "dockerd.log",
        )
        wait_for_socket(self.socket, self.dockerd, "dockerd")
        run([*self.base, "version"], env=self.env)
        run([*self.base, "import", str(tarball), IMAGE], env=self.env)

    def run_once(self, n: int) -> float:
        return timed([*self.base, "run", "--rm", "--network", "none", IMAGE, "true"], env=self.env)

    def idle_monitor(self) -> list[tuple[str, Memory]]:
        cid = run(
            [*self.base, "run", "-d", "--network", "none", IMAGE, "sleep", "1000"], env=self.env
        ).stdout.strip()
        pid = int(run([*self.base, "inspect", "-f", "{{.State.Pid}}", cid], env=self.env).stdout)
        time.sleep(1)
        shim = memory_of(parent_of(pid))
        assert self.dockerd and self.containerd
        return [
            (self.monitor_label, shim),
            ("dockerd (shared by all containers)", memory_of(self.dockerd.pid)),
            ("containerd (shared by all containers)", memory_of(self.containerd.pid)),
        ]

    def version(self) -> str:
        return (
            version_of(["/usr/sbin/dockerd", "--version"])
            + "; "
            + version_of(["/usr/bin/containerd", "--version"])
        )

    def cleanup(self) -> None:
        if self.dockerd and self.dockerd.poll() is None:
            ids = run([*self.base, "ps", "-aq"], env=self.env, check=False).stdout.split()
            if ids:
                run([*self.base, "rm", "-f", *ids], env=self.env, check=False)
        if self.dockerd:
            stop_process(self.dockerd, "dockerd")
        if self.containerd:
            stop_process(self.containerd, "containerd")
        # A shim outlives containerd only if a container did; it names our socket.
        for pid in pids_whose_cmdline_has(str(self.containerd_socket)):
            log(f"ending leftover shim pid {pid}")
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the run


def prepare_rootfs(work: Path, layers: list[Path]) -> tuple[Path, Path]:
    if len(layers) != 1:
        # More layers would need whiteouts and opaque directories applied; busybox has one.
        raise BenchError(f"busybox has {len(layers)} layers; the bench expects one")
    rootfs, tarball = work / "rootfs", work / "busybox-rootfs.tar"
    copy_tree(layers[0], rootfs)
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."])
    return rootfs, tarball


def set_up_engines(work: Path, moorage: Moorage, engines: Sequence[Engine]) -> None:
    """Bootstrap busybox in moorage, then give every engine the same rootfs."""
    log("bootstrapping busybox in a private MOORAGE_ROOT")
    rootfs, tarball = prepare_rootfs(work, moorage.bootstrap())
    for engine in engines:
        log(f"setting up {engine.name}")
        engine.setup(rootfs, tarball)


def benchmark(
    engines: Sequence[Engine], runs: int, warmup: int, what: str = ""
) -> dict[str, Stats]:
    """``run_once`` of every engine per round, warm-up rounds first, in rotating order."""
    samples: dict[str, list[float]] = {e.name: [] for e in engines}
    for rnd in range(warmup + runs):
        for engine in rotate(engines, rnd):
            elapsed = engine.run_once(rnd)
            if rnd >= warmup:
                samples[engine.name].append(elapsed)
        if rnd >= warmup and (rnd - warmup + 1) % 10 == 0:
            log(f"{what}{rnd - warmup + 1}/{runs} rounds done")
    return {name: Stats.of(values) for name, values in samples.items()}


def report(
    engines: list[Engine],
    stats: dict[str, Stats],
    memory: dict[str, list[tuple[str, Memory]]],
    versions: dict[str, str],
    runs: int,
    elapsed: float,
    load: tuple[str, str],
) -> str:
    base = stats["moorage"].median
    rows = []
    for e in engines:
        s = stats[e.name]
        ratio = "1.00" if e.name == "moorage" else f"{base / s.median:.2f}"
        rows.append(
            [e.name, e.command, ms(s.median), ms(s.p90), ms(s.minimum), ms(s.maximum), ratio]
        )
    lines = [
        "# Container start-up: moorage vs runc, podman, docker",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, "
        f"{platform.node()}, kernel {platform.release()}, {os.cpu_count()} CPUs, "
        f"{runs} timed runs per engine after warm-up, interleaved; wall time per run; "
        f"1-min load average {load[0]} at start, {load[1]} at the end.",
        "",
        markdown_table(
            ["engine", "command", "median ms", "p90 ms", "min ms", "max ms", "moorage / engine"],
            rows,
        ),
        "",
    ]
    targets = []
    if "runc" in stats:
        r = base / stats["runc"].median
        targets.append(f"- moorage within 5x of runc: {r:.1f}x -> {'met' if r <= 5 else 'NOT met'}")
    if "docker" in stats:
        r = stats["docker"].median / base
        targets.append(
            f"- moorage at least 3x faster than docker: {r:.2f}x -> "
            f"{'met' if r >= 3 else 'NOT met'}"
        )
    lines += [
        "Targets:",
        *targets,
        "",
        "Idle container (`sleep 1000`), memory of the process that watches it:",
        "",
    ]
    mem_rows = [
        [engine, label, str(m.pid), f"{m.rss_kib / 1024:.1f}", f"{m.pss_kib / 1024:.1f}"]
        for engine, entries in memory.items()
        for label, m in entries
    ]
    lines += [markdown_table(["engine", "process", "pid", "RSS MiB", "PSS MiB"], mem_rows), ""]
    lines += [
        "Versions:",
        *(f"- {name}: {v}" for name, v in versions.items()),
        "",
        f"Whole bench (install check, setup, runs, memory, clean-up): {elapsed:.0f}s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per engine (30)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (2)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench"))
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["runc", "podman", "docker"],
        help="leave an engine out",
    )
    args = parser.parse_args(argv)
    work = claim_workdir(
        "run_start.py", args.workdir, root_because="it runs containers", crash_hint=True
    )
    if work is None:
        return 1
    started = time.monotonic()
    load_at_start = f"{os.getloadavg()[0]:.2f}"
    ensure_packages(
        {
            binary: package
            for engine, needs in PACKAGES.items()
            if engine not in args.skip
            for binary, package in needs.items()
        }
    )
    before = host_snapshot()
    work.mkdir(parents=True)
    moorage = Moorage(work)
    engines: list[Engine] = [moorage]
    engines += [cls(work) for cls in (Runc, Podman, Docker) if cls.name not in args.skip]
    try:
        set_up_engines(work, moorage, engines)
        log(f"timing {args.runs} runs each (+{args.warmup} warm-up rounds)")
        stats = benchmark(engines, args.runs, args.warmup)
        log("measuring idle monitors")
        memory = {e.name: e.idle_monitor() for e in engines if e.monitor_label}
        versions = {e.name: e.version() for e in engines}
    finally:
        tear_down(work, before, engines)
    load = (load_at_start, f"{os.getloadavg()[0]:.2f}")
    text = report(engines, stats, memory, versions, args.runs, time.monotonic() - started, load)
    out = write_report("start", text)
    log(f"written to {out}; total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    run_main(main)
