"""Pages of the dashboard. Views stay thin: parse, check permission, call a service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@require_safe
@never_cache
def ping(request: HttpRequest) -> HttpResponse:
    """Liveness for `make run` and load balancers: answers without touching the database."""
    return HttpResponse("OK", content_type="text/plain")


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html")
