"""Build, pull and push pages, and the live output page of those jobs.

Thin: parse the form, call ``services.builds``/``services.registries``, redirect to the
job's output page, which streams over ``ws/jobs/<pk>/output/`` (static/js/image_jobs.js).
Permissions are the services' (403/404 and an audit entry when refused); a user with no
team to build or pull in is refused before the form is even read.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from containers_app import permissions
from containers_app.forms.builds import BuildForm, PullForm, PushForm
from containers_app.models import AuditResult, ItemState
from containers_app.services import audit, builds, registries
from containers_app.services import images as image_services
from containers_app.services import jobs as job_services
from containers_app.views.choices import chosen_team, team_choices
from runtime.errors import InvalidSpec

STREAMED = ("image.build", "image.pull", "image.push")


class _Nowhere(Exception):
    """GET of a page whose verb the user may use in no team."""


def _team_form(request: HttpRequest, verb: str, form: Any) -> tuple[list[tuple[str, str]], Any]:
    """The team choices and the chosen team (a form error when the posted value is
    garbage). No team at all: 403 for a POST, _Nowhere for a GET."""
    choices = team_choices(request, verb)
    if not choices:
        said = f"You have no team in which you may {verb.replace('image.', '')} images."
        if request.method == "POST":
            audit.record(
                request.user,
                verb,
                ["(form)"],
                AuditResult.DENIED,
                remote_addr=audit.client_addr(request),
                detail=said,
            )
            raise PermissionDenied(said)
        messages.error(request, said)
        raise _Nowhere(said)
    team = None
    if request.method == "POST":
        team, error = chosen_team(request.POST.get("team", ""))
        if error:
            form.add_error(None, error)
    return choices, team


def _failed(form: Any, action: Any) -> Any:
    """Run ``action``; an InvalidSpec becomes a form error (the page shows it, no 500)."""
    try:
        return action()
    except InvalidSpec as e:
        form.add_error(None, str(e))
        return None


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def build(request: HttpRequest) -> HttpResponse:
    form = BuildForm(request.POST or None, request.FILES or None)
    try:
        choices, team = _team_form(request, "image.build", form)
    except _Nowhere:
        return redirect("images")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = _failed(
            form,
            lambda: builds.build(
                request.user,
                team,
                dockerfile=data["dockerfile"],
                context=data["context"],
                dockerfile_path=data["dockerfile_path"],
                tags=data["tags"],
                build_args=data["build_args"],
                no_cache=data["no_cache"],
                target=data["target"],
                remote_addr=audit.client_addr(request),
            ),
        )
        if job is not None:
            return redirect("image-job", pk=job.pk)
    return render(
        request,
        "images/build.html",
        {"form": form, "teams": choices, "team": request.POST.get("team", choices[0][0])},
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def pull(request: HttpRequest) -> HttpResponse:
    form = PullForm(request.POST or None, initial={"reference": request.GET.get("image", "")})
    try:
        choices, team = _team_form(request, "image.pull", form)
    except _Nowhere:
        return redirect("images")
    if request.method == "POST" and form.is_valid():
        job = _failed(
            form,
            lambda: registries.pull(
                request.user,
                team,
                form.cleaned_data["reference"],
                remote_addr=audit.client_addr(request),
            ),
        )
        if job is not None:
            return redirect("image-job", pk=job.pk)
    return render(
        request,
        "images/pull.html",
        {
            "form": form,
            "teams": choices,
            "team": request.POST.get("team", choices[0][0]),
            "registries": registries.entries(request.user),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def push(request: HttpRequest, ref: str) -> HttpResponse:
    form = PushForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The service looks the image up itself, so refusals (404 included) are audited.
        job = _failed(
            form,
            lambda: registries.push(
                request.user,
                ref,
                form.cleaned_data["target"],
                remote_addr=audit.client_addr(request),
            ),
        )
        if job is not None:
            return redirect("image-job", pk=job.pk)
    image = image_services.get(request.user, ref)
    can_push = permissions.can(request.user, "image.push", image)
    if request.method == "POST" and not can_push:
        raise PermissionDenied("Your role does not allow image push.")
    if request.method != "POST":
        form = PushForm(initial={"target": str(image)})
    return render(request, "images/push.html", {"form": form, "image": image, "can_push": can_push})


@require_safe
@login_required
def job_output(request: HttpRequest, pk: int) -> HttpResponse:
    """A build, pull or push job: live output while it runs, the outcome once done."""
    job = job_services.get(request.user, pk)
    if job.verb not in STREAMED:
        return redirect("job", pk=job.pk)
    item = job.items.first()
    return render(
        request,
        "images/build_job.html",
        {"job": job, "item": item, "failed": item is not None and item.state == ItemState.FAILED},
    )
