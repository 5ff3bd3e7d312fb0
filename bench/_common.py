"""Shared pieces of the benchmarks: timing, statistics, memory, daemons, the run's frame.

Kernel interfaces: ``/proc/<pid>/smaps_rollup`` (RSS and PSS), ``/proc/self/mountinfo``
(to find mounts left under the bench's work directory), ``umount(8)`` to lift them, and
``rmdir(2)`` on cgroupfs for the cgroup parents the engines made during the run.

Owns ``bench/results/<name>.md`` (the reports). Every other path it removes is handed to
it by a benchmark, which owns a private work directory, or is one of HOST_PATHS that the
engines created during the run (absent in ``host_snapshot()`` at the start). It never ends
a process it was not given the pid of, and never removes a directory that still has a
mount under it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
COMMAND_TIMEOUT = 120.0
DOCKER_CGROUP_PARENT = "moorage-bench-docker"
# Paths outside the work directory that podman, containerd and dockerd create whatever
# their flags say; removed at the end only if absent at the start.
HOST_PATHS = [
    "/run/containerd",
    "/run/docker",
    "/run/runc",
    "/run/containers",
    "/run/libpod",
    "/var/lib/containers",
    "/etc/cni/net.d/cni.lock",
    "/etc/containers/networks",
    "/etc/docker/key.json",
]
CGROUP_PARENTS = ["libpod_parent", DOCKER_CGROUP_PARENT]
T = TypeVar("T")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- commands and timing


def run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion with captured output; raise BenchError when it fails."""
    try:
        done = subprocess.run(
            list(cmd),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{' '.join(cmd)} did not finish in {timeout:.0f}s") from e
    if check and done.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
    return done


def timed(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> float:
    """Wall time in seconds of one run of ``cmd``, which must exit 0.

    stdout and stderr go to pipes, as they would for a script capturing the output; the
    clock covers fork, exec and waiting for the exit status, like ``time`` in a shell.
    """
    start = time.perf_counter()
    done = subprocess.run(
        list(cmd), env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-800:]}"
        )
    return elapsed


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p90: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        ordered = sorted(samples)
        return cls(
            len(ordered),
            statistics.median(ordered),
            percentile(ordered, 90),
            ordered[0],
            ordered[-1],
        )


def percentile(samples: Sequence[float], pct: int) -> float:
    """Nearest-rank percentile: the smallest sample with pct% of samples at or below it."""
    ordered = sorted(samples)
    return ordered[max(1, -(-pct * len(ordered) // 100)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


# ---------------------------------------------------------------- packages


def ensure_packages(needed: dict[str, str]) -> None:
    """Install the Debian packages whose binary (key: path, value: package) is missing."""
    missing = sorted({pkg for binary, pkg in needed.items() if not os.path.exists(binary)})
    if not missing:
        return
    log(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, timeout=600)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env, timeout=1200)
    still = [binary for binary in needed if not os.path.exists(binary)]
    if still:
        raise BenchError(f"installed {' '.join(missing)} but {', '.join(still)} is missing")


def version_of(cmd: Sequence[str]) -> str:
    done = run(cmd, check=False, timeout=30)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


# ---------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    pid: int
    name: str
    rss_kib: int
    pss_kib: int


def memory_of(pid: int) -> Memory:
    """RSS and PSS of one process from smaps_rollup (PSS splits shared pages fairly)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for row in f:
            key, _, rest = row.partition(":")
            if key in ("Rss", "Pss"):
                fields[key] = int(rest.split()[0])
    with open(f"/proc/{pid}/comm") as f:
        name = f.read().strip()
    return Memory(pid, name, fields["Rss"], fields["Pss"])


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces and parentheses: split after the last ')'.
        return int(f.read().rpartition(")")[2].split()[1])


# ---------------------------------------------------------------- daemons


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Poll ``ready()`` until it holds, failing early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited {process.returncode} while starting")
        if ready():
            return
        time.sleep(0.1)
    raise BenchError(f"{what} was not ready within {timeout:.0f}s")


def wait_for_socket(
    path: Path, process: subprocess.Popen[bytes], what: str, timeout: float = 60.0
) -> None:
    """Wait until ``path`` accepts a connection, failing early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited {process.returncode} while starting")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {path} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], what: str, grace: float = 30.0) -> None:
    """SIGTERM the process we started (by its pid), then SIGKILL after ``grace``."""
    if process.poll() is not None:
        return
    log(f"stopping {what} (pid {process.pid})")
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"{what} ignored SIGTERM for {grace:.0f}s; sending SIGKILL to pid {process.pid}")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def pids_whose_cmdline_has(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (a path private to this bench)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


# ---------------------------------------------------------------- mounts and trees


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (the order to unmount them)."""
    prefix = str(path).rstrip("/")
    points = []
    with open("/proc/self/mountinfo") as f:
        for row in f:
            point = row.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all_under(path: Path) -> list[str]:
    """Lazily unmount what the engines left below ``path``; returns what was there."""
    left = mounts_under(path)
    for point in left:
        run(["umount", "-l", point], check=False)
    return left


def remove_tree(path: Path) -> None:
    """rm -rf ``path``, but never across a mount point (that would delete foreign files)."""
    if not path.exists():
        return
    if mounts_under(path):
        raise BenchError(f"not removing {path}: mounts remain under it: {mounts_under(path)}")
    shutil.rmtree(path)


def copy_tree(source: Path, target: Path) -> None:
    """cp -a, which keeps device nodes, owners, hard links and xattrs as the layer has them."""
    target.mkdir(parents=True, exist_ok=True)
    run(["cp", "-a", f"{source}/.", f"{target}/"])


# ---------------------------------------------------------------- the frame of a run


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def claim_workdir(
    script: str, workdir: Path, *, root_because: str = "", crash_hint: bool = False
) -> Path | None:
    """The checks before a bench touches anything: root, and a work directory that no
    other run holds. Prints why and returns None when the bench must not start.

    From here on SIGTERM unwinds like Ctrl-C, so the bench's clean-up runs either way.
    """
    if os.geteuid() != 0:
        because = f" ({root_because})" if root_because else ""
        print(f"{script} needs root{because}", file=sys.stderr)
        return None
    work = workdir.resolve()
    if work.exists():
        hint = "; remove it once nothing is mounted under it" if crash_hint else ""
        print(f"{work} exists: another bench running, or one that crashed{hint}", file=sys.stderr)
        return None
    signal.signal(signal.SIGTERM, _interrupt)
    return work


def rotate(items: Sequence[T], rnd: int) -> list[T]:
    """Round ``rnd``'s order: no engine always runs right after the same other one."""
    k = rnd % len(items)
    return [*items[k:], *items[:k]]


def host_snapshot() -> set[str]:
    """Which HOST_PATHS and engine cgroup parents exist before the engines start."""
    present = {p for p in HOST_PATHS if os.path.lexists(p)}
    for parent in CGROUP_PARENTS:
        present.update(glob.glob(f"/sys/fs/cgroup/*/{parent}"))
    return present


def restore_host(before: set[str]) -> None:
    """Remove the HOST_PATHS and cgroup parents that were not in ``before``."""
    for parent in CGROUP_PARENTS:
        for top in glob.glob(f"/sys/fs/cgroup/*/{parent}"):
            if top in before:
                continue
            # cgroup directories go with rmdir, children first; files inside are virtual.
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"could not remove cgroup {dirpath}: {e}")
    for path in HOST_PATHS:
        if path not in before and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                try:
                    remove_tree(Path(path))
                except (BenchError, OSError) as e:
                    log(f"could not remove {path}: {e}")
            else:
                os.unlink(path)


class Cleanable(Protocol):
    @property
    def name(self) -> str: ...
    def cleanup(self) -> None: ...


def clean_up(engines: Iterable[Cleanable]) -> None:
    """``cleanup()`` of each, in the order given; one that fails is logged, not fatal."""
    for engine in engines:
        try:
            engine.cleanup()
        except (BenchError, OSError) as e:
            log(f"clean-up of {engine.name} failed: {e}")


def release_workdir(work: Path, before: set[str]) -> None:
    """Lift the mounts left under ``work``, remove it, and restore the host paths."""
    left = unmount_all_under(work)
    if left:
        log(f"unmounted leftovers: {left}")
    remove_tree(work)
    restore_host(before)


def tear_down(work: Path, before: set[str], engines: Sequence[Cleanable]) -> None:
    """The end of every run: the engines in reverse order of set-up, then the work dir."""
    log("cleaning up")
    clean_up(reversed(engines))
    release_workdir(work, before)


def write_report(name: str, text: str) -> Path:
    """Write the report to bench/results/<name>.md and print it."""
    out = BENCH_DIR / "results" / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return out


def run_main(main: Callable[[list[str]], int]) -> NoReturn:
    """Exit with ``main``'s status; an interrupt or a failed step ends in one line, after
    ``main``'s own clean-up has run (130 for an interrupt, 1 for a failure)."""
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted; what the bench started has been cleaned up", file=sys.stderr)
        sys.exit(130)
    except BenchError as e:
        print(f"bench failed (after cleaning up): {e}", file=sys.stderr)
        sys.exit(1)
