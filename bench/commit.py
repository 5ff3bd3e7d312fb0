"""commit of a container with ~100 MB of changes: moorage against docker and podman.

All three engines start from the same busybox rootfs (moorage's bootstrapped image,
copied out of its layer directory and imported into podman and docker, as in
run_start.py). Per engine and round, in a rotating order:

1. untimed: ``run --name C --network none IMAGE sh -c ...`` writes ``--size-mb`` MiB
   (default 100) of random 4 MiB files under ``/changes`` and exits; then ``sync``, so
   write-back of those files is not charged to the commit;
2. timed: ``commit C bench-committed:<round>`` (the container has exited, so no engine
   pauses anything);
3. untimed: ``rm C`` and ``rmi`` of the committed image, then ``sync``.

Kernel interfaces: those of the engines it drives. Owns ``--workdir`` (default
``/var/tmp/moorage-bench-commit``), removed at the end; docker is the private containerd
+ dockerd of run_start.py (same flags, same clean-up), podman uses private
--root/--runroot. It never touches /var/lib/moorage, /var/lib/docker or a daemon it did
not start.

    .venv/bin/python bench/commit.py [--runs 5] [--warmup 1] [--size-mb 100] [--skip docker]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

from _common import (
    Stats,
    claim_workdir,
    ensure_packages,
    host_snapshot,
    log,
    markdown_table,
    rotate,
    run,
    run_main,
    tear_down,
    timed,
    write_report,
)
from run_start import IMAGE, PACKAGES, ULIMITS, Docker, Moorage, Podman, set_up_engines

FILE_MB = 4
COMMITTED = "bench-committed"


def writer_script(size_mb: int) -> str:
    """busybox sh: ``size_mb`` MiB of incompressible files, FILE_MB MiB each."""
    return (
        f"mkdir /changes && i=0; while [ $i -lt {size_mb // FILE_MB} ]; do "
        f"head -c {FILE_MB << 20} /dev/urandom > /changes/f$i || exit 1; "
        "i=$((i+1)); done"
    )


class Committer:
    """One engine seen through the three commands of a round: run, commit, clean."""

    def __init__(
        self,
        name: str,
        base: list[str],
        image: str,
        run_flags: list[str],
        env: dict[str, str] | None,
    ) -> None:
        self.name, self.base, self.image = name, base, image
        self.run_flags, self.env = run_flags, env

    def prepare(self, n: int, script: str) -> str:
        container = f"bench-commit-{n}"
        run(
            [
                *self.base,
                "run",
                "--name",
                container,
                "--network",
                "none",
                *self.run_flags,
                self.image,
                "sh",
                "-c",
                script,
            ],
            env=self.env,
            timeout=300,
        )
        run(["sync"])
        return container

    def commit(self, container: str, n: int) -> float:
        return timed([*self.base, "commit", container, f"{COMMITTED}:{n}"], env=self.env)

    def clean(self, container: str, n: int) -> None:
        run([*self.base, "rm", "-f", container], env=self.env)
        run([*self.base, "rmi", f"{COMMITTED}:{n}"], env=self.env)
        run(["sync"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per engine (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (1)")
    parser.add_argument("--size-mb", type=int, default=100, help="MiB of changes (100)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-commit"))
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "docker"])
    args = parser.parse_args(argv)
    work = claim_workdir("commit.py", args.workdir)
    if work is None:
        return 1
    started = time.monotonic()
    load_at_start = f"{os.getloadavg()[0]:.2f}"
    others = [name for name in ("podman", "docker") if name not in args.skip]
    ensure_packages(
        {binary: package for name in others for binary, package in PACKAGES[name].items()}
    )
    before = host_snapshot()
    work.mkdir(parents=True)
    moorage = Moorage(work)
    engines: list[Moorage | Podman | Docker] = [moorage]
    engines += [Podman(work) if name == "podman" else Docker(work) for name in others]
    committers: list[Committer] = []
    samples: dict[str, list[float]] = {}
    script = writer_script(args.size_mb)
    try:
        set_up_engines(work, moorage, engines)
        committers.append(Committer("moorage", moorage.cli, "busybox", [], moorage.env))
        for engine in engines[1:]:
            committers.append(
                Committer(
                    engine.name,
                    engine.base,
                    IMAGE,
                    ULIMITS if engine.name == "podman" else [],
                    getattr(engine, "env", None),
                )
            )
        for rnd in range(args.warmup + args.runs):
            for c in rotate(committers, rnd):
                container = c.prepare(rnd, script)
                elapsed = c.commit(container, rnd)
                c.clean(container, rnd)
                if rnd >= args.warmup:
                    samples.setdefault(c.name, []).append(elapsed)
            log(f"{rnd + 1}/{args.warmup + args.runs} rounds done")
        versions = {e.name: e.version() for e in engines}
    finally:
        tear_down(work, before, engines)
    load = (load_at_start, f"{os.getloadavg()[0]:.2f}")
    text = report(
        [c.name for c in committers], samples, versions, args, time.monotonic() - started, load
    )
    write_report("commit", text)
    return 0


def report(
    names: list[str],
    samples: dict[str, list[float]],
    versions: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
    load: tuple[str, str],
) -> str:
    base = Stats.of(samples["moorage"]).median
    rows = []
    for name in names:
        s = Stats.of(samples[name])
        rows.append(
            [
                name,
                f"{s.median:.2f}",
                f"{s.p90:.2f}",
                f"{s.minimum:.2f}",
                f"{s.maximum:.2f}",
                f"{s.median / base:.2f}",
            ]
        )
    lines = [
        f"# commit of a container with {args.size_mb} MiB of changes: moorage vs podman, docker",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, {platform.node()}, "
        f"kernel {platform.release()}, {os.cpu_count()} CPUs, {args.runs} timed rounds after "
        f"{args.warmup} warm-up, interleaved; {args.size_mb // FILE_MB} random "
        f"{FILE_MB} MiB files written by the container, synced before the timed "
        f"`commit`; wall time in seconds; 1-min load average {load[0]} at start, "
        f"{load[1]} at the end.",
        "",
        markdown_table(["engine", "median s", "p90 s", "min s", "max s", "engine / moorage"], rows),
        "",
    ]
    if "docker" in samples:
        r = Stats.of(samples["docker"]).median / base
        lines += [
            f"Target: moorage no slower than docker: docker / moorage = {r:.2f} -> "
            f"{'met' if r >= 1 else 'NOT met'}.",
            "",
        ]
    lines += [
        "Versions:",
        *(f"- {name}: {v}" for name, v in versions.items()),
        "",
        f"Whole bench: {elapsed:.0f}s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
