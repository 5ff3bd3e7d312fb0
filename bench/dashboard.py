"""Dashboard: containers page with 1,000 mirrored containers; bulk remove of 100 against docker.

1. Page: a throw-away SQLite database (``DATABASE_URL``) under the work directory,
   migrated, with ``--rows`` ``ContainerMirror`` rows made through the ORM (``host="fake"``,
   spread over four teams and global), a site admin and an operator of one team. The
   containers list page (``/containers/``, the first page as the server pages it) is
   rendered ``--requests`` times per user through ``django.test.Client`` (in process: the
   server time of the view, middleware and template, no HTTP socket), alternating users.
   p50 and p95 per user.
2. Bulk: per round and engine (rotating order), ``--containers`` running busybox
   containers (``sleep 1000``, ``--network none``), then the time to take them all down:
   - moorage: ``containers_app.services.containers.bulk(admin, "remove", ids,
     {"force": True})``, i.e. one Job with an item per container, carried out by a real
     Celery worker (prefork, 2 processes, no beat) on a private redis-server, which runs
     ``tasks.PARALLEL_ITEMS`` items at a time; the clock stops when the Job row says
     finished (polled every 20 ms), i.e. after the job's final mirror resync.
   - docker: ``docker rm -f <ids>`` against a private containerd + dockerd (run_start.py's).
   The containers are created untimed with the CLIs (``moorage run -d``, ``docker run -d``)
   and mirrored at once (``mirror.sync_container``).

Kernel interfaces: those of the engines it drives. Owns ``--workdir`` (default
``/var/tmp/moorage-bench-dashboard``): the engine's root, the database, redis's directory,
the worker's log and docker's state, all removed at the end; the redis-server, worker,
containerd and dockerd it starts are ended by pid. Engine objects carry the prefix
``moorage-bdash``. Never touches ``var/db.sqlite3``, /var/lib/moorage or /var/lib/docker.

    .venv/bin/python bench/dashboard.py [--rows 1000] [--requests 200] [--containers 100]
        [--rounds 3] [--skip docker]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    BenchError,
    Stats,
    claim_workdir,
    ensure_packages,
    free_port,
    host_snapshot,
    log,
    markdown_table,
    percentile,
    rotate,
    run,
    run_main,
    stop_process,
    tear_down,
    version_of,
    wait_until,
    write_report,
)
from run_start import IMAGE, PACKAGES, Docker, Moorage, prepare_rootfs

from tests import private_redis

REPO = BENCH_DIR.parent
TEAMS = ["red", "blue", "green", "yellow"]  # rows go round-robin to these and to global


# ---------------------------------------------------------------- Django, redis, Celery


def setup_django(work: Path, redis_url: str) -> None:
    """Settings from webui.settings, on a database and redis of the bench's own."""
    os.environ.update(
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="webui.settings",
        # A key of its own: webui.settings would otherwise create var/secret_key.
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
    )
    os.environ.pop("MOORAGE_DEBUG", None)
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


@dataclass
class People:
    site_admin: Any
    operator: Any
    team: Any


def make_rows(rows: int) -> People:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from containers_app.models import ContainerMirror, ContainerState, Membership, Team

    teams = [Team.objects.create(name=name) for name in TEAMS]
    users = get_user_model().objects
    admin = users.create_superuser("bench-root", password=secrets.token_urlsafe(16))
    operator = users.create_user("bench-operator", password=secrets.token_urlsafe(16))
    Membership.objects.create(user=operator, team=teams[0], role="operator")
    states = [
        ContainerState.RUNNING,
        ContainerState.RUNNING,
        ContainerState.EXITED,
        ContainerState.CREATED,
        ContainerState.PAUSED,
    ]
    now = timezone.now()
    owners = [*teams, None]
    ContainerMirror.objects.bulk_create(
        [
            ContainerMirror(
                engine_id=secrets.token_hex(32),
                name=f"bench-{i:04d}",
                image="busybox:latest",
                image_id="sha256:" + "ab" * 32,
                command="sleep 1000",
                state=states[i % len(states)],
                created_at=now - datetime.timedelta(seconds=i),
                started_at=now,
                host="fake",
                team=owners[i % len(owners)],
                labels={"bench": "yes", "n": str(i)},
                ports="0.0.0.0:8080->80/tcp" if i % 3 == 0 else "",
                pid=1000 + i,
            )
            for i in range(rows)
        ],
        batch_size=500,
    )
    return People(admin, operator, teams[0])


def bench_page(people: People, requests: int, warmup: int) -> dict[str, tuple[list[float], int]]:
    """Server time of GET /containers/ per user; returns samples and visible row count."""
    from django.test import Client

    from containers_app.models import ContainerMirror
    from containers_app.permissions import visible

    clients = {}
    for label, user in (("site admin", people.site_admin), ("team operator", people.operator)):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        clients[label] = (client, visible(user, ContainerMirror.objects.all()).count())
    samples: dict[str, list[float]] = {label: [] for label in clients}
    for n in range(warmup + requests):
        for label, (client, _) in clients.items():
            start = time.perf_counter()
            response = client.get("/containers/")
            elapsed = time.perf_counter() - start
            if response.status_code != 200 or b"bench-0" not in response.content:
                raise BenchError(
                    f"/containers/ as {label} answered {response.status_code} "
                    "without the bench's rows"
                )
            if n >= warmup:
                samples[label].append(elapsed)
    return {label: (samples[label], clients[label][1]) for label in clients}


class Backend:
    """A private redis-server and a real Celery worker against the bench's database."""

    name = "worker and redis"  # in clean-up messages

    def __init__(self, work: Path, engine_env: dict[str, str]) -> None:
        self.work = work
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.engine_env = engine_env
        self.redis: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start_redis(self) -> None:
        (self.work / "redis").mkdir()
        self.redis = private_redis.start(self.port, self.work / "redis")
        wait_until("redis-server", lambda: private_redis.answers(self.port), self.redis)

    def start_worker(self) -> None:
        from webui.celery import app

        # No beat (-B): its once-a-second full resync would compete with the job for the
        # database and the CPUs; the job resyncs each container it touches anyway.
        env = dict(os.environ, **self.engine_env, PYTHONPATH=str(REPO))
        with open(self.work / "worker.log", "wb") as logfile:
            self.worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "webui",
                    "worker",
                    "--concurrency",
                    "2",
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "INFO",
                    "--hostname",
                    f"moorage-bench-{os.getpid()}@%h",
                ],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            "celery worker", lambda: bool(app.control.ping(timeout=0.5)), self.worker, timeout=90
        )

    def cleanup(self) -> None:
        if self.worker:
            stop_process(self.worker, "celery worker")
            tail = (self.work / "worker.log").read_text(errors="replace")[-3000:]
            if "Traceback" in tail:
                log(f"worker log ends with a traceback:\n{tail}")
        if self.redis:
            stop_process(self.redis, "redis-server")


# ---------------------------------------------------------------- bulk removal


class MoorageBulk:
    name = "moorage"
    command = 'dashboard services bulk(admin, "remove", ids, {"force": True}) -> Celery job'

    def __init__(self, moorage: Moorage, admin: Any) -> None:
        self.moorage, self.admin = moorage, admin
        self.report: dict[str, Any] = {}

    def start(self, count: int) -> list[str]:
        from containers_app import mirror

        ids = [
            self.moorage.moorage(
                "run", "-d", "--network", "none", "busybox", "sleep", "1000"
            ).stdout.strip()
            for _ in range(count)
        ]
        for cid in ids:
            mirror.sync_container(cid)
        return ids

    def remove(self, ids: list[str]) -> float:
        from containers_app.models import ContainerMirror, ItemState
        from containers_app.services import containers

        start = time.perf_counter()
        job = containers.bulk(self.admin, "remove", ids, {"force": True})
        deadline = time.monotonic() + 600
        while not job.finished:
            if time.monotonic() > deadline:
                raise BenchError(f"bulk remove job {job.pk} did not finish in 600s")
            time.sleep(0.02)
            job.refresh_from_db()
        elapsed = time.perf_counter() - start
        report = job.report()
        if report["counts"].get(ItemState.SUCCEEDED, 0) != len(ids):
            raise BenchError(f"bulk remove job {job.pk} ended {job.state}: {report}")
        left = self.moorage.moorage("ps", "-aq", "--no-trunc").stdout.split()
        if set(left) & set(ids) or ContainerMirror.objects.filter(engine_id__in=ids).exists():
            raise BenchError("containers survived the bulk remove")
        from containers_app.tasks import PARALLEL_ITEMS

        self.report["parallel"] = PARALLEL_ITEMS
        # The action alone (containers.remove in the worker), without the row updates
        # and the mirror resync around it.
        self.report.setdefault("item", []).extend(
            (done - began).total_seconds()
            for began, done in job.items.values_list("started_at", "finished_at")
        )
        worker = (job.finished_at - job.started_at).total_seconds()
        self.report.setdefault("worker", []).append(worker)
        self.report.setdefault("queued", []).append(
            (job.started_at - job.created_at).total_seconds()
        )
        return elapsed


class DockerBulk:
    name = "docker"
    command = "docker rm -f <ids> (one command, own dockerd)"

    def __init__(self, docker: Docker) -> None:
        self.docker = docker

    def start(self, count: int) -> list[str]:
        return [
            run(
                [*self.docker.base, "run", "-d", "--network", "none", IMAGE, "sleep", "1000"],
                env=self.docker.env,
            ).stdout.strip()
            for _ in range(count)
        ]

    def remove(self, ids: list[str]) -> float:
        start = time.perf_counter()
        run([*self.docker.base, "rm", "-f", *ids], env=self.docker.env, timeout=600)
        elapsed = time.perf_counter() - start
        if run([*self.docker.base, "ps", "-aq"], env=self.docker.env).stdout.split():
            raise BenchError("containers survived docker rm -f")
        return elapsed


def bench_bulk(engines: list[Any], rounds: int, count: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {e.name: [] for e in engines}
    for rnd in range(rounds):
        for engine in rotate(engines, rnd):
            ids = engine.start(count)
            elapsed = engine.remove(ids)
            samples[engine.name].append(elapsed)
            log(f"bulk round {rnd + 1}/{rounds}, {engine.name}: {count} removed in {elapsed:.2f}s")
    return samples


# ---------------------------------------------------------------- report and main


def report(
    page: dict[str, tuple[list[float], int]],
    bulk: dict[str, list[float]],
    bulk_engines: list[Any],
    versions: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
    load: tuple[str, str],
) -> str:
    page_rows = [
        [
            label,
            str(visible),
            str(len(s)),
            f"{percentile(s, 50) * 1000:.1f}",
            f"{percentile(s, 95) * 1000:.1f}",
            f"{min(s) * 1000:.1f}",
            f"{max(s) * 1000:.1f}",
        ]
        for label, (s, visible) in page.items()
    ]
    lines = [
        "# Dashboard: containers page and bulk remove",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, {platform.node()}, "
        f"kernel {platform.release()}, {os.cpu_count()} CPUs; 1-min load average {load[0]} at "
        f"start, {load[1]} at the end (a shared machine: compare runs at similar load).",
        "",
        f"## `/containers/` with {args.rows} containers in the mirror (SQLite, "
        f"django.test.Client in process, {args.requests} requests per user after "
        f"{args.warmup} warm-up)",
        "",
        markdown_table(
            ["user", "rows visible", "requests", "p50 ms", "p95 ms", "min ms", "max ms"], page_rows
        ),
        "",
    ]
    targets = [
        f"- page p50 under 150 ms ({label}): {percentile(s, 50) * 1000:.0f} ms -> "
        f"{'met' if percentile(s, 50) < 0.150 else 'NOT met'}"
        for label, (s, _) in page.items()
    ]
    if bulk:
        stats = {name: Stats.of(values) for name, values in bulk.items()}
        rows = [
            [
                e.name,
                e.command,
                f"{stats[e.name].median:.2f}",
                f"{stats[e.name].minimum:.2f}",
                f"{stats[e.name].maximum:.2f}",
                f"{stats[e.name].median / args.containers * 1000:.0f}",
            ]
            for e in bulk_engines
        ]
        lines += [
            f"## Kill + remove of {args.containers} running busybox containers "
            f"({args.rounds} rounds, rotating order)",
            "",
            markdown_table(
                ["engine", "how", "median s", "min s", "max s", "per container ms"], rows
            ),
            "",
        ]
        extra = bulk_engines[0].report
        if extra:
            lines += [
                f"moorage job: median {Stats.of(extra['queued']).median:.2f}s from the "
                f"service call to the worker taking the job, "
                f"{Stats.of(extra['worker']).median:.2f}s in the worker; one item's "
                f"containers.remove(force=True) takes a median "
                f"{Stats.of(extra['item']).median * 1000:.0f} ms (p90 "
                f"{Stats.of(extra['item']).p90 * 1000:.0f} ms). The job runs "
                f"{extra['parallel']} items at a time and resyncs the mirror once at "
                "its end; docker's client sends its removals at once.",
                "",
            ]
        if "docker" in stats:
            r = stats["docker"].median / stats["moorage"].median
            targets.append(
                f"- bulk faster than docker rm -f: docker / moorage = {r:.2f} -> "
                f"{'met' if r > 1 else 'NOT met'}"
            )
    lines += [
        "Targets (issue 5):",
        *targets,
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
    parser.add_argument("--rows", type=int, default=1000, help="mirrored containers (1000)")
    parser.add_argument("--requests", type=int, default=200, help="page loads per user (200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed page loads first (5)")
    parser.add_argument("--containers", type=int, default=100, help="bulk size (100)")
    parser.add_argument("--rounds", type=int, default=3, help="bulk rounds (3; 0 = page only)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/moorage-bench-dashboard"))
    parser.add_argument("--skip", action="append", default=[], choices=["docker"])
    args = parser.parse_args(argv)
    work = claim_workdir(
        "dashboard.py", args.workdir, root_because="its worker runs containers", crash_hint=True
    )
    if work is None:
        return 1
    started = time.monotonic()
    load_at_start = f"{os.getloadavg()[0]:.2f}"
    needed = {"/usr/bin/redis-server": "redis-server"}
    if "docker" not in args.skip and args.rounds:
        needed.update(PACKAGES["docker"])
    ensure_packages(needed)
    before = host_snapshot()
    work.mkdir(parents=True)
    moorage = Moorage(work)
    moorage.env["MOORAGE_PREFIX"] = "moorage-bdash"
    docker = Docker(work) if "docker" not in args.skip and args.rounds else None
    backend = Backend(
        work, {k: moorage.env[k] for k in ("MOORAGE_ROOT", "MOORAGE_RUN", "MOORAGE_PREFIX")}
    )
    bulk: dict[str, list[float]] = {}
    bulk_engines: list[Any] = []
    try:
        backend.start_redis()
        setup_django(work, backend.url)
        log(f"making {args.rows} mirror rows")
        people = make_rows(args.rows)
        log(f"rendering /containers/ {args.requests} times per user")
        page = bench_page(people, args.requests, args.warmup)
        versions = {
            "django": version_of([sys.executable, "-m", "django", "--version"]),
            "redis": version_of(["redis-server", "--version"]),
        }
        if args.rounds:
            log("bootstrapping busybox in a private MOORAGE_ROOT")
            layers = moorage.bootstrap()
            backend.start_worker()
            bulk_engines.append(MoorageBulk(moorage, people.site_admin))
            if docker:
                rootfs, tarball = prepare_rootfs(work, layers)
                log("setting up docker")
                docker.setup(rootfs, tarball)
                bulk_engines.append(DockerBulk(docker))
                versions["docker"] = docker.version()
            versions["moorage"] = moorage.version()
            log(f"bulk remove of {args.containers} containers, {args.rounds} rounds")
            bulk = bench_bulk(bulk_engines, args.rounds, args.containers)
    finally:
        tear_down(work, before, [e for e in (moorage, docker, backend) if e is not None])
    load = (load_at_start, f"{os.getloadavg()[0]:.2f}")
    text = report(page, bulk, bulk_engines, versions, args, time.monotonic() - started, load)
    out = write_report("dashboard", text)
    log(f"written to {out}; total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    run_main(main)
