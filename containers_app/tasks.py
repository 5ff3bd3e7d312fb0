"""Celery tasks: carry out Jobs item by item, and keep the mirror in sync.

``run_job(job_id)`` is the one task for every job. Each item calls one runtime function
(the ACTIONS table below), records its result or its error and goes on with the next
one: a failed item never stops the rest; a cancel stops before the next item. After each
item the mirror row of the object it touched is refreshed, so pages show the outcome at
once. ``sync_mirror`` runs from beat every second.

Tasks take ids, never objects, and run in the worker (root, single-threaded prefork
children: the engine forks container monitors from here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from containers_app import mirror
from containers_app.consumers import jobs as job_stream
from containers_app.models import (
    AuditEntry,
    AuditResult,
    ImageMirror,
    ItemState,
    Job,
    JobItem,
    JobState,
)
from containers_app.services import builds, registries
from runtime import containers, images
from runtime import volumes as engine_volumes
from runtime.errors import MoorageError
from runtime.images import commit as image_commit
from runtime.images import removal as image_removal
from runtime.network import verbs as network_verbs
from runtime.spec import ContainerSpec

log = logging.getLogger(__name__)


# --- one function per job verb: each calls one runtime function --------------------


def _start(item: JobItem, options: dict[str, Any]) -> str:
    return containers.start(item.target)


def _stop(item: JobItem, options: dict[str, Any]) -> str:
    return containers.stop(item.target, options.get("timeout"))


def _restart(item: JobItem, options: dict[str, Any]) -> str:
    return containers.restart(item.target, options.get("timeout"))


def _kill(item: JobItem, options: dict[str, Any]) -> str:
    return containers.kill(item.target, options.get("signal", "KILL"))


def _pause(item: JobItem, options: dict[str, Any]) -> str:
    return containers.pause(item.target)


def _unpause(item: JobItem, options: dict[str, Any]) -> str:
    return containers.unpause(item.target)


def _remove(item: JobItem, options: dict[str, Any]) -> str:
    return containers.remove(
        item.target, force=bool(options.get("force")), volumes=bool(options.get("volumes"))
    )


def _rename(item: JobItem, options: dict[str, Any]) -> str:
    containers.rename(item.target, item.options["name"])
    return item.options["name"]


def _create(item: JobItem, options: dict[str, Any]) -> str:
    spec = ContainerSpec.from_json(item.options["spec"])
    registries.pull_if_missing(item.job, spec.image)  # when the user may pull
    cid = containers.create(spec)
    item.result = cid  # recorded even if the start below fails
    if options.get("start", True):
        containers.start(cid)
    return cid


def _commit(item: JobItem, options: dict[str, Any]) -> str:
    made = image_commit.commit(
        item.target,
        item.options.get("reference") or None,
        message=item.options.get("message", ""),
        author=item.options.get("author", ""),
    )
    return str(made.id)


def _image_tag(item: JobItem, options: dict[str, Any]) -> str:
    images.tag(item.target, item.options["reference"])
    return item.options["reference"]


def _image_remove(item: JobItem, options: dict[str, Any]) -> str:
    records = image_removal.remove(item.target, force=bool(options.get("force")))
    return "; ".join(str(r) for r in records)


def _image_import(item: JobItem, options: dict[str, Any]) -> str:
    path = item.options["path"]
    try:
        with open(path, "rb") as source:
            image = images.import_tar(
                source,
                item.options.get("reference"),
                message=item.options.get("message", ""),
                trusted=bool(item.options.get("trusted")),
            )
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return image.id


def _network_create(item: JobItem, options: dict[str, Any]) -> str:
    return str(network_verbs.create(**item.options).id)


def _network_remove(item: JobItem, options: dict[str, Any]) -> str:
    network_verbs.remove(item.target)
    return item.target


def _volume_create(item: JobItem, options: dict[str, Any]) -> str:
    return str(engine_volumes.create(**item.options).name)


def _volume_remove(item: JobItem, options: dict[str, Any]) -> str:
    engine_volumes.remove(item.target, force=bool(options.get("force")))
    return item.target


ACTIONS: dict[str, Callable[[JobItem, dict[str, Any]], str]] = {
    "start": _start,
    "stop": _stop,
    "restart": _restart,
    "kill": _kill,
    "pause": _pause,
    "unpause": _unpause,
    "remove": _remove,
    "rename": _rename,
    "create": _create,
    "commit": _commit,
    "image.tag": _image_tag,
    "image.remove": _image_remove,
    "image.import": _image_import,
    "network.create": _network_create,
    "network.remove": _network_remove,
    "volume.create": _volume_create,
    "volume.remove": _volume_remove,
    "image.build": builds.run_build,
    "image.pull": registries.run_pull,
    "image.push": registries.run_push,
}


def _resync(job: Job, item: JobItem) -> None:
    """Refresh the mirror rows the item touched, and give new objects to the job's team."""
    if job.verb in (
        "create",
        "start",
        "stop",
        "restart",
        "kill",
        "pause",
        "unpause",
        "remove",
        "rename",
        "commit",
    ):
        cid = item.result if job.verb == "create" else item.target
        # Side-by-side items leave their rows to one bulk resync at the job's end
        # (_resync_side_by_side): a hundred single-row syncs, each a transaction and a
        # push, cost more than the engine work. Items still report progress one by one.
        if cid and job.verb not in PARALLEL_VERBS:
            mirror.sync_container(cid)
    if job.verb in ("image.tag", "image.remove", "image.import", "commit"):
        mirror.sync_images()
        if job.verb in ("image.import", "commit") and item.state == ItemState.SUCCEEDED:
            mirror.claim(ImageMirror, job.team, engine_id=item.result)
    if job.verb.startswith("network."):
        mirror.sync_networks()
    if job.verb.startswith("volume."):
        mirror.sync_volumes()


def run_item(job: Job, item: JobItem) -> None:
    JobItem.objects.filter(pk=item.pk).update(state=ItemState.RUNNING, started_at=timezone.now())
    try:
        item.result = ACTIONS[job.verb](item, job.options) or ""
        item.state = ItemState.SUCCEEDED
    except MoorageError as e:
        item.state, item.error = ItemState.FAILED, str(e) or type(e).__name__
    except SoftTimeLimitExceeded:
        item.state, item.error = ItemState.FAILED, "The job ran out of time."
        raise
    except Exception as e:  # noqa: BLE001 - an engine bug fails the item, not the job
        log.exception("job %s item %s (%s) crashed", job.pk, item.position, item.target)
        item.state, item.error = ItemState.FAILED, f"Internal error: {type(e).__name__}: {e}"
    finally:
        item.finished_at = timezone.now()
        failed = 1 if item.state == ItemState.FAILED else 0
        with transaction.atomic():  # one commit: the item and the job's count agree
            item.save(update_fields=["state", "result", "error", "finished_at"])
            Job.objects.filter(pk=job.pk).update(done=F("done") + 1, failed=F("failed") + failed)
        job_stream.item_finished(job.pk, item)  # the job page's row, live (issue 6)
    try:
        _resync(job, item)
    except MoorageError as e:  # the action happened; a stale row heals at the next resync
        log.warning("job %s: resync after %s failed: %s", job.pk, item.target, e)


# Container verbs whose items do not depend on one another run this many at a time, so
# a bulk kill of a hundred takes about as long as its slowest few, as with the docker
# client, instead of the sum. Engine calls are safe in threads: they lock per container
# and start monitors by exec, never by fork, from a threaded process.
PARALLEL_VERBS = frozenset({"start", "stop", "restart", "kill", "pause", "unpause", "remove"})
PARALLEL_ITEMS = 8


def _resync_side_by_side(job: Job) -> None:
    """One resync of every container row (as beat's) after a side-by-side job."""
    try:
        mirror.sync_containers()
    except MoorageError as e:  # the actions happened; stale rows heal at the next resync
        log.warning("job %s: resync after the job failed: %s", job.pk, e)


def _run_item_unless_cancelled(job: Job, item: JobItem) -> None:
    try:
        if not Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            run_item(job, item)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()  # this thread's connections only


@shared_task(
    name="containers_app.tasks.run_job",
    acks_late=False,
    soft_time_limit=4 * 3600,
    time_limit=4 * 3600 + 60,
)
def run_job(job_id: int) -> str:
    """Run the items of job ``job_id`` (in order, or side by side for PARALLEL_VERBS);
    return its final state."""
    claimed = Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
        state=JobState.RUNNING, started_at=timezone.now()
    )
    if not claimed:  # cancelled before it began, or another worker has it
        return Job.objects.filter(pk=job_id).values_list("state", flat=True).first() or ""
    job = Job.objects.get(pk=job_id)
    job_stream.job_changed(job_id, JobState.RUNNING, job.user_id, job.team_id)
    pending = list(job.items.filter(state=ItemState.PENDING).order_by("position"))
    try:
        if job.verb in PARALLEL_VERBS:
            with ThreadPoolExecutor(PARALLEL_ITEMS, thread_name_prefix=f"job{job_id}") as pool:
                for future in [pool.submit(_run_item_unless_cancelled, job, i) for i in pending]:
                    future.result()
        else:
            for item in pending:
                _run_item_unless_cancelled(job, item)
    finally:
        if job.verb in PARALLEL_VERBS:
            _resync_side_by_side(job)  # before the job shows finished: its rows are fresh
        job.refresh_from_db()
        cancelled = job.items.filter(state__in=[ItemState.PENDING, ItemState.RUNNING]).update(
            state=ItemState.CANCELLED, finished_at=timezone.now()
        )
        if job.cancel_requested and cancelled:
            final = JobState.CANCELLED
        elif job.items.filter(state__in=[ItemState.FAILED, ItemState.CANCELLED]).exists():
            final = JobState.FAILED
        else:
            final = JobState.SUCCEEDED
        # The audit entry first: whoever sees the job finished must find it final too.
        _audit_outcome(job, final)
        Job.objects.filter(pk=job_id).update(
            state=final, finished_at=timezone.now(), done=F("done") + cancelled
        )
        job_stream.job_changed(job_id, final, job.user_id, job.team_id)
    return final


def _audit_outcome(job: Job, final: str) -> None:
    """The request's audit entry ends with the job's outcome and each failure's reason."""
    failures = [
        f"{i.label or i.target}: {i.error}" for i in job.items.filter(state=ItemState.FAILED)
    ]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(job.report()["counts"].items()))
    detail = counts + ("; " + "; ".join(failures) if failures else "")
    AuditEntry.objects.filter(job=job, result=AuditResult.ACCEPTED).update(
        result={
            JobState.SUCCEEDED: AuditResult.SUCCEEDED,
            JobState.FAILED: AuditResult.FAILED,
            JobState.CANCELLED: AuditResult.CANCELLED,
        }[final],
        detail=detail[:2000],
    )


def fail_interrupted_jobs() -> None:
    """A worker that starts finds jobs it was running when it stopped: end them, with
    the reason, instead of leaving them 'running' forever. (One worker per host, as
    DESIGN.md says; jobs still queued in Redis run normally.)"""
    reason = "The worker stopped while this item ran; check the object's state."
    for job in Job.objects.filter(state=JobState.RUNNING):
        items = job.items.filter(state__in=[ItemState.RUNNING, ItemState.PENDING])
        failed = items.filter(state=ItemState.RUNNING).update(
            state=ItemState.FAILED, error=reason, finished_at=timezone.now()
        )
        cancelled = items.filter(state=ItemState.PENDING).update(
            state=ItemState.CANCELLED, finished_at=timezone.now()
        )
        Job.objects.filter(pk=job.pk).update(
            state=JobState.FAILED,
            finished_at=timezone.now(),
            done=F("done") + failed + cancelled,
            failed=F("failed") + failed,
        )
        _audit_outcome(job, JobState.FAILED)


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    fail_interrupted_jobs()
    # This runs in the worker's parent; pool processes forked later must not share
    # its database connection.
    connections.close_all()


@contextlib.contextmanager
def _single(name: str, timeout: int) -> Iterator[bool]:
    """True inside if no other worker holds ``name``: two resyncs never overlap."""
    lock = redis.Redis.from_url(settings.REDIS_URL).lock(f"moorage:{name}", timeout=timeout)
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()


@shared_task(name="containers_app.tasks.sync_mirror", soft_time_limit=60, time_limit=90)
def sync_mirror() -> dict[str, int]:
    """Full resync of the mirror (beat, every second)."""
    with _single("sync-mirror", timeout=90) as mine:
        if not mine:
            return {}
        return mirror.sync_all()
