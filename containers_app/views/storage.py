"""Networks and volumes: list, create, remove, inspect, and which containers use them.

One set of views serves both kinds: ``KINDS`` names each kind's form, permission verbs
and pages, ``SERVICES`` its service module (the same functions for both).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from containers_app import permissions
from containers_app.forms import NetworkCreateForm, VolumeCreateForm
from containers_app.services import audit, networks, volumes
from containers_app.views.choices import chosen_team, team_choices
from containers_app.views.paging import page_of
from runtime.errors import NotFound

KINDS: dict[str, dict[str, Any]] = {
    "network": {
        "plural": "networks",
        "form": NetworkCreateForm,
        "create": "network.create",
        "remove": "network.remove",
    },
    "volume": {
        "plural": "volumes",
        "form": VolumeCreateForm,
        "create": "volume.create",
        "remove": "volume.remove",
    },
}
SERVICES: dict[str, Any] = {"network": networks, "volume": volumes}


def _list(request: HttpRequest, kind: str) -> HttpResponse:
    service = SERVICES[kind]
    q = request.GET.get("q", "").strip()[:200]
    return render(
        request,
        "storage/list.html",
        {
            "kind": kind,
            "plural": KINDS[kind]["plural"],
            "q": q,
            "page": page_of(request, service.search(request.user, q=q)),
            "can_create": bool(team_choices(request, KINDS[kind]["create"])),
        },
    )


def _create(request: HttpRequest, kind: str) -> HttpResponse:
    service = SERVICES[kind]
    form_class: Any = KINDS[kind]["form"]
    choices = team_choices(request, KINDS[kind]["create"])
    if request.method == "POST":
        form = form_class(request.POST)
        team_id = request.POST.get("team", "")
        team, error = chosen_team(team_id)
        if error:
            form.add_error(None, error)
        if form.is_valid():
            options = dict(form.cleaned_data)
            name = options.pop("name")
            job = service.create(
                request.user, team, name, remote_addr=audit.client_addr(request), **options
            )
            return redirect("job", pk=job.pk)
    else:
        if not choices:
            messages.error(request, f"You have no team in which you may create {kind}s.")
            return redirect(KINDS[kind]["plural"])
        form = form_class()
        team_id = choices[0][0]
    return render(
        request,
        "storage/create.html",
        {
            "kind": kind,
            "plural": KINDS[kind]["plural"],
            "form": form,
            "teams": choices,
            "team": team_id,
        },
    )


def _remove(request: HttpRequest, kind: str) -> HttpResponse:
    service = SERVICES[kind]
    refs = [r for r in request.POST.getlist("ids") if r.strip()]
    if not refs:
        messages.error(request, f"Select at least one {kind}.")
        return redirect(KINDS[kind]["plural"])
    targets = [service.get(request.user, ref) for ref in refs]
    job = service.bulk_remove(request.user, targets, remote_addr=audit.client_addr(request))
    return redirect("job", pk=job.pk)


def _detail(request: HttpRequest, kind: str, ref: str) -> HttpResponse:
    service = SERVICES[kind]
    obj = service.get(request.user, ref)
    try:
        document = service.inspect(request.user, obj)
    except NotFound:  # gone from the engine since the last resync: show what we had
        document = getattr(obj, "data", {}) or {}
    return render(
        request,
        "storage/detail.html",
        {
            "kind": kind,
            "plural": KINDS[kind]["plural"],
            "obj": obj,
            "doc": json.dumps(document, indent=2, default=str),
            "used_by": service.used_by(request.user, obj),
            "can_remove": permissions.can(request.user, KINDS[kind]["remove"], obj),
        },
    )


@require_safe
@login_required
def network_list(request: HttpRequest) -> HttpResponse:
    return _list(request, "network")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def network_create(request: HttpRequest) -> HttpResponse:
    return _create(request, "network")


@require_POST
@login_required
def network_remove(request: HttpRequest) -> HttpResponse:
    return _remove(request, "network")


@require_safe
@login_required
def network_detail(request: HttpRequest, ref: str) -> HttpResponse:
    return _detail(request, "network", ref)


@require_safe
@login_required
def volume_list(request: HttpRequest) -> HttpResponse:
    return _list(request, "volume")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def volume_create(request: HttpRequest) -> HttpResponse:
    return _create(request, "volume")


@require_POST
@login_required
def volume_remove(request: HttpRequest) -> HttpResponse:
    return _remove(request, "volume")


@require_safe
@login_required
def volume_detail(request: HttpRequest, ref: str) -> HttpResponse:
    return _detail(request, "volume", ref)
