"""pull of a ~200 MB image from a local registry: moorage against docker and podman.

Starts Debian's ``docker-registry`` on a free 127.0.0.1 port (temporary config and
storage under the work directory), builds a one-layer image of random (incompressible)
files, ``--size-mb`` in all (default 200; save_load.py's tarball), imports it into
moorage and pushes it as ``127.0.0.1:PORT/bench/big:v1`` (the push is timed once and
reported). Then, per round, in a rotating order:

- ``moorage pull`` into a fresh private MOORAGE_ROOT (nothing cached, like after rmi);
- ``docker pull`` (its own containerd + dockerd, as in run_start.py; 127.0.0.0/8 is an
  insecure registry by default) after an untimed ``docker rmi -f``;
- ``podman pull --tls-verify=false`` after an untimed ``podman rmi -f``.

Kernel interfaces: those of the engines it drives, and loopback TCP. Owns ``--workdir``
(default ``/var/tmp/moorage-bench-pull``), removed at the end, and the registry process
it starts (stopped by pid). Never touches /var/lib/moorage, /var/lib/docker or a daemon
it did not start; only loopback traffic.

    .venv/bin/python bench/pull.py [--runs 5] [--size-mb 200] [--skip docker]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from _common import (
    BenchError,
    Stats,
    claim_workdir,
    clean_up,
    ensure_packages,
    free_port,
    host_snapshot,
    log,
    markdown_table,
    release_workdir,
    rotate,
    run,
    stop_process,
    timed,
    write_report,
)
from run_start import PACKAGES, Docker, Moorage, Podman
from save_load import make_rootfs_tar

REGISTRY_PACKAGES = {"/usr/bin/docker-registry": "docker-registry"}


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(work / "registry.log", "ab") as logfile:
        process = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=logfile,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"docker-registry exited {process.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    stop_process(process, "docker-registry")
    raise BenchError("docker-registry did not listen within 30s")


class MooragePull:
    name = "moorage"

    def __init__(self, work: Path) -> None:
        self.engine = Moorage(work)
        self.work = work

    def setup(self, tarball: Path, image: str) -> float:
        self.engine.moorage("import", str(tarball), image)
        return timed([*self.engine.cli, "push", image], env=self.engine.env)

    def pull(self, image: str, n: int) -> float:
        root = self.work / f"moorage-pull-{n}"
        env = dict(self.engine.env, MOORAGE_ROOT=str(root))
        try:
            return timed([*self.engine.cli, "pull", image], env=env)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def version(self) -> str:
        return self.engine.version()

    def cleanup(self) -> None:
        self.engine.cleanup()


class OtherPull:
    """docker or podman: the engine classes of run_start.py, plus pull and rmi."""

    def __init__(self, engine: Docker | Podman) -> None:
        self.engine, self.name = engine, engine.name
        self.env = getattr(engine, "env", None)
        self.flags = ["--tls-verify=false"] if engine.name == "podman" else []

    def setup(self, tarball: Path, image: str) -> float:
        # Their setup imports a tarball as run_start's IMAGE. Not ours: a layer they
        # already had would make every pull an "Already exists".
        tiny = tarball.with_name("tiny.tar")
        if not tiny.exists():
            with tarfile.open(tiny, "w") as tf:
                tf.addfile(tarfile.TarInfo("empty"))
        self.engine.setup(tiny, tiny)
        return 0.0

    def pull(self, image: str, n: int) -> float:
        run([*self.engine.base, "rmi", "-f", image], env=self.env, check=False)
        return timed([*self.engine.base, "pull", *self.flags, image], env=self.env)

    def version(self) -> str:
        return self.engine.version()

    def cleanup(self) -> None:
        self.engine.cleanup()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per engine (5)")
    parser.add_argument("--size-mb", type=int, default=200, help="image size in MiB (200)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-pull"))
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "docker"])
    args = parser.parse_args(argv)
    work = claim_workdir("pull.py", args.workdir)
    if work is None:
        return 1
    started = time.monotonic()
    others = [name for name in ("podman", "docker") if name not in args.skip]
    ensure_packages(
        {
            **REGISTRY_PACKAGES,
            **{binary: package for name in others for binary, package in PACKAGES[name].items()},
        }
    )
    before = host_snapshot()
    work.mkdir(parents=True)
    engines: list[MooragePull | OtherPull] = [MooragePull(work)]
    engines += [OtherPull(Podman(work) if name == "podman" else Docker(work)) for name in others]
    registry: subprocess.Popen[bytes] | None = None
    samples: dict[str, list[float]] = {}
    try:
        registry, host = start_registry(work)
        image = f"{host}/bench/big:v1"
        tarball = work / "rootfs.tar"
        log(f"writing a {args.size_mb} MiB rootfs tarball of random files")
        make_rootfs_tar(tarball, args.size_mb)
        push_time = 0.0
        for engine in engines:
            log(f"setting up {engine.name}")
            push_time = engine.setup(tarball, image) or push_time
        for rnd in range(args.runs):
            for engine in rotate(engines, rnd):
                samples.setdefault(engine.name, []).append(engine.pull(image, rnd))
            log(f"{rnd + 1}/{args.runs} rounds done")
        versions = {e.name: e.version() for e in engines}
    finally:
        log("cleaning up")
        clean_up(reversed(engines))
        if registry is not None:
            stop_process(registry, "docker-registry")
        release_workdir(work, before)
    rows = []
    for engine in engines:
        st = Stats.of(samples[engine.name])
        rows.append(
            [
                engine.name,
                str(st.n),
                f"{st.median:.2f}",
                f"{st.p90:.2f}",
                f"{st.minimum:.2f}",
                f"{st.maximum:.2f}",
                f"{args.size_mb / st.median:.0f}",
            ]
        )
    text = "\n".join(
        [
            f"# pull of a {args.size_mb} MiB one-layer image from a local registry",
            "",
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
            f"{platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}; "
            f"{time.monotonic() - started:.0f} s in all.",
            "",
            markdown_table(
                ["engine", "runs", "median s", "p90 s", "min s", "max s", "MiB/s"], rows
            ),
            "",
            f"moorage push of the same image (once): {push_time:.2f} s",
            "",
            *(f"- {name}: {version}" for name, version in versions.items()),
            "",
        ]
    )
    write_report("pull", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
