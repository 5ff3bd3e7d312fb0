"""Bulk jobs through a real Redis and Celery worker on real busybox containers."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable

import pytest

from containers_app import tasks
from containers_app.models import (
    AuditEntry,
    AuditResult,
    ContainerMirror,
    EngineEvent,
    ImageMirror,
    ItemState,
    Job,
    JobState,
)
from containers_app.services import containers as container_services
from containers_app.services import images as image_services
from containers_app.services import jobs as job_services
from runtime import containers, images
from runtime.errors import NotFound

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def engine_state(cid: str) -> str:
    return containers.reconcile(cid).status


@pytest.mark.usefixtures("celery_worker")
def test_bulk_kill_of_three_containers_is_one_job_with_an_item_each(
    transactional_db: None, users, engine_containers, wait_for_job: Callable[..., Job]
) -> None:
    cids = [engine_containers.run(f"web-{n}", team=users.team) for n in range(3)]

    job = container_services.bulk(users.operator, "kill", cids, remote_addr="10.0.0.7")
    job = wait_for_job(job)

    assert job.state == JobState.SUCCEEDED
    assert (job.total, job.done, job.failed, job.progress) == (3, 3, 0, 100)
    assert [i.state for i in job.items.all()] == [ItemState.SUCCEEDED] * 3
    assert [i.label for i in job.items.all()] == ["web-0", "web-1", "web-2"]
    assert all(engine_state(cid) == "exited" for cid in cids)
    assert set(
        ContainerMirror.objects.filter(engine_id__in=cids).values_list("state", flat=True)
    ) == {"exited"}
    assert job.report() == {
        "state": "succeeded",
        "total": 3,
        "counts": {"succeeded": 3},
        "failures": [],
    }
    entry = AuditEntry.objects.get(job=job)
    assert (entry.username, entry.verb, entry.result, entry.remote_addr) == (
        "red-operator",
        "kill",
        AuditResult.SUCCEEDED,
        "10.0.0.7",
    )
    assert entry.targets == ["web-0", "web-1", "web-2"]
    assert entry.detail == "3 succeeded"


@pytest.mark.usefixtures("celery_worker")
def test_bulk_kill_reports_the_one_that_failed_and_finishes_the_rest(
    transactional_db: None, users, engine_containers, wait_for_job: Callable[..., Job]
) -> None:
    """Issue 5: a bulk job whose items partly fail reports each failure and finishes the rest."""
    first = engine_containers.run("alive-1", team=users.team)
    done = engine_containers.run("done", "true", team=users.team)
    last = engine_containers.run("alive-2", team=users.team)
    containers.wait(done)

    job = wait_for_job(container_services.bulk(users.operator, "kill", [first, done, last]))

    assert job.state == JobState.FAILED
    assert (job.done, job.failed) == (3, 1)
    items = {i.label: i for i in job.items.all()}
    assert items["alive-1"].state == items["alive-2"].state == ItemState.SUCCEEDED
    assert items["done"].state == ItemState.FAILED
    assert "is not running" in items["done"].error
    assert engine_state(first) == engine_state(last) == "exited"
    report = job.report()
    assert report["failures"] == [{"target": "done", "error": items["done"].error}]
    assert report["counts"] == {"succeeded": 2, "failed": 1}
    entry = AuditEntry.objects.get(job=job, verb="kill")
    assert entry.result == AuditResult.FAILED
    assert entry.detail == f"1 failed, 2 succeeded; done: {items['done'].error}"


@pytest.mark.usefixtures("celery_worker")
def test_cancel_stops_a_bulk_job_before_its_next_item(
    transactional_db: None, users, engine_containers, wait_for_job: Callable[..., Job]
) -> None:
    # busybox sleep as pid 1 ignores SIGTERM, so each stop waits out its 2 s timeout;
    # more items than the worker runs at a time, so that some are still waiting.
    count = tasks.PARALLEL_ITEMS + 4
    cids = [engine_containers.run(f"slow-{n}", team=users.team) for n in range(count)]
    job = container_services.bulk(users.operator, "stop", cids, {"timeout": 2})
    deadline = time.monotonic() + 30
    while not job.items.filter(state=ItemState.RUNNING).exists():
        assert time.monotonic() < deadline, "the worker never began the job"
        time.sleep(0.05)

    job_services.cancel(users.operator, job.pk)
    job = wait_for_job(job)

    report = job.report()
    assert job.state == JobState.CANCELLED, report
    states = list(job.items.values_list("state", flat=True))
    assert states[0] == ItemState.SUCCEEDED, states
    assert states[-1] == ItemState.CANCELLED, states
    assert job.done == job.total == count
    untouched = [cid for cid, s in zip(cids, states, strict=True) if s == ItemState.CANCELLED]
    assert all(engine_state(cid) == "running" for cid in untouched)
    assert AuditEntry.objects.filter(
        verb="job.cancel", job=job, result=AuditResult.SUCCEEDED
    ).exists()
    assert AuditEntry.objects.get(verb="stop", job=job).result == AuditResult.CANCELLED


@pytest.mark.usefixtures("celery_worker")
def test_create_runs_count_copies_that_belong_to_the_team(
    transactional_db: None, users, engine_containers, wait_for_job: Callable[..., Job]
) -> None:
    spec = {"image": "busybox", "name": "lab", "cmd": ("sleep", "600"), "network_mode": "none"}
    job = wait_for_job(container_services.create(users.operator, users.team, spec, count=2))

    assert job.state == JobState.SUCCEEDED, job.report()
    rows = ContainerMirror.objects.filter(name__in=["lab-1", "lab-2"])
    assert sorted(r.name for r in rows) == ["lab-1", "lab-2"]
    assert {r.team_id for r in rows} == {users.team.pk}
    assert {r.state for r in rows} == {"running"}
    assert all(engine_state(r.engine_id) == "running" for r in rows)


@pytest.mark.usefixtures("celery_worker")
def test_mirror_shows_what_the_cli_does_within_two_seconds(
    transactional_db: None, users, engine_containers
) -> None:
    def within(seconds: float, condition: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    cid = engine_containers.cli(
        "run", "-d", "--network", "none", "--name", "from-cli", "busybox", "sleep", "600"
    ).strip()
    assert within(
        2, lambda: ContainerMirror.objects.filter(engine_id=cid, state="running").exists()
    )
    row = ContainerMirror.objects.get(engine_id=cid)
    assert (row.name, row.team_id) == ("from-cli", None)  # made outside: global

    engine_containers.cli("kill", "from-cli")
    assert within(2, lambda: ContainerMirror.objects.get(engine_id=cid).state == "exited")

    engine_containers.cli("rm", "from-cli")
    assert within(2, lambda: not ContainerMirror.objects.filter(engine_id=cid).exists())
    actions = list(
        EngineEvent.objects.filter(actor_id=cid)
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions[0] == "create" and actions[-1] == "destroy" and "die" in actions


def rootfs_tarball(marker: str, path: str = "etc/marker", mode: int = 0o644) -> io.BytesIO:
    """A one-file rootfs; the marker makes each image's layer (and id) its own."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo(path)
        payload = marker.encode()
        info.size, info.mode = len(payload), mode
        tar.addfile(info, io.BytesIO(payload))
    data.seek(0)
    data.name = f"{marker}.tar"
    return data


@pytest.mark.usefixtures("celery_worker")
def test_bulk_tag_gives_two_imported_images_a_prefixed_name(
    transactional_db: None, users, wait_for_job: Callable[..., Job]
) -> None:
    imported = []
    for name in ("lab/one:1", "lab/two:1"):
        job = wait_for_job(
            image_services.import_tarball(
                users.operator, users.team, rootfs_tarball(name), reference=name
            )
        )
        assert job.state == JobState.SUCCEEDED, job.report()
        imported.append(ImageMirror.objects.get(engine_id=job.items.get().result))
    assert {i.team_id for i in imported} == {users.team.pk}

    job = wait_for_job(
        image_services.bulk_tag(users.operator, imported, prefix="registry.local:5000/red")
    )

    assert job.state == JobState.SUCCEEDED, job.report()
    assert sorted(job.items.values_list("result", flat=True)) == [
        "registry.local:5000/red/lab/one:1",
        "registry.local:5000/red/lab/two:1",
    ]
    for image in imported:
        image.refresh_from_db()
        new = [t for t in image.repo_tags if t.startswith("registry.local:5000/red/")]
        assert len(new) == 1
        assert images.resolve(new[0]).id == image.engine_id
    assert AuditEntry.objects.filter(verb="image.tag", job=job, username="red-operator").exists()
    assert AuditEntry.objects.filter(verb="image.import").count() == 2


@pytest.mark.usefixtures("celery_worker")
def test_bulk_tag_with_one_tag_keeps_each_repository(
    transactional_db: None, users, wait_for_job: Callable[..., Job]
) -> None:
    made = []
    for name in ("tagme/a:1", "tagme/b:1"):
        job = wait_for_job(
            image_services.import_tarball(
                users.admin, users.team, rootfs_tarball(name), reference=name
            )
        )
        made.append(job.items.get().result)

    job = wait_for_job(image_services.bulk_tag(users.admin, made, tag="v2"))

    assert job.state == JobState.SUCCEEDED, job.report()
    assert images.resolve("tagme/a:v2").id == made[0]
    assert images.resolve("tagme/b:v2").id == made[1]


@pytest.mark.usefixtures("celery_worker")
def test_a_container_committed_to_an_image_belongs_to_its_team_and_can_be_removed(
    transactional_db: None, users, engine_containers, wait_for_job: Callable[..., Job]
) -> None:
    cid = engine_containers.run("maker", "sh", "-c", "echo hi > /made; sleep 600", team=users.team)
    deadline = time.monotonic() + 10
    while ("A", "/made") not in container_services.diff(users.viewer, cid):
        assert time.monotonic() < deadline, container_services.diff(users.viewer, cid)
        time.sleep(0.1)

    job = wait_for_job(container_services.commit(users.operator, "maker", "red/snap:1"))
    assert job.state == JobState.SUCCEEDED, job.report()
    image = ImageMirror.objects.get(engine_id=job.items.get().result)
    assert image.team == users.team and "red/snap:1" in image.repo_tags
    with pytest.raises(NotFound):
        image_services.get(users.outsider, "red/snap:1")

    job = wait_for_job(image_services.bulk_remove(users.operator, ["red/snap:1"]))
    assert job.state == JobState.SUCCEEDED, job.report()
    assert "Untagged: red/snap:1" in job.items.get().result
    assert not ImageMirror.objects.filter(pk=image.pk).exists()
    with pytest.raises(NotFound):
        images.resolve("red/snap:1")


@pytest.mark.usefixtures("celery_worker")
def test_an_imported_setuid_file_keeps_its_bit_only_when_a_site_admin_uploaded_it(
    transactional_db: None, users, wait_for_job: Callable[..., Job]
) -> None:
    modes = {}
    for who, ref in ((users.operator, "suid/operator:1"), (users.site_admin, "suid/admin:1")):
        setuid_program = rootfs_tarball(ref, "bin/escalate", 0o4755)
        job = wait_for_job(
            image_services.import_tarball(who, users.team, setuid_program, reference=ref)
        )
        assert job.state == JobState.SUCCEEDED, job.report()
        (layer,) = images.resolve(ref).layer_dirs()
        modes[ref] = (layer / "bin" / "escalate").stat().st_mode & 0o7777
    assert modes == {"suid/operator:1": 0o755, "suid/admin:1": 0o4755}
