"""Users and teams, for site admins: create users, (de)activate them, make site admins,
create teams, and set each member's role (viewer, operator, admin).

There is no service module for accounts: these are plain Django writes, audited here with
``services.audit.record`` like every other mutating request.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from containers_app import permissions
from containers_app.forms import MembershipForm, TeamCreateForm, UserCreateForm
from containers_app.models import AuditResult, Membership, Team
from containers_app.services import audit


def _require_admin(request: HttpRequest, verb: str) -> None:
    try:
        permissions.check(request.user, verb)
    except permissions.PermissionDenied:
        audit.record(
            request.user,
            verb,
            [request.path],
            AuditResult.DENIED,
            remote_addr=audit.client_addr(request),
        )
        raise


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def user_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request, "user.manage")
    users = get_user_model()
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            if data["is_superuser"]:
                new = users.objects.create_superuser(data["username"], password=data["password"])
            else:
                new = users.objects.create_user(data["username"], password=data["password"])
            audit.record(
                request.user,
                "user.create",
                [new.get_username()],
                AuditResult.SUCCEEDED,
                remote_addr=audit.client_addr(request),
                options={"site_admin": data["is_superuser"]},
            )
        messages.success(request, f"User {new.get_username()} was created.")
        return redirect("user", pk=new.pk)
    return render(
        request,
        "accounts/users.html",
        {
            "users": users.objects.order_by("username").prefetch_related("memberships__team"),
            "form": form,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request, "user.manage")
    subject = get_object_or_404(get_user_model(), pk=pk)
    if request.method == "POST":
        change = request.POST.get("change", "")
        if subject.pk == request.user.pk and change in {"deactivate", "demote"}:
            messages.error(request, "You cannot deactivate or demote yourself.")
            return redirect("user", pk=pk)
        fields = {
            "activate": {"is_active": True},
            "deactivate": {"is_active": False},
            "promote": {"is_superuser": True, "is_staff": True},
            "demote": {"is_superuser": False, "is_staff": False},
        }.get(change)
        if fields is None:
            messages.error(request, "Unknown change.")
            return redirect("user", pk=pk)
        with transaction.atomic():
            for name, value in fields.items():
                setattr(subject, name, value)
            subject.save(update_fields=list(fields))
            audit.record(
                request.user,
                "user.update",
                [subject.get_username()],
                AuditResult.SUCCEEDED,
                remote_addr=audit.client_addr(request),
                options={"change": change},
            )
        messages.success(request, f"User {subject.get_username()}: {change}d.")
        return redirect("user", pk=pk)
    return render(
        request,
        "accounts/user.html",
        {
            "subject": subject,
            "memberships": Membership.objects.filter(user=subject).select_related("team"),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request, "team.manage")
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        if Team.objects.filter(name__iexact=name).exists():
            form.add_error("name", "A team with that name exists already.")
        else:
            with transaction.atomic():
                team = Team.objects.create(name=name)
                audit.record(
                    request.user,
                    "team.create",
                    [name],
                    AuditResult.SUCCEEDED,
                    remote_addr=audit.client_addr(request),
                    team=team,
                )
            return redirect("team", pk=team.pk)
    return render(
        request,
        "accounts/teams.html",
        {
            "teams": Team.objects.prefetch_related("memberships__user"),
            "form": form,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request, "team.manage")
    team = get_object_or_404(Team, pk=pk)
    form = MembershipForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("remove"):
            member = get_user_model().objects.filter(username=request.POST["remove"]).first()
            with transaction.atomic():
                Membership.objects.filter(team=team, user=member).delete()
                audit.record(
                    request.user,
                    "team.member",
                    [request.POST["remove"]],
                    AuditResult.SUCCEEDED,
                    remote_addr=audit.client_addr(request),
                    team=team,
                    options={"role": None},
                )
            return redirect("team", pk=pk)
        if form.is_valid():
            member = get_user_model().objects.get(username=form.cleaned_data["username"])
            role = form.cleaned_data["role"]
            with transaction.atomic():
                Membership.objects.update_or_create(team=team, user=member, defaults={"role": role})
                audit.record(
                    request.user,
                    "team.member",
                    [member.get_username()],
                    AuditResult.SUCCEEDED,
                    remote_addr=audit.client_addr(request),
                    team=team,
                    options={"role": role},
                )
            return redirect("team", pk=pk)
    return render(
        request,
        "accounts/team.html",
        {
            "team": team,
            "memberships": team.memberships.select_related("user").order_by("user__username"),
            "form": form,
        },
    )
