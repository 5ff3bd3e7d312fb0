"""Pull/Push links on the images pages and the create form's pull note, by role."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from containers_app.models import ImageMirror

pytestmark = pytest.mark.django_db


def page(user: Any, path: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.fixture
def red_image(users: Any, busybox_image: Any) -> ImageMirror:
    """The real busybox image (the detail page inspects it), owned by team red."""
    row, _ = ImageMirror.objects.update_or_create(
        engine_id=busybox_image.id,
        defaults={
            "repo_tags": ["busybox:latest"],
            "tags_text": "busybox:latest",
            "size": 1,
            "team": users.team,
            "host": "fake",
        },
    )
    return row


@pytest.mark.parametrize(
    "who, pull, push",
    [
        ("viewer", False, False),
        ("operator", True, False),  # image.pull is OPERATE, image.push MANAGE
        ("admin", True, True),
        ("site_admin", True, True),
    ],
)
def test_pull_and_push_buttons_show_only_to_roles_allowed_to_use_them(
    users: Any, red_image: ImageMirror, who: str, pull: bool, push: bool
) -> None:
    user = getattr(users, who)
    listing = page(user, "/images/")
    assert ('href="/images/pull/"' in listing) is pull
    detail = page(user, f"/images/{red_image.engine_id}/")
    assert (f'href="/images/{red_image.engine_id}/push/"' in detail) is push
    # Each link leads to a page the user may open.
    if pull:
        assert "<form" in page(user, "/images/pull/")
    if push:
        assert "<form" in page(user, f"/images/{red_image.engine_id}/push/")


def test_an_outsiders_team_pull_right_shows_pull_but_not_push_on_anothers_image(
    users: Any, red_image: ImageMirror
) -> None:
    """blue-operator may pull into blue; red's image does not exist for them (404)."""
    assert 'href="/images/pull/"' in page(users.outsider, "/images/")
    client = Client()
    client.force_login(users.outsider)
    assert client.get(f"/images/{red_image.engine_id}/").status_code == 404


@pytest.mark.parametrize("who", ["operator", "admin", "site_admin"])
def test_the_create_form_says_a_missing_image_is_pulled_first_to_users_who_may_pull(
    users: Any, who: str
) -> None:
    html = page(getattr(users, who), "/containers/create/")
    assert 'id="image-pull-note"' in html
    assert "is pulled from its registry first" in html


def test_the_create_form_makes_no_pull_promise_when_the_role_cannot_pull(
    users: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create and image.pull are both OPERATE today; if pull is narrowed, the note goes."""
    from containers_app import permissions

    monkeypatch.setitem(permissions.PERMISSIONS, ("image.pull", None), permissions.MANAGE)
    html = page(users.operator, "/containers/create/")
    assert 'id="image-pull-note"' not in html
    assert 'id="image-pull-note"' in page(users.admin, "/containers/create/")
