"""Build, pull, push and registries from the dashboard (issue 7), through the real parts.

Builds and pulls run in the real Celery worker against the session's engine root; their
output is read over the real websocket (``ws/jobs/<pk>/output/``, ASGI stack with the
Origin check and a real session). Pulls go to Debian's ``docker-registry`` started on
127.0.0.1 the way tests/kernel/test_registry.py starts it (its starter is reused). The
form and permission tests need no worker: a refused or invalid request queues nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from containers_app import mirror
from containers_app.models import (
    AuditEntry,
    AuditResult,
    ContainerMirror,
    ImageMirror,
    Job,
    JobState,
    RegistryEntry,
)
from containers_app.services import containers as container_services
from containers_app.services import registries as registry_services
from runtime import images, paths
from tests.kernel.test_registry import (  # noqa: F401 (auth_registry is a fixture)
    _start_registry,
    _stop_registry,
    auth_registry,
    drop,
    moorage,
)
from tests.web.test_streams import signed_in, socket_to

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def team_id(users: Any) -> str:
    return str(users.team.pk)


def job_of(response: Any) -> Job:
    assert response.status_code == 302, response.content.decode()[:2000]
    pk = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
    return Job.objects.get(pk=pk)


def stream(user: Any, job: Job, timeout: float = 60) -> list[dict[str, Any]]:
    """Every frame of the job's output socket, up to and including {"end": ...}."""
    session = signed_in(user)

    async def scenario() -> list[dict[str, Any]]:
        ws = socket_to(f"/ws/jobs/{job.pk}/output/", session)
        connected, _ = await ws.connect()
        assert connected
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not frames or "end" not in frames[-1]:
            message = await ws.receive_output(max(0.1, deadline - time.monotonic()))
            assert message["type"] != "websocket.close", (message, frames)
            frames.append(json.loads(message["text"]))
        assert (await ws.receive_output(5))["type"] == "websocket.close"
        return frames

    return asyncio.run(scenario())


def output_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["output"] for f in frames if "output" in f)


def context_tar(
    files: dict[str, bytes], links: dict[str, str] | None = None, gzip: bool = True
) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz" if gzip else "w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    data.seek(0)
    data.name = "context.tar.gz"
    return data


# --- builds through the worker ------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_a_pasted_dockerfile_builds_in_the_worker_streams_its_steps_and_the_image_is_listed(
    transactional_db: None, users: Any, wait_for_job: Callable[..., Job]
) -> None:
    dockerfile = 'FROM busybox\nRUN echo hello-from-run\nCMD ["cat", "/etc/hostname"]\n'
    response = client_for(users.operator).post(
        "/images/build/",
        {
            "team": team_id(users),
            "dockerfile": dockerfile,
            "tags": "dash/app:v1",
            "build_args": "",
            "dockerfile_path": "Dockerfile",
        },
    )
    job = job_of(response)
    frames = stream(users.viewer, job)  # a viewer of the team may watch
    text = output_text(frames)
    assert "Step 2/3 : RUN echo hello-from-run" in text
    assert "hello-from-run\n" in text
    assert "Successfully tagged dash/app:v1" in text
    assert frames[-1]["end"]["state"] == "succeeded"
    job = wait_for_job(job)
    image_id = job.items.get().result
    assert images.resolve("dash/app:v1").id == image_id
    # Beat's resync may have read the image between its commit and its tag and written
    # after the job's own sync: the mirror is right again within a beat (the dashboard
    # promises 2 s).
    deadline = time.monotonic() + 3
    row = ImageMirror.objects.get(engine_id=image_id)
    while "dash/app:v1" not in row.repo_tags and time.monotonic() < deadline:
        time.sleep(0.2)
        row.refresh_from_db()
    assert row.team_id == users.team.pk and "dash/app:v1" in row.repo_tags
    page = client_for(users.viewer).get("/images/?q=dash/app")
    assert "dash/app:v1" in page.content.decode()
    entry = AuditEntry.objects.get(job=job)
    assert (entry.verb, entry.result, entry.username) == (
        "image.build",
        "succeeded",
        "red-operator",
    )


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_a_failing_run_step_shows_which_step_failed_and_its_exit_code(
    transactional_db: None, users: Any, wait_for_job: Callable[..., Job]
) -> None:
    response = client_for(users.operator).post(
        "/images/build/",
        {
            "team": team_id(users),
            "dockerfile": "FROM busybox\nRUN echo before-failing && exit 3\n",
            "dockerfile_path": "Dockerfile",
        },
    )
    job = job_of(response)
    frames = stream(users.operator, job)
    failed = next(f["failed"] for f in frames if "failed" in f)
    assert failed["step"] == "Step 2/2 : RUN echo before-failing && exit 3"
    assert failed["exit_code"] == 3
    assert "returned a non-zero code: 3" in failed["message"]
    assert "before-failing" in output_text(frames)
    assert frames[-1]["end"]["state"] == "failed"
    job = wait_for_job(job)
    error = job.items.get().error
    assert error.startswith("Step 2/2 : RUN echo before-failing && exit 3 failed (exit code 3)")
    page = client_for(users.operator).get(f"/images/jobs/{job.pk}/").content.decode()
    assert "exit code 3" in page  # the failure is on the page without the socket too
    assert AuditEntry.objects.get(job=job).result == AuditResult.FAILED


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_an_uploaded_context_builds_and_hostile_ones_fail_with_a_clear_error(
    transactional_db: None, users: Any, wait_for_job: Callable[..., Job]
) -> None:
    operator = client_for(users.operator)
    good = context_tar(
        {"build/Dockerfile.web": b"FROM busybox\nCOPY greeting /greeting\n", "greeting": b"hi\n"}
    )
    job = wait_for_job(
        job_of(
            operator.post(
                "/images/build/",
                {
                    "team": team_id(users),
                    "context": good,
                    "dockerfile_path": "build/Dockerfile.web",
                    "tags": "dash/ctx:v1",
                },
            )
        )
    )
    assert job.state == JobState.SUCCEEDED, job.report()
    assert images.resolve("dash/ctx:v1").id == job.items.get().result

    escaping = context_tar({"Dockerfile": b"FROM busybox\n", "../escape": b"x"}, gzip=False)
    job = wait_for_job(
        job_of(
            operator.post(
                "/images/build/",
                {"team": team_id(users), "context": escaping, "dockerfile_path": "Dockerfile"},
            )
        )
    )
    assert job.state == JobState.FAILED
    assert "escape" in job.items.get().error, job.items.get().error

    # A Dockerfile that is a symlink to a host file is never read.
    linked = context_tar({}, links={"Dockerfile": "/etc/passwd"})
    job = wait_for_job(
        job_of(
            operator.post(
                "/images/build/",
                {"team": team_id(users), "context": linked, "dockerfile_path": "Dockerfile"},
            )
        )
    )
    assert job.state == JobState.FAILED
    assert "leads outside the build context" in job.items.get().error
    assert not [p for p in os.listdir(paths.tmp()) if p.startswith("build-upload-")]


# --- bad input and refusals (no worker: nothing may be queued) ----------------------------


@pytest.mark.django_db
def test_garbage_in_every_build_field_is_a_field_error_never_a_500(
    users: Any, settings: Any
) -> None:
    settings.MOORAGE_MAX_BUILD_CONTEXT = 1024
    operator = client_for(users.operator)
    cases = [  # (fields, the field whose error it is, words of the message)
        ({"dockerfile": "FROM busybox\nFROBNICATE now\n"}, "dockerfile", "line 2"),
        ({"dockerfile": "FROM busybox\n", "tags": "Bad Tag:@@"}, "tags", ""),
        (
            {"dockerfile": "FROM busybox\n", "build_args": "no-equals-sign"},
            "build_args",
            "KEY=VALUE",
        ),
        ({"dockerfile": "FROM busybox\n", "target": "-dash"}, "target", "stage name"),
        ({"dockerfile": "FROM busybox\n", "target": "x\x00"}, "target", ""),
        (
            {"dockerfile": "FROM busybox\n", "dockerfile_path": "../../etc/passwd"},
            "dockerfile_path",
            "relative",
        ),
        (
            {"dockerfile": "FROM busybox\n", "dockerfile_path": "/etc/passwd"},
            "dockerfile_path",
            "relative",
        ),
        (
            {"dockerfile": "FROM busybox\n", "team": "99999999999999999999"},
            "__all__",
            "no such team",
        ),
        ({"dockerfile": "x" * 70_000}, "dockerfile", ""),
        ({"context": io.BytesIO(b"\x00garbage" * 100)}, "context", "not a tar"),
        ({"context": io.BytesIO(os.urandom(4096))}, "context", "larger than the limit"),
        ({}, "__all__", "one of the two"),
    ]
    for fields, field, words in cases:
        data = {"team": team_id(users), "dockerfile_path": "Dockerfile", **fields}
        if "context" in data:
            data["context"].name = "ctx.tar"
        response = operator.post("/images/build/", data)
        assert response.status_code == 200, (fields, response.status_code)
        errors = response.context["form"].errors
        assert field in errors, (fields, errors)
        assert words.lower() in " ".join(errors[field]).lower(), (fields, errors)
    for reference in ("repo/UPPER", "a b", "x" * 300, "busybox@sha256:zz"):
        response = operator.post("/images/pull/", {"team": team_id(users), "reference": reference})
        assert response.status_code == 200 and "errorlist" in response.content.decode()
    admin = client_for(users.site_admin)
    for url in ("http://bad host/", "", "ftp://" + "x" * 300):
        response = admin.post("/registries/", {"url": url, "username": "u", "password": "p"})
        assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not Job.objects.exists() and not RegistryEntry.objects.exists()


@pytest.mark.django_db(transaction=True)  # the socket reads the session from another thread
def test_viewers_get_403_outsiders_404_and_every_refusal_is_audited(users: Any) -> None:
    image = ImageMirror.objects.create(
        engine_id="sha256:" + "ab" * 32,
        repo_tags=["red/app:v1"],
        tags_text="red/app:v1",
        team=users.team,
        host="fake",
    )
    build = {
        "team": team_id(users),
        "dockerfile": "FROM busybox\n",
        "dockerfile_path": "Dockerfile",
    }
    viewer, operator, outsider = (
        client_for(u) for u in (users.viewer, users.operator, users.outsider)
    )
    assert viewer.post("/images/build/", build).status_code == 403
    assert (
        viewer.post("/images/pull/", {"team": team_id(users), "reference": "busybox"}).status_code
        == 403
    )
    assert outsider.post("/images/build/", build).status_code == 403  # not in team red
    push = {"target": "127.0.0.1:5000/red/app:v1"}
    assert operator.post(f"/images/{image.engine_id}/push/", push).status_code == 403
    assert outsider.post(f"/images/{image.engine_id}/push/", push).status_code == 404
    assert operator.post("/registries/", {"url": "r.local:5000"}).status_code == 403
    denied = AuditEntry.objects.filter(result=AuditResult.DENIED)
    assert sorted(denied.values_list("verb", flat=True)) == [
        "image.build",
        "image.build",
        "image.pull",
        "image.push",
        "image.push",
        "registry.create",
    ]
    # Another team's job: no page, no output socket.
    job = Job.objects.create(verb="image.build", user=users.operator, team=users.team)
    assert outsider.get(f"/images/jobs/{job.pk}/").status_code == 404

    async def refused() -> tuple[dict[str, Any], int]:
        ws = socket_to(f"/ws/jobs/{job.pk}/output/", session)
        await ws.connect()
        frame = json.loads((await ws.receive_output(5))["text"])
        closed = await ws.receive_output(5)
        return frame, closed["code"]

    session = signed_in(users.outsider)
    frame, code = asyncio.run(refused())
    assert code == 4404 and frame["error"].startswith("No such job")
    # CSRF: a forged form without the token is refused before anything runs.
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(users.operator)
    assert forged.post("/images/build/", build).status_code == 403
    assert not Job.objects.exclude(pk=job.pk).exists()


@pytest.mark.django_db
def test_registry_passwords_are_stored_encrypted_and_never_rendered(users: Any) -> None:
    admin = client_for(users.site_admin)
    response = admin.post(
        "/registries/",
        {
            "url": "http://Registry.Local:5000/",
            "username": "alice",
            "password": "s3cret-pass-42",
            "insecure": "on",
        },
    )
    assert response.status_code == 302
    entry = RegistryEntry.objects.get()
    assert (entry.domain, entry.insecure) == ("registry.local:5000", True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM containers_app_registryentry")
        row = cursor.fetchone()
    assert not any("s3cret" in str(value) for value in row)
    assert registry_services.decrypt(entry) == "s3cret-pass-42"
    for page in (admin.get("/registries/"), admin.get(f"/registries/{entry.pk}/")):
        assert "s3cret" not in page.content.decode()
    # An edit without a password keeps the stored one; the audit never holds it.
    admin.post(f"/registries/{entry.pk}/", {"url": entry.url, "username": "alice"})
    entry.refresh_from_db()
    assert registry_services.decrypt(entry) == "s3cret-pass-42" and not entry.insecure
    audit = AuditEntry.objects.filter(verb__startswith="registry.")
    assert list(audit.values_list("verb", flat=True)) == ["registry.update", "registry.create"]
    assert not any("s3cret" in json.dumps(a.options) + a.detail for a in audit)
    assert admin.post(f"/registries/{entry.pk}/remove/").status_code == 302
    assert not RegistryEntry.objects.exists()


# --- pull, push and pull-if-missing against a real registry --------------------------------


@pytest.fixture(scope="module")
def local_registry() -> Iterator[str]:
    reg = _start_registry(None)
    yield reg.host
    _stop_registry(reg)


def pushed_image(registry: str, name: str) -> str:
    """An image with a layer of its own, pushed with the runtime, then removed locally."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        body = os.urandom(512 * 1024)
        info = tarfile.TarInfo("payload")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    reference = f"{registry}/{name}"
    image = images.import_tar(data, reference)
    moorage("push", reference)  # the CLI: the runtime's sessions keep sockets open here
    drop(image.id)
    return reference


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_a_pull_streams_per_layer_progress_and_a_push_sends_it_back(
    transactional_db: None, users: Any, local_registry: str, wait_for_job: Callable[..., Job]
) -> None:
    reference = pushed_image(local_registry, "dash/pulled:v1")
    RegistryEntry.objects.create(url=local_registry, domain=local_registry, insecure=True)
    job = job_of(
        client_for(users.operator).post(
            "/images/pull/", {"team": team_id(users), "reference": reference}
        )
    )
    frames = stream(users.operator, job)
    layers = [f["progress"] for f in frames if "progress" in f and "id" in f["progress"]]
    statuses = {event["status"] for event in layers}
    assert {"Pulling fs layer", "Pull complete"} <= statuses, statuses
    assert any(e["progressDetail"].get("total") for e in layers if e.get("progressDetail"))
    assert frames[-1]["end"]["state"] == "succeeded"
    job = wait_for_job(job)
    image_id = job.items.get().result
    assert ImageMirror.objects.get(engine_id=image_id).team_id == users.team.pk

    # A team admin pushes it under a new name: tagged first, then pushed.
    target = f"{local_registry}/dash/pushed:v2"
    job = job_of(client_for(users.admin).post(f"/images/{image_id}/push/", {"target": target}))
    frames = stream(users.admin, job)
    assert frames[-1]["end"] == {"state": "succeeded", "error": ""}, frames[-3:]
    digest = wait_for_job(job).items.get().result
    assert digest.startswith("sha256:")
    assert any("digest: " + digest in f["progress"]["status"] for f in frames if "progress" in f)
    assert AuditEntry.objects.get(job=job).result == AuditResult.SUCCEEDED


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_creating_a_container_pulls_a_missing_image_for_an_operator(
    transactional_db: None, users: Any, local_registry: str, wait_for_job: Callable[..., Job]
) -> None:
    reference = pushed_image(local_registry, "dash/for-create:v1")
    job = container_services.create(
        users.operator,
        users.team,
        {
            "image": reference,
            "name": "pulled-first",
            "network_mode": "none",
            "cmd": ("sleep", "60"),
        },
        start=False,
    )
    job = wait_for_job(job)
    try:
        assert job.state == JobState.SUCCEEDED, job.report()
        pulled = AuditEntry.objects.get(verb="image.pull", job=job)
        assert (pulled.result, pulled.username) == ("succeeded", "red-operator")
        assert images.resolve(reference)
    finally:
        cid = job.items.get().result
        if cid:
            from runtime import containers

            containers.remove(cid, force=True)
            ContainerMirror.objects.filter(engine_id=cid).delete()


@pytest.mark.usefixtures("celery_worker", "busybox_image")
def test_push_and_pull_use_the_entrys_credentials_and_wrong_ones_fail_clearly(
    transactional_db: None,
    users: Any,
    auth_registry: str,  # noqa: F811 - fixtures
    wait_for_job: Callable[..., Job],  # noqa: F811
) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("secret-app")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"app\n"))
    data.seek(0)
    reference = f"{auth_registry}/dash/private:v1"
    image = images.import_tar(data, reference)
    mirror.sync_images()
    mirror.claim(ImageMirror, users.team, engine_id=image.id)

    def push() -> Job:
        job = registry_services.push(users.admin, image.id, reference)
        return wait_for_job(job)

    # No entry: anonymous (the host's `moorage login` credentials are never borrowed).
    assert "credentials" in push().items.get().error.lower()
    entry = registry_services.save(
        users.site_admin, url=auth_registry, username="alice", password="wrong"
    )
    # The engine's sentence for refused credentials on push is terse ("...: 401").
    assert "401" in push().items.get().error
    registry_services.save(
        users.site_admin, url=auth_registry, username="alice", password="s3cret", entry=entry
    )
    assert push().state == JobState.SUCCEEDED

    drop(image.id)
    job = wait_for_job(registry_services.pull(users.operator, users.team, reference))
    assert job.state == JobState.SUCCEEDED, job.report()
    assert images.resolve(reference).id == image.id
