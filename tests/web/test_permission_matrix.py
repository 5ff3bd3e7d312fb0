"""The permission matrix: every page and action of the dashboard, as each role of team
"red" (admin, operator, viewer), a site admin, and an outsider (operator of team "blue").

Objects belong to team red: a real busybox container (so detail, logs and top read the
engine), a made-up image row and a job. Allowed actions answer a redirect to their job;
the jobs are never run (no worker here), so this test changes nothing in the engine.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from containers_app import mirror
from containers_app.models import ImageMirror, Job, JobItem

pytestmark = [pytest.mark.django_db, pytest.mark.kernel]

ROLES = ("site_admin", "admin", "operator", "viewer", "outsider")


def _expect(
    site_admin: int, admin: int, operator: int, viewer: int, outsider: int
) -> dict[str, int]:
    return dict(zip(ROLES, (site_admin, admin, operator, viewer, outsider), strict=True))


EVERYONE = _expect(200, 200, 200, 200, 200)
RED_READ = _expect(200, 200, 200, 200, 404)
RED_OPERATE = _expect(302, 302, 302, 403, 404)
CREATE_IN_RED = _expect(302, 302, 302, 403, 403)
MANAGE_IN_RED = _expect(302, 302, 403, 403, 403)
SITE_ADMIN_PAGE = _expect(200, 403, 403, 403, 403)
SITE_ADMIN_POST = _expect(302, 403, 403, 403, 403)
# A create form for someone with no team to create in sends them back with a message.
CREATE_FORM = _expect(200, 200, 200, 302, 200)


def _matrix(
    cid: str, image: str, busybox: str, job: int, team: int, user: int
) -> list[tuple[str, str, dict[str, Any] | None, dict[str, int]]]:
    rows: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
        ("GET", url, None, EVERYONE)
        for url in (
            "/",
            "/containers/?all=on",
            "/images/",
            "/jobs/",
            "/events/",
            "/audit/",
            "/networks/",
            "/volumes/",
            "/password/",
            f"/images/{busybox}/",
        )
    ]
    rows += [
        ("GET", f"/containers/{cid}/{tail}", None, RED_READ)
        for tail in ("", "logs/", "top/", "diff/")
    ]
    rows += [
        ("GET", f"/jobs/{job}/", None, RED_READ),
        ("GET", f"/jobs/{job}/progress/", None, RED_READ),
        ("GET", "/containers/create/", None, CREATE_FORM),
        ("GET", f"/containers/create/?duplicate={cid}", None, _expect(200, 200, 200, 302, 404)),
        ("GET", "/images/import/", None, CREATE_FORM),
        ("GET", "/users/", None, SITE_ADMIN_PAGE),
        ("GET", f"/users/{user}/", None, SITE_ADMIN_PAGE),
        ("GET", "/teams/", None, SITE_ADMIN_PAGE),
        ("GET", f"/teams/{team}/", None, SITE_ADMIN_PAGE),
    ]
    rows += [
        ("POST", f"/containers/{cid}/action/{verb}/", {}, RED_OPERATE)
        for verb in ("start", "stop", "restart", "kill", "pause", "unpause", "remove")
    ]
    rows += [
        (
            "POST",
            "/containers/bulk/",
            {"action": "kill", "ids": [cid]},
            _expect(200, 200, 200, 200, 404),
        ),
        (
            "POST",
            "/containers/bulk/",
            {"action": "kill", "ids": [cid], "confirmed": "on"},
            RED_OPERATE,
        ),
        ("POST", f"/containers/{cid}/rename/", {"name": "renamed-box"}, RED_OPERATE),
        ("POST", f"/containers/{cid}/commit/", {"reference": "snap:v1"}, RED_OPERATE),
        (
            "POST",
            "/containers/create/",
            {"team": str(team), "image": "busybox", "count": "1"},
            CREATE_IN_RED,
        ),
        (
            "POST",
            "/images/tag/",
            {"mode": "tag", "value": "v2", "ids": [image], "confirmed": "on"},
            RED_OPERATE,
        ),
        ("POST", "/images/remove/", {"ids": [image], "confirmed": "on"}, RED_OPERATE),
        ("POST", f"/jobs/{job}/cancel/", {}, RED_OPERATE),
        ("POST", "/networks/create/", {"team": str(team), "name": "matrixnet"}, MANAGE_IN_RED),
        ("POST", "/volumes/create/", {"team": str(team), "name": "matrixvol"}, CREATE_IN_RED),
        (
            "POST",
            "/users/",
            {"username": "made-by-test", "password": "long-enough-pw"},
            SITE_ADMIN_POST,
        ),
        ("POST", "/teams/", {"name": "made-by-test"}, SITE_ADMIN_POST),
    ]
    return rows


@pytest.mark.parametrize("role", ROLES)
def test_every_view_and_action_answers_as_the_permission_table_says(
    role: str, users: Any, engine_containers: Any
) -> None:
    cid = engine_containers.run(f"matrix-{role.replace('_', '-')}", team=users.team)
    mirror.sync_images()
    busybox = ImageMirror.objects.filter(repo_tags__icontains="busybox").first()
    assert busybox is not None
    image = ImageMirror.objects.create(
        engine_id="sha256:" + "d" * 64,
        repo_tags=["red/app:v1"],
        tags_text="red/app:v1",
        team=users.team,
        host="fake",
    )
    job = Job.objects.create(verb="stop", user=users.site_admin, team=users.team, total=1)
    JobItem.objects.create(job=job, position=0, target=cid, label="x")

    client = Client(raise_request_exception=False)
    client.force_login(getattr(users, role))
    wrong = []
    for method, url, body, expected in _matrix(
        cid, image.engine_id, busybox.engine_id, job.pk, users.team.pk, users.viewer.pk
    ):
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, body)
        if response.status_code != expected[role]:
            wrong.append(f"{method} {url}: {response.status_code}, expected {expected[role]}")
    assert not wrong, f"as {role}:\n" + "\n".join(wrong)
