"""The dashboard answers: liveness, the sign-in gate, and the first admin account."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client


def test_ping_answers_ok_without_a_session(client: Client) -> None:
    response = client.get("/_ping")
    assert response.status_code == 200
    assert response.content == b"OK"
    assert response["Content-Type"].startswith("text/plain")


def test_ping_refuses_writes(client: Client) -> None:
    assert client.post("/_ping").status_code == 405


def test_home_page_sends_anonymous_visitors_to_sign_in(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


@pytest.mark.django_db
def test_home_page_greets_a_signed_in_user(client: Client) -> None:
    user = get_user_model().objects.create_user("ada", password="not-a-real-secret-1")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"ada" in response.content and b"Sign out" in response.content


@pytest.mark.django_db
def test_ensure_admin_creates_one_superuser_and_shows_its_password_once() -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("ensure_admin", stdout=first)
    call_command("ensure_admin", stdout=second)

    admin = get_user_model().objects.get(username="admin")
    password = first.getvalue().split("with password ")[1].split()[0]
    assert admin.is_superuser and admin.check_password(password)
    assert "exists already" in second.getvalue()
    assert password not in second.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOORAGE_ADMIN_PASSWORD", "chosen-by-the-operator")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert get_user_model().objects.get(username="admin").check_password("chosen-by-the-operator")
    assert "chosen-by-the-operator" not in out.getvalue()


@pytest.mark.django_db
def test_signing_in_sets_cookies_that_scripts_and_other_sites_cannot_use(client: Client) -> None:
    get_user_model().objects.create_user("ada", password="not-a-real-secret-1", is_staff=True)
    form = client.get("/login/")
    csrf = form.cookies["csrftoken"]
    assert csrf["samesite"] == "Lax"

    response = client.post(
        "/login/", {"username": "ada", "password": "not-a-real-secret-1", "next": "/"}
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
