"""Jobs: one user request, one row, one Celery task; one item per target.

``start`` is what the other services call once they have checked permissions: it writes
the Job and its items, the audit entry, and enqueues ``tasks.run_job`` when the
transaction commits (so the worker never looks for a row that is not there yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError

from containers_app import permissions
from containers_app.models import (
    AuditEntry,
    AuditResult,
    ItemState,
    Job,
    JobItem,
    JobState,
    Team,
)
from containers_app.services import audit
from runtime.errors import NotFound


@dataclass(frozen=True)
class Item:
    """What a service hands ``start`` for one target."""

    target: str  # engine id, or a reference for objects still to be made
    label: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def common_team(teams: Sequence[Team | None]) -> Team | None:
    """The team all targets share, else None (a job across teams is its user's alone)."""
    ids = {t.pk if t else None for t in teams}
    return teams[0] if len(ids) == 1 and teams else None


def start(
    user: Any,
    verb: str,
    items: Sequence[Item],
    *,
    team: Team | None,
    options: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> Job:
    """Create the job, audit it as accepted and enqueue it on commit."""
    from containers_app import tasks  # tasks imports services' siblings; import late

    with transaction.atomic():
        job = Job.objects.create(
            verb=verb, options=options or {}, user=user, team=team, total=len(items)
        )
        JobItem.objects.bulk_create(
            JobItem(job=job, position=n, target=i.target, label=i.label[:255], options=i.options)
            for n, i in enumerate(items)
        )
        audit.record(
            user,
            verb,
            [i.label or i.target for i in items],
            AuditResult.ACCEPTED,
            remote_addr=remote_addr,
            options=options,
            team=team,
            job=job,
        )
        transaction.on_commit(lambda: _enqueue(tasks.run_job, job.pk))
    return job


def _enqueue(task: Any, job_id: int) -> None:
    """Send the job to the worker; if the broker is down, the job fails at once and
    says so, instead of waiting forever in 'queued'."""
    try:
        task.delay(job_id)
    except OperationalError as e:
        reason = f"The task queue is unreachable ({e}); nothing was done."
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.FAILED, finished_at=timezone.now()
        )
        items = JobItem.objects.filter(job_id=job_id, state=ItemState.PENDING)
        count = items.update(state=ItemState.FAILED, error=reason)
        Job.objects.filter(pk=job_id).update(done=count, failed=count)
        AuditEntry.objects.filter(job_id=job_id, result=AuditResult.ACCEPTED).update(
            result=AuditResult.FAILED, detail=reason
        )


def search(user: Any, state: str = "", verb: str = "") -> QuerySet[Job]:
    jobs = permissions.visible(user, Job.objects.all()).select_related("user", "team")
    if state:
        jobs = jobs.filter(state=state)
    if verb:
        jobs = jobs.filter(verb=verb)
    return jobs


def get(user: Any, pk: int | str) -> Job:
    try:
        job = Job.objects.select_related("user", "team").get(pk=int(pk))
    except (Job.DoesNotExist, ValueError):
        raise NotFound(f"No such job: {pk}") from None
    permissions.check(user, "job.view", job)
    return job


def cancel(user: Any, job: Job | int | str, remote_addr: str | None = None) -> Job:
    """Ask the worker to stop before the next item; a job not yet begun ends at once."""
    if not isinstance(job, Job):
        job = get(user, job)
    try:
        permissions.check(user, "job.cancel", job)
    except permissions.PermissionDenied:
        audit.record(
            user,
            "job.cancel",
            [f"job {job.pk}"],
            AuditResult.DENIED,
            remote_addr=remote_addr,
            team=job.team,
            job=job,
        )
        raise
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        # The worker has not picked it up: nothing will ever run, so finish it here.
        if Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
            state=JobState.CANCELLED, finished_at=timezone.now()
        ):
            cancelled = job.items.filter(state=ItemState.PENDING).update(state=ItemState.CANCELLED)
            Job.objects.filter(pk=job.pk).update(done=cancelled)
            AuditEntry.objects.filter(job=job, result=AuditResult.ACCEPTED).update(
                result=AuditResult.CANCELLED, detail="cancelled before it began"
            )
        audit.record(
            user,
            "job.cancel",
            [f"job {job.pk}"],
            AuditResult.SUCCEEDED,
            remote_addr=remote_addr,
            team=job.team,
            job=job,
        )
    job.refresh_from_db()
    return job
