"""Jobs: the list, one job's page with live progress (htmx polling), and cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from containers_app import permissions
from containers_app.models import JobState
from containers_app.services import audit
from containers_app.services import jobs as service
from containers_app.views.paging import page_of


@require_safe
@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    rows = service.search(request.user, state=state if state in JobState.values else "")
    return render(
        request,
        "jobs/list.html",
        {
            "page": page_of(request, rows),
            "state": state,
            "states": JobState.values,
        },
    )


def _context(request: HttpRequest, pk: int) -> dict[str, object]:
    job = service.get(request.user, pk)
    return {
        "job": job,
        "items": job.items.all(),
        "report": job.report() if job.finished else None,
        "can_cancel": not job.finished
        and not job.cancel_requested
        and permissions.can(request.user, "job.cancel", job),
    }


@require_safe
@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "jobs/detail.html", _context(request, pk))


@require_safe
@never_cache
@login_required
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's progress block alone, polled by htmx until the job finishes."""
    return render(request, "jobs/_progress.html", _context(request, pk))


@require_POST
@login_required
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    service.cancel(request.user, pk, remote_addr=audit.client_addr(request))
    messages.info(request, "Cancel requested: items not yet begun will not run.")
    return redirect("job", pk=pk)
