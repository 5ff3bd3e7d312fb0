"""The permission table, team scoping and the audit log, through the services."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from celery import Celery
from django.core.exceptions import PermissionDenied

from containers_app import permissions, tasks
from containers_app.models import (
    AuditEntry,
    AuditResult,
    ContainerMirror,
    Job,
    JobItem,
    Membership,
)
from containers_app.services import audit
from containers_app.services import containers as container_services
from containers_app.services import jobs as job_services
from runtime.errors import InvalidSpec, NotFound


def fake_container(name: str, team: object | None, state: str = "running") -> ContainerMirror:
    """A mirror row with no engine object behind it (host 'fake': the resync leaves it)."""
    return ContainerMirror.objects.create(
        engine_id=(name.encode().hex() * 64)[:64],
        name=name,
        image="busybox",
        state=state,
        created_at=datetime.now(UTC),
        team=team,
        host="fake",
    )


@pytest.mark.django_db
def test_every_verb_of_the_table_is_known_and_risky_options_name_no_role() -> None:
    verbs = {verb for verb, option in permissions.PERMISSIONS if option is None}
    assert {
        "view",
        "logs",
        "inspect",
        "start",
        "stop",
        "restart",
        "kill",
        "pause",
        "remove",
        "create",
        "exec",
        "attach",
        "commit",
        "image.tag",
        "image.remove",
        "image.import",
        "network.create",
        "volume.create",
    } <= verbs
    for (verb, option), roles in permissions.PERMISSIONS.items():
        if option is not None:
            assert option in permissions.RISKY_OPTIONS
            assert roles == frozenset(), f"{verb} with {option} must be site-admin only"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "verb", "allowed"),
    [
        ("viewer", "view", True),
        ("viewer", "logs", True),
        ("viewer", "kill", False),
        ("viewer", "exec", False),
        ("operator", "kill", True),
        ("operator", "exec", True),
        ("operator", "remove", True),
        ("admin", "kill", True),
        ("operator", "audit.view", False),
    ],
)
def test_team_roles_follow_the_table(users, role: str, verb: str, allowed: bool) -> None:
    user = getattr(users, role)
    row = fake_container("web", users.team)
    assert permissions.can(user, verb, row) is allowed


@pytest.mark.django_db
def test_viewer_who_forges_a_kill_is_refused_and_nothing_happens(users) -> None:
    row = fake_container("web", users.team)
    with pytest.raises(PermissionDenied, match="viewer"):
        container_services.bulk(users.viewer, "kill", [row.engine_id], remote_addr="10.1.2.3")
    assert not Job.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.verb, entry.result, entry.remote_addr) == (
        "red-viewer",
        "kill",
        AuditResult.DENIED,
        "10.1.2.3",
    )


@pytest.mark.django_db
def test_one_forbidden_target_refuses_the_whole_bulk_request(users) -> None:
    mine = fake_container("mine", users.other_team)
    global_one = fake_container("global", None)
    with pytest.raises(PermissionDenied):
        container_services.bulk(users.outsider, "stop", [mine, global_one])
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_outsider_asking_for_another_teams_container_gets_not_found(users) -> None:
    row = fake_container("secret", users.team)
    for ref in (row.engine_id, row.engine_id[:12], "secret"):
        with pytest.raises(NotFound, match="No such container"):
            container_services.get(users.outsider, ref)
        with pytest.raises(NotFound):
            container_services.bulk(users.outsider, "kill", [ref])
    with pytest.raises(NotFound):
        permissions.check(users.outsider, "view", row)
    assert not container_services.search(users.outsider).filter(pk=row.pk).exists()
    assert container_services.search(users.viewer).filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_global_objects_are_readable_by_all_and_changed_by_site_admins_only(users) -> None:
    row = fake_container("shared", None)
    assert permissions.can(users.outsider, "view", row)
    assert not permissions.can(users.admin, "kill", row)
    assert permissions.can(users.site_admin, "kill", row)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "spec"),
    [
        ("privileged", {"privileged": True}),
        ("cap_add", {"cap_add": ("NET_ADMIN",)}),
        ("devices", {"devices": ("/dev/fuse",)}),
        ("host_network", {"network_mode": "host"}),
        ("host_pid", {"pid_mode": "host"}),
        ("host_ipc", {"ipc_mode": "host"}),
        ("bind_mount", {"volumes": ("/etc:/host-etc",)}),
        ("bind_mount", {"mounts": ("type=bind,source=/,target=/host",)}),
    ],
)
def test_risky_options_are_refused_to_team_admins(users, option: str, spec: dict) -> None:
    request = {"image": "busybox", "network_mode": "none", **spec}
    assert option in container_services.risky_options(container_services.ContainerSpec(**request))
    with pytest.raises(PermissionDenied, match="Only site administrators"):
        container_services.create(users.admin, users.team, request)
    assert not Job.objects.exists()
    assert AuditEntry.objects.get().result == AuditResult.DENIED
    assert permissions.can(users.site_admin, "create", users.team, [option])


@pytest.mark.django_db
def test_viewer_cannot_create_and_nobody_but_site_admins_makes_global_containers(users) -> None:
    request = {"image": "busybox", "network_mode": "none"}
    with pytest.raises(PermissionDenied):
        container_services.create(users.viewer, users.team, request)
    with pytest.raises(PermissionDenied, match="global"):
        container_services.create(users.admin, None, request)
    with pytest.raises(PermissionDenied):
        container_services.create(users.outsider, users.team, request)


@pytest.mark.django_db
def test_bad_create_input_is_refused_before_anything_is_queued(users) -> None:
    with pytest.raises(InvalidSpec, match="Minimum memory"):
        container_services.create(users.operator, users.team, {"image": "busybox", "memory": 1024})
    with pytest.raises(InvalidSpec, match="Unknown container option"):
        container_services.create(
            users.operator, users.team, {"image": "busybox", "flux_capacitor": True}
        )
    with pytest.raises(InvalidSpec):
        container_services.create(users.operator, users.team, {"image": "busybox"}, count=0)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_operator_job_is_queued_with_items_and_audited(
    users, django_capture_on_commit_callbacks
) -> None:
    rows = [fake_container(f"w{n}", users.team) for n in range(3)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = container_services.bulk(
            users.operator, "remove", rows, {"force": "on"}, remote_addr="192.0.2.1"
        )
    assert len(callbacks) == 1  # the task is sent only once the rows are committed
    assert (job.verb, job.total, job.team, job.options) == (
        "remove",
        3,
        users.team,
        {"force": True, "volumes": False},
    )
    assert list(job.items.values_list("label", flat=True)) == ["w0", "w1", "w2"]
    entry = AuditEntry.objects.get(job=job)
    assert entry.result == AuditResult.ACCEPTED and entry.targets == ["w0", "w1", "w2"]


@pytest.mark.django_db
def test_jobs_and_audit_entries_are_scoped_like_the_objects(users) -> None:
    job = job_services.start(
        users.operator, "kill", [job_services.Item("x" * 64, "x")], team=users.team
    )
    assert job_services.search(users.viewer).filter(pk=job.pk).exists()
    with pytest.raises(NotFound):
        job_services.get(users.outsider, job.pk)
    with pytest.raises(PermissionDenied):
        job_services.cancel(users.viewer, job.pk)
    assert audit.search(users.admin).filter(job=job).exists()  # team admin
    assert not audit.search(users.outsider).filter(job=job).exists()
    assert audit.search(users.operator, verb="kill").count() == 1  # their own
    assert audit.search(users.site_admin, q="x").exists()


@pytest.mark.django_db
def test_cancelling_a_job_the_worker_has_not_begun_ends_it_at_once(users) -> None:
    job = job_services.start(
        users.operator, "kill", [job_services.Item("y" * 64, "y")], team=users.team
    )
    job = job_services.cancel(users.operator, job)
    assert job.state == "cancelled" and job.done == 1
    assert list(job.items.values_list("state", flat=True)) == ["cancelled"]


@pytest.mark.django_db
def test_a_membership_change_takes_effect_at_the_next_check(users) -> None:
    row = fake_container("web", users.team)
    assert not permissions.can(users.viewer, "kill", row)
    Membership.objects.filter(user=users.viewer).update(role="operator")
    assert permissions.can(users.viewer, "kill", row)


@pytest.mark.django_db
def test_a_job_fails_at_once_and_says_why_when_the_broker_is_down(users) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens once the socket closes
    app = Celery("broker-down", broker=f"redis://127.0.0.1:{dead_port}/0", set_as_current=False)
    app.conf.task_publish_retry_policy = {"max_retries": 0}

    @app.task(name="containers_app.tasks.run_job", shared=False)  # this app only
    def run_job(job_id: int) -> None:
        raise AssertionError("never runs: nothing can deliver it")

    job = job_services.start(
        users.operator, "kill", [job_services.Item("z" * 64, "z")], team=users.team
    )

    job_services._enqueue(run_job, job.pk)

    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == ("failed", 1, 1)
    assert "task queue is unreachable" in job.items.get().error
    assert AuditEntry.objects.get(job=job).result == AuditResult.FAILED


@pytest.mark.django_db
def test_a_restarted_worker_ends_the_jobs_it_was_running(users) -> None:
    job = job_services.start(
        users.operator,
        "stop",
        [
            job_services.Item("a" * 64, "a"),
            job_services.Item("b" * 64, "b"),
            job_services.Item("c" * 64, "c"),
        ],
        team=users.team,
    )
    Job.objects.filter(pk=job.pk).update(state="running", done=1)
    states = ["succeeded", "running", "pending"]
    for item, state in zip(job.items.all(), states, strict=True):
        JobItem.objects.filter(pk=item.pk).update(state=state)

    tasks.fail_interrupted_jobs()

    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == ("failed", 3, 1)
    assert list(job.items.values_list("state", flat=True)) == ["succeeded", "failed", "cancelled"]
    assert "worker stopped" in job.items.get(position=1).error
    assert AuditEntry.objects.get(job=job).result == AuditResult.FAILED
