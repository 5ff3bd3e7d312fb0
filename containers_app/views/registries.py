"""Registries page: entries with encrypted credentials, site admins only.

Everyone signed in may see which registries are configured (domain, user name, plain
HTTP flag: what a pull form needs); only site admins add, edit or remove them. The
password is never rendered back into the edit form.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from containers_app import permissions
from containers_app.forms.registries import RegistryForm
from containers_app.models import RegistryEntry
from containers_app.services import audit
from containers_app.services import registries as service
from runtime.errors import InvalidSpec


def _saved(request: HttpRequest, form: RegistryForm, entry: RegistryEntry | None) -> bool:
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        service.save(
            request.user,
            url=data["url"],
            username=data["username"],
            password=data["password"],
            insecure=data["insecure"],
            entry=entry,
            remote_addr=audit.client_addr(request),
        )
    except InvalidSpec as e:
        form.add_error(None, str(e))
        return False
    return True


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def registry_list(request: HttpRequest) -> HttpResponse:
    form = RegistryForm(request.POST or None)
    if request.method == "POST":
        # 403 (audited) before the form is read: garbage from a non-admin is refused too.
        service.check_manage(
            request.user, "registry.create", "(new registry)", audit.client_addr(request)
        )
        if _saved(request, form, None):
            messages.success(request, "Registry saved.")
            return redirect("registries")
    return render(
        request,
        "registries/list.html",
        {
            "entries": service.entries(request.user),
            "form": form,
            "can_manage": permissions.can(request.user, "registry.manage"),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def registry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = service.get_entry(request.user, pk)
    initial = {"url": entry.url, "username": entry.username, "insecure": entry.insecure}
    form = RegistryForm(request.POST or None, initial=initial)
    if request.method == "POST" and _saved(request, form, entry):
        messages.success(request, "Registry saved.")
        return redirect("registries")
    return render(request, "registries/edit.html", {"form": form, "entry": entry})


@require_POST
@login_required
def registry_remove(request: HttpRequest, pk: int) -> HttpResponse:
    service.delete(request.user, pk, remote_addr=audit.client_addr(request))
    messages.success(request, "Registry removed.")
    return redirect("registries")
