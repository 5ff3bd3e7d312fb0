"""Liveness, the dashboard's front page, and the engine events page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from containers_app import permissions
from containers_app.models import EngineEvent
from containers_app.services import events as event_service
from containers_app.services import host, jobs
from containers_app.views.paging import page_of, query_without

DASHBOARD_STATES = ("running", "paused", "restarting", "created", "exited", "dead")
EVENT_KINDS = ("container", "image", "network", "volume")


@require_safe
@never_cache
def ping(request: HttpRequest) -> HttpResponse:
    """Liveness for `make run` and load balancers: answers without touching the database."""
    return HttpResponse("OK", content_type="text/plain")


@require_safe
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = host.counts(request.user)
    return render(
        request,
        "dashboard.html",
        {
            "counts": [(state, counts.get(state, 0)) for state in DASHBOARD_STATES],
            "total": counts.get("total", 0),
            "facts": host.facts(),
            "events": event_service.recent(request.user, limit=10),
            "jobs": jobs.search(request.user)[:5],
        },
    )


@require_safe
@login_required
def events(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    rows = permissions.visible(request.user, EngineEvent.objects.all())
    if kind in EVENT_KINDS:
        rows = rows.filter(kind=kind)
    return render(
        request,
        "events.html",
        {
            "page": page_of(request, rows),
            "kind": kind,
            "kinds": EVENT_KINDS,
            "query_no_page": query_without(request, "page"),
        },
    )
