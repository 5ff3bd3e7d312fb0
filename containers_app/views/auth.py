"""Sign in, sign out and password change, with login throttling.

Throttling counts failed sign-ins per (username, client address) in Django's cache: after
``MAX_FAILURES`` failures within ``WINDOW_SECONDS`` the pair is refused with 429 until the
window passes, without checking the password (so a correct guess in that window teaches
the guesser nothing). A success clears the count. Other addresses and other usernames are
unaffected, so an attacker cannot lock a user out from everywhere.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def client_address(request: HttpRequest) -> str:
    # daphne binds to 127.0.0.1 with no proxy in front: REMOTE_ADDR is the client. Trusting
    # X-Forwarded-For here would let anyone pick a fresh "address" per guess.
    return request.META.get("REMOTE_ADDR") or "unknown"


def _throttle_key(username: str, address: str) -> str:
    return f"login-failures:{username.strip().lower()}:{address}"


def is_throttled(username: str, address: str) -> bool:
    return int(cache.get(_throttle_key(username, address), 0)) >= MAX_FAILURES


def record_failure(username: str, address: str) -> None:
    key = _throttle_key(username, address)
    # add() starts the window only once; incr() keeps it (the window is fixed, not sliding).
    if not cache.add(key, 1, WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, WINDOW_SECONDS)


def clear_failures(username: str, address: str) -> None:
    cache.delete(_throttle_key(username, address))


class ThrottledLoginView(auth_views.LoginView):
    template_name = "auth/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        if is_throttled(username, client_address(request)):
            # An unbound form: binding it would run authenticate() and check the password.
            form = self.get_form_class()(request, initial={"username": username})
            response = self.render_to_response(self.get_context_data(form=form, throttled=True))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        clear_failures(form.get_user().get_username(), client_address(self.request))
        return super().form_valid(form)

    def form_invalid(self, form: Any) -> HttpResponse:
        record_failure(self.request.POST.get("username", ""), client_address(self.request))
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    # Django's LogoutView accepts POST only (a GET link could be forged by any page).
    next_page = reverse_lazy("login")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "auth/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password was changed.")
        return response
