"""A 10-step Dockerfile built cold and fully cached: moorage build against docker build.

Both engines build the same Dockerfile (FROM, ENV, WORKDIR, COPY, RUN, COPY, RUN, LABEL,
RUN, CMD) from the same context on the same busybox rootfs, with ``--network none``
(the bench's dockerd has no bridge). Per round, in a rotating order:

- cold: ``build --no-cache``: every RUN runs in a container, every step commits;
- cached: ``build`` again, every step a cache hit.

Kernel interfaces: those of the engines it drives. Owns ``--workdir`` (default
``/var/tmp/moorage-bench-build``), removed at the end; the docker engine is the private
containerd + dockerd of run_start.py (same flags, same clean-up) with its default
builder. It never touches /var/lib/moorage, /var/lib/docker or a daemon it did not start.

    .venv/bin/python bench/build.py [--runs 5] [--skip docker]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

from _common import (
    Stats,
    claim_workdir,
    ensure_packages,
    host_snapshot,
    log,
    markdown_table,
    ms,
    rotate,
    tear_down,
    timed,
    write_report,
)
from run_start import IMAGE, PACKAGES, Docker, Moorage, prepare_rootfs

DOCKERFILE = """\
FROM {base}
ENV APP=/app
WORKDIR /app
COPY a.txt /app/a.txt
RUN echo one > /app/one
COPY dir /app/dir
RUN mkdir -p /app/x && cp /app/a.txt /app/x/
LABEL bench=yes
RUN ls -R /app > /app/listing
CMD ["cat", "/app/listing"]
"""


def make_context(directory: Path, base: str) -> Path:
    (directory / "dir").mkdir(parents=True)
    (directory / "a.txt").write_text("a\n" * 1000)
    for i in range(20):
        (directory / "dir" / f"f{i}.txt").write_text(f"{i}\n" * 100)
    (directory / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    return directory


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per engine (5)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-build"))
    parser.add_argument("--skip", action="append", default=[], choices=["docker"])
    args = parser.parse_args(argv)
    work = claim_workdir("build.py", args.workdir)
    if work is None:
        return 1
    started = time.monotonic()
    if "docker" not in args.skip:
        ensure_packages(PACKAGES["docker"])
    before = host_snapshot()
    work.mkdir(parents=True)
    moorage = Moorage(work)
    docker = Docker(work) if "docker" not in args.skip else None
    prefixes: dict[str, list[str]] = {}  # engine -> its CLI, up to the verb
    contexts: dict[str, Path] = {}
    envs: dict[str, dict[str, str]] = {}
    samples: dict[tuple[str, str], list[float]] = {}
    versions: dict[str, str] = {}
    try:
        log("bootstrapping busybox in a private MOORAGE_ROOT")
        rootfs, tarball = prepare_rootfs(work, moorage.bootstrap())
        prefixes["moorage"], envs["moorage"] = moorage.cli, moorage.env
        contexts["moorage"] = make_context(work / "ctx-moorage", "busybox")
        versions["moorage"] = moorage.version()
        if docker is not None:
            log("setting up docker")
            docker.setup(rootfs, tarball)
            prefixes["docker"], envs["docker"] = docker.base, docker.env
            contexts["docker"] = make_context(work / "ctx-docker", IMAGE)
            versions["docker"] = docker.version()
        names = list(prefixes)
        for rnd in range(args.runs):
            for name in rotate(names, rnd):
                for kind, extra in (("cold", ["--no-cache"]), ("cached", [])):
                    cmd = [
                        *prefixes[name],
                        "build",
                        "--network",
                        "none",
                        "-t",
                        "app",
                        *extra,
                        str(contexts[name]),
                    ]
                    samples.setdefault((name, kind), []).append(timed(cmd, env=envs[name]))
            log(f"{rnd + 1}/{args.runs} rounds done")
    finally:
        tear_down(work, before, [e for e in (moorage, docker) if e is not None])
    rows = []
    for kind in ("cold", "cached"):
        for name in prefixes:
            stats = Stats.of(samples[(name, kind)])
            rows.append(
                [f"{name} build ({kind})", ms(stats.median), ms(stats.p90), ms(stats.minimum)]
            )
    text = (
        f"# Build: 10-step Dockerfile, cold and cached\n\n"
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{args.runs} rounds, {time.monotonic() - started:.0f} s in all\n\n"
        + markdown_table(["command", "median", "p90", "min"], rows)
        + "\n\n"
        + "\n".join(f"- {name}: {version}" for name, version in versions.items())
        + "\n"
    )
    write_report("build", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
