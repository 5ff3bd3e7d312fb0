"""The dashboard's tables: teams and roles, mirrors of engine objects, jobs, audit, events.

The engine's state on disk is the source of truth; the mirror rows (``*Mirror``) are a
cache that makes filtering, sorting, paging and permission checks cheap. Only
``containers_app.mirror`` writes them (after every task and from a once-a-second
resync). Every mirrored object belongs to a team or, with ``team`` null, is global.

A ``Job`` is one user request carried out by the Celery worker: one ``JobItem`` per
target (container, image ...), each with its own state, result and error, so a bulk
action reports what failed and why and finishes the rest. Single actions are jobs with
one item. ``AuditEntry`` records every mutating request, allowed or refused.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """Roles per team, weakest first (``permissions.RANK`` orders them)."""

    VIEWER = "viewer", "viewer"
    OPERATOR = "operator", "operator"
    ADMIN = "admin", "admin"


class Team(models.Model):
    name = models.CharField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="one_role_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.team}"


class Owned(models.Model):
    """A mirrored engine object: owned by a team, or global when ``team`` is null."""

    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    host = models.CharField(max_length=120, default="local")
    labels = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class ContainerState(models.TextChoices):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"
    REMOVING = "removing"


class ContainerMirror(Owned):
    engine_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, db_index=True)
    image = models.CharField(max_length=255, db_index=True)  # the reference as given
    image_id = models.CharField(max_length=71, blank=True)  # sha256:<64 hex>
    command = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=ContainerState.choices, db_index=True)
    exit_code = models.IntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ports = models.CharField(max_length=500, blank=True)
    pid = models.IntegerField(default=0)
    restart_count = models.IntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "state"])]

    def __str__(self) -> str:
        return self.name

    @property
    def short_id(self) -> str:
        return self.engine_id[:12]

    @property
    def is_active(self) -> bool:
        return self.state in {
            ContainerState.RUNNING,
            ContainerState.PAUSED,
            ContainerState.RESTARTING,
        }


class ImageMirror(Owned):
    engine_id = models.CharField(max_length=71, unique=True)  # sha256:<64 hex>
    repo_tags = models.JSONField(default=list, blank=True)  # ["busybox:latest"]
    tags_text = models.TextField(blank=True)  # the tags joined by spaces, for search
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.repo_tags[0] if self.repo_tags else self.short_id

    @property
    def short_id(self) -> str:
        return self.engine_id.removeprefix("sha256:")[:12]


class NetworkMirror(Owned):
    engine_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, db_index=True)
    driver = models.CharField(max_length=40, blank=True)
    subnet = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)  # the engine's inspect document

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VolumeMirror(Owned):
    name = models.CharField(max_length=255, unique=True)
    driver = models.CharField(max_length=40, default="local")
    mountpoint = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every item succeeded (or was skipped)
    FAILED = "failed"  # at least one item failed; the others ran
    CANCELLED = "cancelled"  # cancel was asked; items not yet begun are cancelled


class Job(models.Model):
    verb = models.CharField(max_length=40)  # a permissions verb: "kill", "image.tag" ...
    options = models.JSONField(default=dict, blank=True)  # {"force": true, ...}
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)  # items finished, whatever their outcome
    failed = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.verb} of {self.total}"

    @property
    def finished(self) -> bool:
        return self.state in {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}

    @property
    def progress(self) -> int:
        """Percent of items finished, 0-100."""
        return 100 if not self.total else round(100 * self.done / self.total)

    def report(self) -> dict[str, Any]:
        """The final report: counts by item state and each failure with its reason."""
        counts: dict[str, int] = {}
        failures = []
        for item in self.items.all():
            counts[item.state] = counts.get(item.state, 0) + 1
            if item.state == ItemState.FAILED:
                failures.append({"target": item.label or item.target, "error": item.error})
        return {"state": self.state, "total": self.total, "counts": counts, "failures": failures}


class ItemState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to do (e.g. start of a running container)
    CANCELLED = "cancelled"


class JobItem(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    position = models.IntegerField()
    target = models.CharField(max_length=255)  # engine id, or a reference for new objects
    label = models.CharField(max_length=255, blank=True)  # what a user calls it: a name
    options = models.JSONField(default=dict, blank=True)  # per-item input (new tag, spec)
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.PENDING)
    result = models.TextField(blank=True)  # e.g. the new container's id, the new tag
    error = models.TextField(blank=True)  # one sentence for a user
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="one_item_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.position} {self.label or self.target}: {self.state}"


class AuditResult(models.TextChoices):
    ACCEPTED = "accepted"  # queued as a job; becomes the job's outcome when it ends
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # at least one item failed (detail says which and why)
    CANCELLED = "cancelled"
    DENIED = "denied"


class AuditEntry(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)  # kept when the user is deleted
    verb = models.CharField(max_length=40, db_index=True)
    targets = models.JSONField(default=list, blank=True)  # ["<id or name>", ...]
    options = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    result = models.CharField(max_length=16, choices=AuditResult.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.verb}: {self.result}"


class EngineEvent(models.Model):
    """What the mirror saw change in the engine, shaped like ``docker events``."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=16)  # container, image, network, volume
    action = models.CharField(max_length=32)  # create, start, die, pause, destroy, tag ...
    actor_id = models.CharField(max_length=71)
    actor_name = models.CharField(max_length=255, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.action} {self.actor_name or self.actor_id[:12]}"


class RegistryEntry(models.Model):
    """A registry the dashboard pulls from and pushes to, managed by site admins.

    ``domain`` is the reference domain it serves (``127.0.0.1:5000``, ``docker.io``),
    normalised from ``url``. The password is kept only as a Fernet token
    (``services.registries``); the plain text is never stored nor rendered back.
    """

    url = models.CharField(max_length=255)  # as typed: "https://registry.local:5000"
    domain = models.CharField(max_length=255, unique=True)
    username = models.CharField(max_length=255, blank=True)
    password_token = models.TextField(blank=True)  # Fernet token of the password
    insecure = models.BooleanField(default=False)  # plain HTTP allowed after HTTPS fails
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain
