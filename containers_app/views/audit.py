"""The audit page: every mutating request, allowed or refused, with filters."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from containers_app.forms import AuditFilterForm
from containers_app.models import AuditResult
from containers_app.permissions import VERBS
from containers_app.services import audit as service
from containers_app.views.paging import page_of, query_without


@require_safe
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    rows = service.search(
        request.user,
        username=data.get("user") or "",
        verb=data.get("action") or "",
        result=data.get("result") or "",
        since=data.get("since"),
        until=data.get("until"),
        q=data.get("target") or "",
    )
    return render(
        request,
        "audit.html",
        {
            "form": form,
            "page": page_of(request, rows),
            "verbs": sorted(VERBS | {"user.create", "user.update", "team.create", "team.member"}),
            "results": AuditResult.values,
            "query_no_page": query_without(request, "page"),
        },
    )
