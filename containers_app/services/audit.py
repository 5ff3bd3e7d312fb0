"""The audit log: who did what to which objects, when, from where, with what result.

Every mutating service writes one entry per request: ``accepted`` when a job was queued
(the job row then holds each item's outcome), ``denied`` when the permission table
refused it, ``failed`` when it was refused before queueing (bad input).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest

from containers_app import permissions
from containers_app.models import AuditEntry, AuditResult, Job, Team


def client_addr(request: HttpRequest) -> str | None:
    """The peer's address. X-Forwarded-For is ignored on purpose: anyone can forge it,
    and `make run` puts no proxy in front of daphne."""
    return request.META.get("REMOTE_ADDR") or None


def record(
    user: Any,
    verb: str,
    targets: Iterable[str],
    result: str,
    *,
    remote_addr: str | None = None,
    options: dict[str, Any] | None = None,
    team: Team | None = None,
    job: Job | None = None,
    detail: str = "",
) -> AuditEntry:
    authenticated = bool(user is not None and user.is_authenticated)
    return AuditEntry.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else "(anonymous)",
        verb=verb,
        targets=[str(t) for t in targets],
        options=options or {},
        team=team,
        job=job,
        remote_addr=remote_addr,
        result=result,
        detail=detail[:2000],
    )


def denied(
    user: Any,
    verb: str,
    targets: Iterable[str],
    error: BaseException,
    *,
    remote_addr: str | None = None,
    team: Team | None = None,
    options: dict[str, Any] | None = None,
) -> AuditEntry:
    """The entry for a request the permission table (or visibility) refused: the
    refusal's sentence is its detail."""
    return record(
        user,
        verb,
        targets,
        AuditResult.DENIED,
        remote_addr=remote_addr,
        team=team,
        options=options,
        detail=str(error),
    )


def search(
    user: Any,
    username: str = "",
    verb: str = "",
    result: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    q: str = "",
) -> QuerySet[AuditEntry]:
    """Entries ``user`` may read, newest first, filtered."""
    entries = permissions.visible(user, AuditEntry.objects.all()).select_related("team", "job")
    if username:
        entries = entries.filter(username__iexact=username)
    if verb:
        entries = entries.filter(verb=verb)
    if result:
        entries = entries.filter(result=result)
    if since:
        entries = entries.filter(at__gte=since)
    if until:
        entries = entries.filter(at__lte=until)
    if q:
        # JSON lists are searched as text: works on SQLite and PostgreSQL alike.
        entries = entries.filter(
            Q(targets__icontains=q) | Q(detail__icontains=q) | Q(verb__icontains=q)
        )
    return entries
