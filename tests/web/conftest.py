"""Fixtures for the dashboard's tests (pytest-django)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from pytest_django import Settings

from tests import private_redis


@pytest.fixture(scope="session", autouse=True)
def _no_stray_database_sessions(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Before the test database is dropped: end sessions that threads of this process
    (live servers, websocket executors) left open, or PostgreSQL refuses the drop."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Iterator[None]:
    """Each test runs its websockets in an event loop of its own; channels_redis binds
    its locks to the loop that first used them, so a layer must not outlive its test."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # The real hasher spends ~0.5 s per password on purpose; tests only need it to be one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- a real Redis, a real Celery worker, users per role, busybox containers ------------
# (dashboard-core). The worker and beat run as separate processes against the test
# database, so tests that use them take ``transactional_db`` (rows must be committed for
# the worker to see them). While the worker runs, beat resyncs the mirror every second:
# rows for real engine objects (busybox, the session's containers) come and go on their
# own; made-up mirror rows must use another ``host`` (e.g. "fake") to be left alone.

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "runtime.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """TERM the process we started (by pid), then KILL it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        if ready():
            return
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f} s")


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgreSQL:
    """A throw-away PostgreSQL cluster (Debian ``postgresql``) on a private unix socket:
    initdb into a fresh directory, ``postgres`` as the postgres user, no TCP listener."""

    def __init__(self) -> None:
        import pwd

        self.base = Path(tempfile.mkdtemp(prefix="moorage-pg-", dir="/var/tmp"))
        self.data, self.socket_dir = self.base / "data", self.base / "sock"
        self.socket_dir.mkdir()
        account = pwd.getpwnam("postgres")
        for path in (self.base, self.socket_dir):
            os.chown(path, account.pw_uid, account.pw_gid)
        self.port = _free_port()
        as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []}
        subprocess.run(
            [
                str(POSTGRES_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            **as_postgres,
        )
        with open(self.base / "server.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(POSTGRES_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "synchronous_commit=off",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                **as_postgres,
            )
        sock = self.socket_dir / f".s.PGSQL.{self.port}"

        def ready() -> bool:
            if not sock.exists():
                return False
            return (
                subprocess.run(
                    [
                        str(POSTGRES_BIN / "pg_isready"),
                        "-q",
                        "-h",
                        str(self.socket_dir),
                        "-p",
                        str(self.port),
                    ],
                    check=False,
                ).returncode
                == 0
            )

        _wait("postgres", ready, self.proc)

    def settings(self) -> dict[str, object]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "moorage",
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": str(self.socket_dir),
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
            "OPTIONS": {},
        }

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: clients are disconnected, no waiting.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The test database: with MOORAGE_TEST_DATABASE=postgresql a private PostgreSQL
    cluster, else SQLite in a file (not in memory), so the worker can open it too."""
    from django.conf import settings as django_settings
    from django.db import connections

    db = django_settings.DATABASES["default"]
    # No persistent connections in tests: websocket tests reach the ORM from executor
    # threads, whose connections must close after each call (channels does that when
    # the age limit is 0), or PostgreSQL refuses to drop the test database at the end.
    db["CONN_MAX_AGE"] = 0
    server = None
    if os.environ.get("MOORAGE_TEST_DATABASE", "sqlite") == "postgresql":
        server = PrivatePostgreSQL()
        db.update(server.settings())  # over the defaults Django has filled in
        with contextlib.suppress(AttributeError):
            del connections["default"]  # a connection made before would still be SQLite's
    elif db["ENGINE"] == "django.db.backends.sqlite3":
        suffix = os.environ.get("PYTEST_XDIST_WORKER", "main")
        path = tmp_path_factory.mktemp("db") / f"test-{suffix}.sqlite3"
        db.setdefault("TEST", {})["NAME"] = str(path)
    try:
        yield
    finally:
        if server is not None:
            server.stop()


def database_url() -> str:
    """DATABASE_URL of the test database (after pytest-django created it)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if "postgresql" in db["ENGINE"]:
        user = quote(db.get("USER") or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        host = quote(db.get("HOST") or "", safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"
    raise RuntimeError(f"no worker support for {db['ENGINE']}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free port; settings and the Celery app point at it."""
    from django.conf import settings as django_settings

    from webui import settings as webui_settings
    from webui.celery import app

    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = private_redis.start(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    _wait("redis-server", lambda: private_redis.answers(port), proc)
    saved = (
        django_settings.REDIS_URL,
        django_settings.CELERY_BROKER_URL,
        django_settings.CHANNEL_LAYERS,
    )
    django_settings.REDIS_URL = django_settings.CELERY_BROKER_URL = url
    django_settings.CHANNEL_LAYERS = webui_settings.channel_layers(url)
    app.conf.broker_url = url
    app.conf.result_backend = url
    try:
        yield url
    finally:
        (
            django_settings.REDIS_URL,
            django_settings.CELERY_BROKER_URL,
            django_settings.CHANNEL_LAYERS,
        ) = saved
        _stop(proc)


@pytest.fixture(scope="session", autouse=True)
def _cache_on_the_test_redis(redis_server: str) -> Iterator[None]:
    """Django's cache (login throttling counts) in the test's redis-server, laid out as
    settings.py lays it out in the system's; never in a Redis outside the test."""
    from django.test import override_settings

    from webui.settings import redis_caches

    with override_settings(CACHES=redis_caches(redis_server)):  # resets django's caches
        yield


@pytest.fixture(scope="session")
def celery_worker(
    redis_server: str,
    django_db_setup: None,
    django_db_blocker: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker (root, prefork) with embedded beat, on the test database and
    the session's engine root. Its log is kept under the session's tmp dir."""
    from webui.celery import app

    workdir = tmp_path_factory.mktemp("celery")
    log_path = workdir / "worker.log"
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=redis_server,
        DJANGO_SETTINGS_MODULE="webui.settings",
        PYTHONPATH=str(REPO),
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webui",
                "worker",
                "-B",
                "--schedule",
                str(workdir / "beat-schedule"),
                "--concurrency",
                "2",
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        return bool(app.control.ping(timeout=0.5))

    try:
        _wait("celery worker", answers, proc, timeout=60)
        yield proc
    finally:
        _stop(proc, grace=30)
        tail = log_path.read_text(errors="replace")[-3000:]
        if "Traceback" in tail:
            print(f"--- celery worker log ({log_path}), last lines ---\n{tail}", file=sys.stderr)


@dataclass
class Users:
    """One user per role in team ``team``, a site admin, and an outsider who is an
    operator of ``other_team`` only."""

    team: object
    other_team: object
    site_admin: object
    admin: object
    operator: object
    viewer: object
    outsider: object


@pytest.fixture
def users(db: None) -> Users:
    from django.contrib.auth import get_user_model

    from containers_app.models import Membership, Team

    make = get_user_model().objects.create_user
    team = Team.objects.create(name="red")
    other = Team.objects.create(name="blue")
    site_admin = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    members = {}
    for role in ("admin", "operator", "viewer"):
        members[role] = make(f"red-{role}", password=f"pw-{role}-12345")
        Membership.objects.create(user=members[role], team=team, role=role)
    outsider = make("blue-operator", password="pw-outsider-12345")
    Membership.objects.create(user=outsider, team=other, role="operator")
    return Users(
        team, other, site_admin, members["admin"], members["operator"], members["viewer"], outsider
    )


@pytest.fixture(scope="session")
def busybox_image() -> object:
    from runtime import images

    return images.ensure_busybox()


def remove_all_engine_containers() -> None:
    from runtime import containers

    for cid in containers.store.ids():
        try:
            containers.remove(cid, force=True)
        except Exception as e:  # noqa: BLE001 - report, but keep cleaning the rest
            print(f"cleanup of {cid[:12]} failed: {e}", file=sys.stderr)


class EngineContainers:
    """Runs busybox containers with the real CLI; each gets a mirror row at once."""

    def run(self, name: str, *cmd: str, team: object | None = None, detach: bool = True) -> str:
        from containers_app import mirror

        label = ["--label", f"{mirror.TEAM_LABEL}={team.pk}"] if team is not None else []
        # --network none: these tests are about the dashboard, not about bridges.
        args = ["run", "-d"] if detach else ["create"]
        args += ["--network", "none"]
        done = subprocess.run(
            CLI + args + ["--name", name, *label, "busybox", *(cmd or ("sleep", "600"))],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"moorage run {name} failed: {done.stderr}"
        cid = done.stdout.strip()
        mirror.sync_container(cid)
        return cid

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            CLI + list(args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"moorage {' '.join(args)} failed: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="session", autouse=True)
def _no_engine_objects_outlive_the_session() -> Iterator[None]:
    yield
    if os.environ.get("MOORAGE_ROOT"):
        remove_all_engine_containers()
        from runtime.network import gc as network_gc

        network_gc.remove_everything()  # bridges and nft tables outlive containers


@pytest.fixture
def engine_containers(busybox_image: object) -> Iterator[EngineContainers]:
    yield EngineContainers()
    remove_all_engine_containers()


def _wait_for_job(job: object, timeout: float = 60.0) -> object:
    """Poll the job row until the worker finishes it; return it refreshed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()  # type: ignore[attr-defined]
        if job.finished:  # type: ignore[attr-defined]
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish in {timeout} s: {job.report()}")  # type: ignore[attr-defined]


@pytest.fixture
def wait_for_job() -> Callable[..., object]:
    """``wait_for_job(job, timeout=60)``: poll until the worker finishes the job."""
    return _wait_for_job


@pytest.fixture(scope="session", autouse=True)
def _flushes_retry_deadlocks() -> Iterator[None]:
    """On PostgreSQL, the TRUNCATE that ends a transactional test can deadlock with the
    Celery worker's own writes (beat resyncs the mirror every second); PostgreSQL then
    cancels one side. The flush is one transaction, rolled back when cancelled, so it is
    tried again instead of failing the test (and the next one, which finds stale rows)."""
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(5):
            try:
                original(self)
                return
            except Exception as e:  # noqa: BLE001 - CommandError wrapping the deadlock
                causes = [e, e.__cause__, getattr(e.__cause__, "__cause__", None)]
                if attempt == 4 or not any("deadlock detected" in str(c) for c in causes):
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original
