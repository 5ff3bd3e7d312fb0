"""Images: list with search, bulk tag (one tag, or a repository prefix), bulk remove,
import of an uploaded tarball, and the detail page with history and "run".

Bulk tag and bulk remove preview first, like container bulk actions, then start one Job.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from containers_app import permissions
from containers_app.forms import BulkTagForm, ImageImportForm
from containers_app.services import audit
from containers_app.services import images as service
from containers_app.views.choices import chosen_team, team_choices
from containers_app.views.paging import page_of, query_without


@require_safe
@login_required
def image_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    rows = service.search(request.user, q=q).select_related("team")
    return render(
        request,
        "images/list.html",
        {
            "page": page_of(request, rows),
            "q": q,
            "query_no_page": query_without(request, "page"),
            "tag_form": BulkTagForm(),
            "can_import": permissions.teams_for(request.user, "image.import").exists(),
            "can_pull": permissions.teams_for(request.user, "image.pull").exists(),
        },
    )


def _selected(request: HttpRequest, ids: list[str]) -> list[Any]:
    return [service.get(request.user, ref) for ref in ids]


@require_POST
@login_required
def bulk_tag(request: HttpRequest) -> HttpResponse:
    form = BulkTagForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("images")
    images = _selected(request, form.id_list)
    mode, value = form.cleaned_data["mode"], form.cleaned_data["value"]
    tag = value if mode == "tag" else None
    prefix = value if mode == "prefix" else None
    if request.POST.get("confirmed"):
        job = service.bulk_tag(
            request.user, images, tag=tag, prefix=prefix, remote_addr=audit.client_addr(request)
        )
        return redirect("job", pk=job.pk)
    rows = service.tag_preview(request.user, images, tag=tag, prefix=prefix)
    return render(
        request,
        "images/tag_preview.html",
        {
            "rows": rows,
            "mode": mode,
            "value": value,
            "ids": [image.engine_id for image in images],
            "runnable": any(error is None for _, _, error in rows),
        },
    )


@require_POST
@login_required
def bulk_remove(request: HttpRequest) -> HttpResponse:
    ids = [i for i in request.POST.getlist("ids") if i.strip()]
    if not ids:
        messages.error(request, "Select at least one image.")
        return redirect("images")
    images = _selected(request, ids)
    force = request.POST.get("force") == "on"
    if request.POST.get("confirmed"):
        job = service.bulk_remove(
            request.user, images, force=force, remote_addr=audit.client_addr(request)
        )
        return redirect("job", pk=job.pk)
    return render(
        request,
        "images/remove_preview.html",
        {
            "images": images,
            "force": force,
            "allowed": [permissions.can(request.user, "image.remove", i) for i in images],
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def import_tarball(request: HttpRequest) -> HttpResponse:
    choices = team_choices(request, "image.import")
    if request.method == "POST":
        form = ImageImportForm(request.POST, request.FILES)
        team_id = request.POST.get("team", "")
        team, error = chosen_team(team_id)
        if error:
            form.add_error(None, error)
        if form.is_valid():
            job = service.import_tarball(
                request.user,
                team,
                form.cleaned_data["tarball"],
                reference=form.cleaned_data["reference"] or None,
                remote_addr=audit.client_addr(request),
            )
            return redirect("job", pk=job.pk)
    else:
        if not choices:
            messages.error(request, "You have no team in which you may import images.")
            return redirect("images")
        form = ImageImportForm()
        team_id = choices[0][0]
    return render(request, "images/import.html", {"form": form, "teams": choices, "team": team_id})


@require_safe
@login_required
def detail(request: HttpRequest, ref: str) -> HttpResponse:
    image = service.get(request.user, ref)
    document = service.inspect(request.user, ref)
    return render(
        request,
        "images/detail.html",
        {
            "image": image,
            "doc": document,
            "config": document.get("Config") or {},
            "history": service.history(request.user, ref),
            "can_run": permissions.teams_for(request.user, "create").exists(),
            "can_push": permissions.can(request.user, "image.push", image),
            "run_ref": image.repo_tags[0] if image.repo_tags else image.engine_id,
        },
    )
