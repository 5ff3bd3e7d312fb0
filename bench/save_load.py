"""save and load of a ~200 MB image: moorage against docker and podman.

Builds one rootfs tarball of random (incompressible) files, ``--size-mb`` in all
(default 200), imports it into each engine as a one-layer image, then times, per engine
and round (rotating the order, as run_start.py does):

- ``save -o <work>/<engine>.tar IMAGE``
- ``load -i <work>/<engine>.tar`` of that archive, after removing the image (untimed):
  ``docker rmi`` / ``podman rmi``; moorage, which has no rmi yet, loads into a fresh
  private MOORAGE_ROOT each round, which is the same work (nothing is shared).

Kernel interfaces: those of the engines it drives. Owns ``--workdir`` (default
``/var/tmp/moorage-bench-saveload``), removed at the end; the docker engine is the
private containerd + dockerd of run_start.py (same flags, same clean-up), podman uses
private --root/--runroot. It never touches /var/lib/moorage, /var/lib/docker or a
daemon it did not start.

    .venv/bin/python bench/save_load.py [--runs 5] [--size-mb 200] [--skip docker]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tarfile
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
from run_start import IMAGE, PACKAGES, Docker, Moorage, Podman

FILE_MB = 4  # random files of this size, plus one small file per directory


def make_rootfs_tar(path: Path, size_mb: int) -> None:
    """A rootfs tarball of ``size_mb`` MiB of random files in a few directories."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(size_mb // FILE_MB):
            directory = f"data/d{i % 10}"
            if i < 10:
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            info = tarfile.TarInfo(f"{directory}/f{i}.bin")
            info.size, info.mode = FILE_MB << 20, 0o644
            with open("/dev/urandom", "rb") as rnd:
                tf.addfile(info, _Limited(rnd, info.size))


class _Limited:
    def __init__(self, f: object, n: int) -> None:
        self._f, self._left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._f.read(size)  # type: ignore[attr-defined]
        self._left -= len(data)
        return data


class MoorageArchives:
    name = "moorage"

    def __init__(self, work: Path) -> None:
        self.engine = Moorage(work)
        self.work = work

    def setup(self, tarball: Path) -> None:
        self.engine.moorage("import", str(tarball), IMAGE)

    def save(self, out: Path) -> float:
        return timed([*self.engine.cli, "save", "-o", str(out), IMAGE], env=self.engine.env)

    def load(self, archive: Path, n: int) -> float:
        root = self.work / f"moorage-load-{n}"
        env = dict(self.engine.env, MOORAGE_ROOT=str(root))
        try:
            return timed([*self.engine.cli, "load", "-i", str(archive)], env=env)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def version(self) -> str:
        return self.engine.version()

    def cleanup(self) -> None:
        pass


class OtherArchives:
    """docker or podman: the engine classes of run_start.py, plus save/load/rmi."""

    def __init__(self, engine: Docker | Podman) -> None:
        self.engine, self.name = engine, engine.name
        self.env = getattr(engine, "env", None)

    def setup(self, tarball: Path) -> None:
        self.engine.setup(tarball, tarball)  # both import the tarball as IMAGE

    def save(self, out: Path) -> float:
        out.unlink(missing_ok=True)
        return timed([*self.engine.base, "save", "-o", str(out), IMAGE], env=self.env)

    def load(self, archive: Path, n: int) -> float:
        run([*self.engine.base, "rmi", "-f", IMAGE], env=self.env, check=False)
        return timed([*self.engine.base, "load", "-i", str(archive)], env=self.env)

    def version(self) -> str:
        return self.engine.version()

    def cleanup(self) -> None:
        self.engine.cleanup()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per engine (5)")
    parser.add_argument("--size-mb", type=int, default=200, help="image size in MiB (200)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-saveload"))
    parser.add_argument("--skip", action="append", default=[], choices=["podman", "docker"])
    args = parser.parse_args(argv)
    work = claim_workdir("save_load.py", args.workdir)
    if work is None:
        return 1
    started = time.monotonic()
    others = [name for name in ("podman", "docker") if name not in args.skip]
    ensure_packages(
        {binary: package for name in others for binary, package in PACKAGES[name].items()}
    )
    before = host_snapshot()
    work.mkdir(parents=True)
    engines: list[MoorageArchives | OtherArchives] = [MoorageArchives(work)]
    engines += [
        OtherArchives(Podman(work) if name == "podman" else Docker(work)) for name in others
    ]
    samples: dict[tuple[str, str], list[float]] = {}
    sizes: dict[str, int] = {}
    try:
        tarball = work / "rootfs.tar"
        log(f"writing a {args.size_mb} MiB rootfs tarball of random files")
        make_rootfs_tar(tarball, args.size_mb)
        for engine in engines:
            log(f"setting up {engine.name}")
            engine.setup(tarball)
        for rnd in range(args.runs):
            for engine in rotate(engines, rnd):
                out = work / f"{engine.name}.tar"
                samples.setdefault((engine.name, "save"), []).append(engine.save(out))
                sizes[engine.name] = out.stat().st_size
                samples.setdefault((engine.name, "load"), []).append(engine.load(out, rnd))
            log(f"{rnd + 1}/{args.runs} rounds done")
        versions = {e.name: e.version() for e in engines}
    finally:
        tear_down(work, before, engines)
    text = report(engines, samples, sizes, versions, args, time.monotonic() - started)
    write_report("save_load", text)
    return 0


def report(
    engines: list,
    samples: dict[tuple[str, str], list[float]],
    sizes: dict[str, int],
    versions: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    rows = []
    for verb in ("save", "load"):
        base = Stats.of(samples[("moorage", verb)]).median
        for e in engines:
            s = Stats.of(samples[(e.name, verb)])
            rows.append(
                [
                    verb,
                    e.name,
                    f"{s.median:.2f}",
                    f"{s.p90:.2f}",
                    f"{s.minimum:.2f}",
                    f"{s.maximum:.2f}",
                    f"{s.median / base:.2f}",
                    f"{sizes[e.name] / (1 << 20):.0f}",
                ]
            )
    lines = [
        f"# save and load of a {args.size_mb} MiB image: moorage vs podman, docker",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, {platform.node()}, "
        f"kernel {platform.release()}, {os.cpu_count()} CPUs, {args.runs} rounds, "
        "interleaved; one-layer image of random files; wall time in seconds.",
        "",
        markdown_table(
            [
                "verb",
                "engine",
                "median s",
                "p90 s",
                "min s",
                "max s",
                "engine / moorage",
                "archive MiB",
            ],
            rows,
        ),
        "",
        "Target: moorage no slower than docker (engine / moorage >= 1 for docker).",
        "",
        "Versions:",
        *(f"- {name}: {v}" for name, v in versions.items()),
        "",
        f"Whole bench: {elapsed:.0f}s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
