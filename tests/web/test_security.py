"""The dashboard's defences: CSRF on every form, cookie flags, login throttling, forged
actions refused without effect, other teams' objects invisible, garbage input answered
with field errors. (Issue 5, "Security and bad input".)
"""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from containers_app.models import AuditEntry, ContainerMirror, ImageMirror, Job, Team

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()  # throttling counts live in the cache; each test starts clean


def _container(name: str, team: Team, state: str = "running") -> ContainerMirror:
    return ContainerMirror.objects.create(
        engine_id=(name.encode().hex() * 64)[:64],
        name=name,
        image="busybox:latest",
        state=state,
        created_at=timezone.now(),
        team=team,
        host="fake",
    )


# Every URL that accepts a POST, with a body that would act if the token were not checked.
def _post_targets(
    c: ContainerMirror, image: ImageMirror, team: Team, user_pk: int, job_pk: int
) -> list[tuple[str, dict[str, object]]]:
    cid = c.engine_id
    return [
        ("/login/", {"username": "root", "password": "pw-root-12345"}),
        ("/logout/", {}),
        (
            "/password/",
            {
                "old_password": "pw-root-12345",
                "new_password1": "Another-pw-987",
                "new_password2": "Another-pw-987",
            },
        ),
        ("/containers/bulk/", {"action": "kill", "ids": [cid], "confirmed": "on"}),
        ("/containers/create/", {"team": str(team.pk), "image": "busybox", "count": "1"}),
        *[
            (f"/containers/{cid}/action/{verb}/", {})
            for verb in ("start", "stop", "restart", "kill", "pause", "unpause", "remove")
        ],
        (f"/containers/{cid}/rename/", {"name": "renamed"}),
        (f"/containers/{cid}/commit/", {"reference": "snap:v1"}),
        (f"/jobs/{job_pk}/cancel/", {}),
        (
            "/images/tag/",
            {"mode": "tag", "value": "v2", "ids": [image.engine_id], "confirmed": "on"},
        ),
        ("/images/remove/", {"ids": [image.engine_id], "confirmed": "on"}),
        ("/images/import/", {"team": str(team.pk)}),
        ("/networks/create/", {"team": str(team.pk), "name": "net1"}),
        ("/networks/remove/", {"ids": ["net1"]}),
        ("/volumes/create/", {"team": str(team.pk), "name": "vol1"}),
        ("/volumes/remove/", {"ids": ["vol1"]}),
        ("/users/", {"username": "mallory", "password": "long-enough-pw"}),
        (f"/users/{user_pk}/", {"change": "deactivate"}),
        ("/teams/", {"name": "evil"}),
        (f"/teams/{team.pk}/", {"username": "root", "role": "viewer"}),
    ]


def test_every_form_refuses_a_post_without_the_csrf_token(users: object) -> None:
    """Each POST endpoint answers 403 without a token, and nothing is written."""
    team = users.team  # type: ignore[attr-defined]
    c = _container("csrf-target", team)
    image = ImageMirror.objects.create(
        engine_id="sha256:" + "e" * 64, repo_tags=["app:v1"], team=team, host="fake"
    )
    job = Job.objects.create(verb="kill", user=users.site_admin, team=team, total=1)  # type: ignore[attr-defined]
    client = Client(enforce_csrf_checks=True)
    client.force_login(users.site_admin)  # type: ignore[attr-defined]
    audit_before, jobs_before = AuditEntry.objects.count(), Job.objects.count()
    for url, body in _post_targets(c, image, team, users.viewer.pk, job.pk):  # type: ignore[attr-defined]
        response = client.post(url, body)
        assert response.status_code == 403, f"{url} answered {response.status_code}"
    assert AuditEntry.objects.count() == audit_before
    assert Job.objects.count() == jobs_before
    assert not Team.objects.filter(name="evil").exists()
    assert users.viewer.__class__.objects.get(pk=users.viewer.pk).is_active  # type: ignore[attr-defined]


def test_every_post_form_on_every_page_carries_the_csrf_token(users: object) -> None:
    team = users.team  # type: ignore[attr-defined]
    _container("form-page", team)
    ImageMirror.objects.create(
        engine_id="sha256:" + "f" * 64, repo_tags=["app:v1"], team=team, host="fake"
    )
    job = Job.objects.create(verb="kill", user=users.site_admin, team=team, total=1)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(users.site_admin)  # type: ignore[attr-defined]
    pages = [
        "/",
        "/containers/",
        "/containers/create/",
        "/images/",
        "/images/import/",
        "/jobs/",
        f"/jobs/{job.pk}/",
        "/events/",
        "/audit/",
        "/users/",
        f"/users/{users.viewer.pk}/",
        "/teams/",
        f"/teams/{team.pk}/",
        "/password/",  # type: ignore[attr-defined]
        "/networks/",
        "/volumes/",
    ]
    forms_seen = 0
    for url in pages:
        html = client.get(url).content.decode()
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", html, re.S | re.I):
            forms_seen += 1
            assert 'name="csrfmiddlewaretoken"' in form, f"a form on {url} has no CSRF token"
    assert forms_seen >= 10


def test_session_cookies_are_http_only_and_same_site(users: object) -> None:
    client = Client()
    form = client.get("/login/")
    assert form.cookies["csrftoken"]["samesite"] == "Lax"
    response = client.post("/login/", {"username": "red-viewer", "password": "pw-viewer-12345"})
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"


def _login(client: Client, password: str, addr: str = "10.0.0.1") -> int:
    return client.post(
        "/login/", {"username": "red-viewer", "password": password}, REMOTE_ADDR=addr
    ).status_code


def test_five_failed_sign_ins_lock_that_user_from_that_address(users: object) -> None:
    client = Client()
    for _ in range(5):
        assert _login(client, "wrong-password") == 200
    # The right password no longer helps from this address for this user...
    assert _login(client, "pw-viewer-12345") == 429
    assert "_auth_user_id" not in client.session
    assert (
        "Too many failed sign-ins"
        in client.post(
            "/login/", {"username": "red-viewer", "password": "x"}, REMOTE_ADDR="10.0.0.1"
        ).content.decode()
    )
    # ... but another address, or another user from the same address, is unaffected.
    assert _login(Client(), "pw-viewer-12345", addr="10.0.0.2") == 302
    other = Client().post(
        "/login/",
        {"username": "red-operator", "password": "pw-operator-12345"},
        REMOTE_ADDR="10.0.0.1",
    )
    assert other.status_code == 302


def test_a_successful_sign_in_clears_the_failure_count(users: object) -> None:
    client = Client()
    for _ in range(4):
        _login(client, "wrong-password")
    assert _login(client, "pw-viewer-12345") == 302
    client.logout()
    for _ in range(4):
        assert _login(client, "wrong-password") == 200
    assert _login(client, "pw-viewer-12345") == 302


def test_a_viewer_forging_a_kill_gets_403_and_nothing_is_queued(users: object) -> None:
    c = _container("precious", users.team)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(users.viewer)  # type: ignore[attr-defined]
    assert client.post(f"/containers/{c.engine_id}/action/kill/").status_code == 403
    assert (
        client.post(
            "/containers/bulk/", {"action": "kill", "ids": [c.engine_id], "confirmed": "on"}
        ).status_code
        == 403
    )
    assert Job.objects.count() == 0
    denied = AuditEntry.objects.filter(verb="kill", result="denied")
    assert denied.count() == 2 and denied.first().username == "red-viewer"  # type: ignore[union-attr]


def test_an_outsider_asking_for_another_teams_container_gets_404(users: object) -> None:
    c = _container("red-secret", users.team)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(users.outsider)  # type: ignore[attr-defined]
    for url in (
        f"/containers/{c.engine_id}/",
        f"/containers/{c.engine_id}/logs/",
        f"/containers/{c.engine_id}/top/",
        f"/containers/{c.engine_id}/diff/",
        f"/containers/{c.engine_id[:12]}/",
        "/containers/red-secret/",
        f"/containers/create/?duplicate={c.engine_id}",
    ):
        assert client.get(url).status_code == 404, url
    for verb in ("kill", "remove", "start"):
        assert client.post(f"/containers/{c.engine_id}/action/{verb}/").status_code == 404
    assert client.post(f"/containers/{c.engine_id}/rename/", {"name": "x1"}).status_code == 404
    assert "red-secret" not in client.get("/containers/?all=on&q=red").content.decode()
    assert Job.objects.count() == 0


GARBAGE = [
    "\x00",
    "💥" * 3000,
    "'; DROP TABLE x; --",
    "-1",
    "9" * 40,
    "<script>x</script>",
    "a b c",
    "::::",
    "\n\n\n",
    "%s%n",
    "../../etc/passwd",
]
# For each field of the create form: values that must come back as an error on that field.
REFUSED = {
    "image": ["\x00", "a b", "<script>", "💥" * 300, "::::"],
    "name": ["-bad", "a b", "💥", "\x00", "x" * 200],
    "command": ['echo "unbalanced', "sleep\x00 1"],
    "entrypoint": ["'unbalanced", "\x00"],
    "env": ["=no-key", "A=1\n =x", "A\x00B=1"],
    "ports": ["99999:80", "abc", "80:80/xyz", "::::", "0:80"],
    "volumes": ["relative", "a:b:c:d", "vol:relative", "vol:/x:bogus"],
    "network": ["a b", "<script>", "-x"],
    "restart": ["sometimes", "on-failure:x", "always:3"],
    "memory": ["lots", "-1", "1k", "9" * 40 + "q"],
    "cpus": ["fast", "-1", "0", "1/0"],
    "labels": ["=x", "key with space=1"],
    "hostname": ["-bad", "a_b", "x" * 100, "a b"],
    "workdir": ["relative", "/tmp\x00"],
    "user": ["a b", "root:x:y", "💥"],
    "count": ["0", "-1", "51", "x", "9" * 40],
}


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_garbage_in_a_create_form_field_gives_a_field_error_not_a_500(
    users: object, field: str
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(users.operator)  # type: ignore[attr-defined]
    base = {"team": str(users.team.pk), "image": "busybox", "count": "1"}  # type: ignore[attr-defined]
    for junk in REFUSED[field]:
        response = client.post("/containers/create/", {**base, field: junk})
        assert response.status_code == 200, (field, junk, response.status_code)
        assert field in response.context["form"].errors, (field, junk)
    for junk in GARBAGE:  # anything at all: an answer, never a server error
        response = client.post("/containers/create/", {**base, field: junk})
        assert response.status_code in (200, 302, 400), (field, junk, response.status_code)


def test_garbage_in_the_team_choice_is_an_error_not_a_500(users: object) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(users.operator)  # type: ignore[attr-defined]
    for junk in ("x", "9" * 40, "-1", "99999"):
        response = client.post(
            "/containers/create/", {"team": junk, "image": "busybox", "count": "1"}
        )
        assert response.status_code == 200
        assert "There is no such team." in response.content.decode()
    assert Job.objects.count() == 0


def test_risky_options_forged_by_a_non_admin_are_refused_and_audited(users: object) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(users.admin)  # type: ignore[attr-defined]
    for forged in (
        {"privileged": "on"},
        {"cap_add": "SYS_ADMIN"},
        {"devices": "/dev/null"},
        {"pid_host": "on"},
        {"ipc_host": "on"},
    ):
        body = {"team": str(users.team.pk), "image": "busybox", "count": "1", **forged}  # type: ignore[attr-defined]
        assert client.post("/containers/create/", body).status_code == 403, forged
    for visible in ({"network": "host"}, {"volumes": "/etc:/host-etc"}):
        body = {"team": str(users.team.pk), "image": "busybox", "count": "1", **visible}  # type: ignore[attr-defined]
        response = client.post("/containers/create/", body)
        assert response.status_code == 200
        assert "site admins only" in response.content.decode()
    assert Job.objects.count() == 0
    assert AuditEntry.objects.filter(verb="create", result="denied").count() == 5


@pytest.mark.kernel
@pytest.mark.django_db(transaction=True)
def test_a_forged_kill_from_a_viewer_leaves_the_real_container_running(
    users: object, engine_containers: object, celery_worker: object
) -> None:
    """With a real worker listening, a job queued by mistake would run: none may be."""
    import time

    from runtime import containers

    cid = engine_containers.run("viewer-target", team=users.team)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(users.viewer)  # type: ignore[attr-defined]
    assert client.post(f"/containers/{cid}/action/kill/").status_code == 403
    assert (
        client.post(
            "/containers/bulk/", {"action": "kill", "ids": [cid], "confirmed": "on"}
        ).status_code
        == 403
    )
    time.sleep(2)  # long enough for the worker to have run anything it was sent
    assert containers.inspect(cid)["State"]["Status"] == "running"
    assert Job.objects.count() == 0
