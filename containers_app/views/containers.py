"""Containers: the list with filters and bulk actions, the detail page, single actions,
and the create form.

A bulk action is two POSTs to one URL: the first (no ``confirmed``) renders a preview of
what each selected container will undergo; the second, with the exact ids previewed,
starts one Job and redirects to its page. "Select all matching" is resolved into ids at
preview time, so the job acts on what the user saw, not on what matches later.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from containers_app import permissions
from containers_app.forms import (
    BulkActionForm,
    CommitForm,
    ContainerCreateForm,
    ContainerFilterForm,
    RenameForm,
)
from containers_app.models import ContainerState, NetworkMirror, Team
from containers_app.services import audit
from containers_app.services import containers as service
from containers_app.views.choices import chosen_team, team_choices
from containers_app.views.paging import page_of, query_without
from runtime.errors import Conflict, InvalidSpec, KernelError

ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")
# The actions the detail page offers in each state (the list page offers all: a bulk
# preview tells per container what will happen).
SENSIBLE = {
    "running": ("stop", "restart", "kill", "pause", "remove"),
    "paused": ("unpause", "kill", "remove"),
    "restarting": ("stop", "kill", "remove"),
    "created": ("start", "remove"),
    "exited": ("start", "restart", "remove"),
    "dead": ("remove",),
}


def _matching(request: HttpRequest, query: QueryDict) -> Any:
    values = ContainerFilterForm(query).values()
    team = None
    if values["team"]:
        team = (
            permissions.visible(request.user, Team.objects.all())
            .filter(name=values["team"])
            .first()
        )
    return service.search(
        request.user,
        q=values["q"] or "",
        state=values["state"] or "",
        image=values["image"] or "",
        label=values["label"] or "",
        team=team,
        running_only=not values["all"],
        order=values["sort"] or "-created",
    ), values


@require_safe
@login_required
def container_list(request: HttpRequest) -> HttpResponse:
    rows, values = _matching(request, request.GET)
    page = page_of(request, rows.select_related("team"))
    return render(
        request,
        "containers/list.html",
        {
            "page": page,
            "filters": values,
            "states": ContainerState.values,
            "teams": permissions.visible(request.user, Team.objects.all()),
            "actions": ACTIONS,
            "query": request.GET.urlencode(),
            "query_no_page": query_without(request, "page"),
            "query_no_sort": query_without(request, "sort", "page"),
            "can_create": bool(permissions.teams_for(request.user, "create").exists()),
        },
    )


def _bulk_options(form: BulkActionForm, data: QueryDict) -> dict[str, Any]:
    action = form.cleaned_data["action"]
    if action == "remove":
        return {"force": form.cleaned_data["force"], "volumes": form.cleaned_data["remove_volumes"]}
    return {}


@require_POST
@login_required
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        for error in form.non_field_errors() or ["That bulk action is not valid."]:
            messages.error(request, error)
        return redirect(_back_to_list(request))
    action = form.cleaned_data["action"]
    options = _bulk_options(form, request.POST)
    if form.cleaned_data["select_all_matching"] and not form.cleaned_data["confirmed"]:
        rows, _ = _matching(request, _filter_query(request.POST))
        targets: list[Any] = list(rows)
    else:
        targets = form.id_list
    if not targets:
        messages.error(request, "No container matches that selection.")
        return redirect(_back_to_list(request))
    if form.cleaned_data["confirmed"]:
        job = service.bulk(
            request.user, action, targets, options, remote_addr=audit.client_addr(request)
        )
        return redirect("job", pk=job.pk)
    preview = service.preview(request.user, action, targets, options)
    return render(
        request,
        "containers/bulk_preview.html",
        {
            "action": action,
            "options": options,
            "rows": preview,
            "runnable": [row for row in preview if row.allowed],
            "refused": [row for row in preview if not row.allowed],
            "back": _back_to_list(request),
        },
    )


def _filter_query(data: QueryDict) -> QueryDict:
    query = QueryDict(mutable=True)
    for name in ContainerFilterForm.base_fields:
        if data.get(f"filter_{name}"):
            query[name] = data[f"filter_{name}"]
    return query


def _back_to_list(request: HttpRequest) -> str:
    query = _filter_query(request.POST).urlencode()
    return "/containers/" + (f"?{query}" if query else "")


@require_safe
@login_required
def detail(request: HttpRequest, ref: str) -> HttpResponse:
    container = service.get(request.user, ref)
    document = service.inspect(request.user, ref)
    user = request.user
    return render(
        request,
        "containers/detail.html",
        {
            "c": container,
            "doc": document,
            "config": document.get("Config") or {},
            "host_config": document.get("HostConfig") or {},
            "state": document.get("State") or {},
            "networks": ((document.get("NetworkSettings") or {}).get("Networks") or {}),
            "mounts": document.get("Mounts") or [],
            "ports": ((document.get("NetworkSettings") or {}).get("Ports") or {}),
            "run_command": service.run_command(user, ref),
            "actions": [
                a
                for a in SENSIBLE.get(container.state, ACTIONS)
                if permissions.can(user, a, container)
            ],
            "can_rename": permissions.can(user, "rename", container),
            "can_commit": permissions.can(user, "commit", container) and hasattr(service, "commit"),
            "can_create": permissions.teams_for(user, "create").exists(),
            "rename_form": RenameForm(initial={"name": container.name}),
            "commit_form": CommitForm(),
        },
    )


@require_POST
@login_required
def action(request: HttpRequest, ref: str, verb: str) -> HttpResponse:
    if verb not in ACTIONS:
        return HttpResponse("Unknown action.", status=404, content_type="text/plain")
    options: dict[str, Any] = {}
    if verb == "remove":
        options = {"force": request.POST.get("force") == "on", "volumes": False}
    job = service.act(request.user, verb, ref, options, remote_addr=audit.client_addr(request))
    return redirect("job", pk=job.pk)


@require_POST
@login_required
def rename(request: HttpRequest, ref: str) -> HttpResponse:
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["name"]))
        return redirect("container", ref=ref)
    job = service.rename(
        request.user, ref, form.cleaned_data["name"], remote_addr=audit.client_addr(request)
    )
    return redirect("job", pk=job.pk)


@require_POST
@login_required
def commit(request: HttpRequest, ref: str) -> HttpResponse:
    form = CommitForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect("container", ref=ref)
    if not hasattr(service, "commit"):
        messages.error(request, "Commit is not available on this engine yet.")
        return redirect("container", ref=ref)
    job = service.commit(
        request.user, ref, form.cleaned_data["reference"], remote_addr=audit.client_addr(request)
    )
    return redirect("job", pk=job.pk)


@require_safe
@login_required
def top(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        titles, rows = service.top(request.user, ref)
    except (Conflict, KernelError) as e:
        # A stopped container has no processes: say so inline rather than as an error page.
        return render(request, "containers/_unavailable.html", {"message": str(e)})
    return render(request, "containers/_top.html", {"titles": titles, "rows": rows})


@require_safe
@login_required
def diff(request: HttpRequest, ref: str) -> HttpResponse:
    # (kind letter, path) pairs, as `moorage diff` prints them; the service checks "diff".
    return render(request, "containers/_diff.html", {"changes": service.diff(request.user, ref)})


@require_safe
@login_required
def logs(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        tail = max(1, min(int(request.GET.get("tail", 200)), 5000))
    except ValueError:
        tail = 200
    text = service.logs(request.user, ref, tail=tail)
    return render(request, "containers/_logs.html", {"text": text, "tail": tail})


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def create(request: HttpRequest) -> HttpResponse:
    allowed = permissions.allowed_risky_options(request.user)
    teams = team_choices(request, "create")
    if request.method == "POST":
        form = ContainerCreateForm(request.POST, allowed_risky=allowed)
        team_id = request.POST.get("team", "")
        team, error = chosen_team(team_id)
        if error:
            form.add_error(None, error)
        if form.is_valid():
            # The service checks the team and every risky option (403 and an audit entry
            # when refused), whatever this form offered.
            try:
                job = service.create(
                    request.user,
                    team,
                    form.spec_options(),
                    count=form.cleaned_data["count"],
                    start=form.cleaned_data["start"],
                    remote_addr=audit.client_addr(request),
                )
            except InvalidSpec as e:
                form.add_error(None, str(e))
            else:
                return redirect("job", pk=job.pk)
    else:
        if not teams:
            messages.error(request, "You have no team in which you may create containers.")
            return redirect("containers")
        initial: dict[str, Any] = {"image": request.GET.get("image", "")}
        if request.GET.get("duplicate"):
            initial = ContainerCreateForm.initial_from_spec(
                service.duplicate_initial(request.user, request.GET["duplicate"])
            )
        form = ContainerCreateForm(initial=initial, allowed_risky=allowed)
        team_id = teams[0][0]
    return render(
        request,
        "containers/create.html",
        {
            "form": form,
            "teams": teams,
            "team": team_id,
            "network_names": ["bridge", "none"]
            + list(
                permissions.visible(request.user, NetworkMirror.objects.all())
                .exclude(name__in=("bridge", "none", "host"))
                .values_list("name", flat=True)
            ),
            "restart_policies": ("no", "always", "unless-stopped", "on-failure", "on-failure:3"),
            # The create job pulls a missing image first when its user may pull.
            "can_pull": permissions.teams_for(request.user, "image.pull").exists(),
        },
    )
