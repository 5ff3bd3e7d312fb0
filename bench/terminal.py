"""Browser-terminal round trip and log-follow throughput (issue 6), over real loopback.

Measures, on this machine, against a private Moorage (own ``MOORAGE_ROOT``/``MOORAGE_RUN``,
own SQLite database, own redis-server, own daphne):

1. Keystroke-to-echo round trip: one byte sent, the same byte read back, through
   - the websocket terminal (``ws/containers/<ref>/terminal/?cmd=...``, a real websocket
     client on loopback through daphne, Origin check and session included);
   - ``moorage exec -it`` driven through a pty;
   - ``docker exec -it`` driven through a pty, against a private dockerd and containerd
     started here as ``bench/run_start.py`` starts them (own data root, sockets and
     containerd namespace; busybox imported from Moorage's own rootfs, nothing pulled).
   The process in the container is ``stty raw -echo; cat``, so the echo is the
   process's own output, not the line discipline's.
2. Log follow throughput: a container writes ``--log-mb`` MB of 100-byte lines once a
   follower is attached; MB/s from the first byte to the last through the logs websocket,
   and through ``moorage logs -f`` and ``docker logs -f`` (private dockerd).

Docker rows are left out, with the reason in the report, when the private dockerd cannot
start (``--skip-docker`` leaves them out on purpose).

Owns ``--workdir`` (default /var/tmp/moorage-bench-terminal), removed at the end with
its containers; ends only the processes it started, by pid. Needs root (containers).

    .venv/bin/python bench/terminal.py [--keys 500] [--log-mb 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
import tty
from pathlib import Path

from _common import (
    BenchError,
    free_port,
    host_snapshot,
    log,
    markdown_table,
    remove_tree,
    restore_host,
    unmount_all_under,
    write_report,
)
from run_start import IMAGE, Docker, prepare_rootfs

from tests import private_redis

REPO = Path(__file__).resolve().parents[1]
CAT = "stty raw -echo; cat"
WRITER = (
    "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
    "yes 0123456789012345678901234567890123456789012345678901234567890123456789"
    "01234567890123456789012345678 | head -c {size}"
)


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"{what} did not listen on {port} within 30 s")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


# ---------------------------------------------------------------- round trips


def pty_round_trips(argv: list[str], keys: int, env: dict[str, str]) -> list[float]:
    """Echo round trips of a CLI client (``moorage``/``docker exec -it``) on a pty."""
    pid, fd = pty.fork()
    if pid == 0:
        # Raw before the client starts, so no echo can come from this side's line
        # discipline: every byte read back crossed into the container and out again.
        tty.setraw(0)
        os.execvpe(argv[0], argv, env)
    try:

        def read_until(byte: bytes, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            seen = b""
            while byte not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise BenchError(f"{argv[0]}: no echo of {byte!r}; got {seen[-200:]!r}")
                seen += os.read(fd, 65536)

        time.sleep(0.5)
        os.write(fd, b"R")
        read_until(b"R", 15)
        samples = []
        for i in range(keys):
            key = bytes([97 + i % 26])
            start = time.perf_counter()
            os.write(fd, key)
            read_until(key, 5)
            samples.append(time.perf_counter() - start)
        return samples
    finally:
        os.write(fd, b"\x03")
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


async def websocket_round_trips(base: str, cookie: str, ref: str, keys: int) -> list[float]:
    from urllib.parse import quote

    from websockets.asyncio.client import connect

    url = f"ws{base[4:]}/ws/containers/{ref}/terminal/?mode=exec&cmd={quote('sh -c ' + repr(CAT))}"
    async with connect(
        url, origin=base, additional_headers={"Cookie": cookie}, compression=None
    ) as ws:
        ready = json.loads(await ws.recv())
        if "ready" not in ready:
            raise BenchError(f"terminal refused: {ready}")

        async def until(byte: bytes) -> None:
            while True:
                message = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(message, bytes) and byte in message:
                    return

        await ws.send(b"R")
        await until(b"R")
        samples = []
        for i in range(keys):
            key = bytes([97 + i % 26])
            start = time.perf_counter()
            await ws.send(key)
            await until(key)
            samples.append(time.perf_counter() - start)
        return samples


# ---------------------------------------------------------------- log throughput


async def websocket_log_rate(
    base: str, cookie: str, ref: str, go: list[str], env: dict[str, str]
) -> tuple[float, int]:
    from websockets.asyncio.client import connect

    url = f"ws{base[4:]}/ws/containers/{ref}/logs/?tail=0"
    async with connect(
        url, origin=base, additional_headers={"Cookie": cookie}, max_size=None, compression=None
    ) as ws:
        subprocess.run(go, env=env, check=True, capture_output=True)
        total, first, last = 0, 0.0, 0.0
        async for message in ws:
            data = json.loads(message)
            if "lines" in data:
                last = time.perf_counter()
                first = first or last
                total += sum(len(line[2]) for line in data["lines"])
            elif data.get("end") or data.get("error"):
                break
    return total / max(last - first, 1e-9) / 1e6, total


def cli_log_rate(argv: list[str], go: list[str], env: dict[str, str]) -> tuple[float, int]:
    follower = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert follower.stdout is not None
    try:
        time.sleep(0.5)
        subprocess.run(go, env=env, check=True, capture_output=True)
        total, first, last = 0, 0.0, 0.0
        while chunk := follower.stdout.read1(1 << 20):
            last = time.perf_counter()
            first = first or last
            total += len(chunk)
    finally:
        follower.kill()
        follower.wait()
    return total / max(last - first, 1e-9) / 1e6, total


# ---------------------------------------------------------------- set-up


def private_docker(work: Path) -> tuple[Docker | None, str]:
    """A dockerd + containerd of our own (run_start.Docker) with busybox imported from
    the private Moorage root; (None, why) when it cannot start."""
    from runtime import images

    docker = Docker(work)
    try:
        work.mkdir(parents=True, exist_ok=True)
        rootfs, tarball = prepare_rootfs(work, images.resolve("busybox").layer_dirs())
        docker.setup(rootfs, tarball)
    except (BenchError, OSError) as e:
        try:
            docker.cleanup()
        except (BenchError, OSError) as again:
            log(f"clean-up of the private dockerd failed: {again}")
        return None, f"the private dockerd could not start ({e})"
    return docker, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--log-mb", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-terminal"))
    parser.add_argument("--skip-docker", action="store_true", help="no docker rows")
    args = parser.parse_args()
    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    redis_port, web_port = free_port(), free_port()
    env = dict(
        os.environ,
        MOORAGE_ROOT=str(work / "root"),
        MOORAGE_RUN=str(work / "run"),
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DJANGO_SETTINGS_MODULE="webui.settings",
        PYTHONPATH=str(REPO),
    )
    os.environ.update(env)
    moorage = [sys.executable, "-m", "runtime.cli"]
    started: list[subprocess.Popen[bytes]] = []
    size = args.log_mb * 1_000_000
    results = REPO / "bench" / "results"  # the report, and daphne's log for a post-mortem
    results.mkdir(exist_ok=True)
    docker: Docker | None = None
    # What containerd/dockerd create outside the workdir (restored only if we ran them).
    host_before = None if args.skip_docker else host_snapshot()
    try:
        started.append(private_redis.start(redis_port, work))
        wait_port(redis_port, started[-1], "redis-server")
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from containers_app import mirror
        from runtime import images

        call_command("migrate", verbosity=0)
        admin = get_user_model().objects.create_superuser("bench", password="bench-pw-12345")
        client = Client()
        client.force_login(admin)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        images.ensure_busybox()
        started.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(web_port),
                    "webui.asgi:application",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(results / "terminal-daphne.log", "wb"),
            )
        )
        wait_port(web_port, started[-1], "daphne")
        base = f"http://127.0.0.1:{web_port}"

        def run(name: str, *cmd: str) -> str:
            done = subprocess.run(
                moorage + ["run", "-d", "--network", "none", "--name", name, "busybox", *cmd],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            cid = done.stdout.strip()
            mirror.sync_container(cid)
            return cid

        run("bench-term", "sleep", "3600")
        log(f"round trips: {args.keys} keystrokes each")
        rows = []
        ws = asyncio.run(websocket_round_trips(base, cookie, "bench-term", args.keys))
        rows.append(("websocket terminal (daphne, loopback)", ws))
        cli = pty_round_trips(
            moorage + ["exec", "-it", "bench-term", "sh", "-c", CAT], args.keys, env
        )
        rows.append(("moorage exec -it (pty)", cli))
        why_not_docker = "--skip-docker given"
        if not args.skip_docker:
            log("starting a private dockerd")
            docker, why_not_docker = private_docker(work / "docker-bench")
        if docker is not None:
            dk = docker.base
            subprocess.run(
                [
                    *dk,
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    "bench-term",
                    IMAGE,
                    "sleep",
                    "3600",
                ],
                env=docker.env,
                check=True,
                capture_output=True,
            )
            rows.append(
                (
                    "docker exec -it (pty, private dockerd)",
                    pty_round_trips(
                        [*dk, "exec", "-it", "bench-term", "sh", "-c", CAT], args.keys, docker.env
                    ),
                )
            )

        log(f"log follow: {args.log_mb} MB each")
        writer = WRITER.format(size=size)
        run("bench-logs-ws", "sh", "-c", writer)
        run("bench-logs-cli", "sh", "-c", writer)
        rates = [
            (
                "logs websocket (tail=0, follow)",
                *asyncio.run(
                    websocket_log_rate(
                        base,
                        cookie,
                        "bench-logs-ws",
                        moorage + ["exec", "bench-logs-ws", "touch", "/tmp/go"],
                        env,
                    )
                ),
            )
        ]
        rates.append(
            (
                "moorage logs -f",
                *cli_log_rate(
                    moorage + ["logs", "-f", "--tail", "0", "bench-logs-cli"],
                    moorage + ["exec", "bench-logs-cli", "touch", "/tmp/go"],
                    env,
                ),
            )
        )
        if docker is not None:
            subprocess.run(
                [
                    *dk,
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    "bench-logs",
                    IMAGE,
                    "sh",
                    "-c",
                    writer,
                ],
                env=docker.env,
                check=True,
                capture_output=True,
            )
            rates.append(
                (
                    "docker logs -f (private dockerd)",
                    *cli_log_rate(
                        [*dk, "logs", "-f", "--tail", "0", "bench-logs"],
                        [*dk, "exec", "bench-logs", "touch", "/tmp/go"],
                        docker.env,
                    ),
                )
            )

        report = [
            "# Terminal round trip and log follow throughput",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPUs, {args.keys} keystrokes, {args.log_mb} MB of log.",
            "",
            markdown_table(
                ["keystroke → echo", "p50 ms", "p99 ms", "n"],
                [
                    (
                        name,
                        f"{percentiles(s)[0] * 1e3:.2f}",
                        f"{percentiles(s)[1] * 1e3:.2f}",
                        str(len(s)),
                    )
                    for name, s in rows
                ],
            ),
            "",
            markdown_table(
                ["log follow", "MB/s", "bytes"],
                [(name, f"{rate:.1f}", str(total)) for name, rate, total in rates],
            ),
        ]
        if docker is None:
            report += ["", f"Docker rows left out: {why_not_docker}."]
        write_report("terminal", "\n".join(report) + "\n")
    finally:
        subprocess.run(
            moorage + ["rm", "-f", "bench-term", "bench-logs-ws", "bench-logs-cli"],
            env=env,
            capture_output=True,
        )
        if docker is not None:
            docker.cleanup()  # its containers, dockerd, containerd and stray shims
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if left := unmount_all_under(work):
            log(f"unmounted leftovers: {left}")
        remove_tree(work)
        if host_before is not None:
            restore_host(host_before)


if __name__ == "__main__":
    main()
