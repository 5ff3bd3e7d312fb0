"""Every page of the dashboard renders for a signed-in user, from made-up mirror rows.

These tests need no worker: mirror rows use host "fake" so a running beat leaves them be.
Pages that read the engine (container detail, logs, top) are covered with real
containers in test_container_pages.py and the browser tests.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from containers_app.models import (
    AuditEntry,
    ContainerMirror,
    EngineEvent,
    ImageMirror,
    Job,
    JobItem,
)

pytestmark = pytest.mark.django_db


def _container(name: str, team: object, state: str = "running", **extra: object) -> ContainerMirror:
    return ContainerMirror.objects.create(
        engine_id=(name.encode().hex() * 64)[:64],
        name=name,
        image="busybox:latest",
        state=state,
        created_at=timezone.now(),
        team=team,
        host="fake",
        **extra,
    )


@pytest.fixture
def signed_in(users: object) -> Client:
    client = Client()
    client.force_login(users.operator)  # type: ignore[attr-defined]
    return client


def test_anonymous_visitors_are_sent_to_the_sign_in_page(client: Client) -> None:
    for url in ("/", "/containers/", "/images/", "/jobs/", "/audit/", "/events/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_the_admin_sign_in_page_sends_people_to_the_throttled_one(client: Client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/"


def test_dashboard_shows_counts_by_state_and_host_facts(users: object, signed_in: Client) -> None:
    _container("web-1", users.team)  # type: ignore[attr-defined]
    _container("web-2", users.team, state="exited")  # type: ignore[attr-defined]
    _container("secret", users.other_team)  # type: ignore[attr-defined]
    page = signed_in.get("/").content.decode()
    assert 'id="host-facts"' in page
    assert "Kernel" in page and "Cgroup version" in page and "Memory" in page
    assert '<div class="stat">2</div>' in page  # the other team's container is not counted


def test_containers_page_lists_running_ones_and_all_on_request(
    users: object, signed_in: Client
) -> None:
    _container("alive-box", users.team)  # type: ignore[attr-defined]
    _container("exited-box", users.team, state="exited")  # type: ignore[attr-defined]
    _container("secret-box", users.other_team)  # type: ignore[attr-defined]
    running = signed_in.get("/containers/").content.decode()
    assert "alive-box" in running and "exited-box" not in running and "secret-box" not in running
    every = signed_in.get("/containers/?all=on").content.decode()
    assert "alive-box" in every and "exited-box" in every and "secret-box" not in every


def test_containers_page_searches_filters_sorts_and_pages(users: object, signed_in: Client) -> None:
    for n in range(60):
        _container(f"box-{n:02d}", users.team, labels={"class": "cs101" if n % 2 else "cs102"})  # type: ignore[attr-defined]
    page = signed_in.get("/containers/?q=box-0&sort=name").content.decode()
    assert page.index("box-00") < page.index("box-09")
    assert "box-10" not in page
    labelled = signed_in.get("/containers/?label=class=cs101&sort=-name").content.decode()
    assert "box-59" in labelled and "box-58" not in labelled
    first = signed_in.get("/containers/?sort=name").content.decode()
    second = signed_in.get("/containers/?sort=name&page=2").content.decode()
    assert "box-00" in first and "box-55" not in first
    assert "box-55" in second and "Page 2 of 2" in second


def test_containers_page_survives_garbage_in_its_query(signed_in: Client) -> None:
    response = signed_in.get("/containers/?page=zz&sort=';drop&state=<x>&all=maybe&team=%00")
    assert response.status_code == 200


def test_bulk_preview_says_what_will_happen_to_each_container(
    users: object, signed_in: Client
) -> None:
    a = _container("one", users.team)  # type: ignore[attr-defined]
    b = _container("two", users.team, state="exited")  # type: ignore[attr-defined]
    response = signed_in.post(
        "/containers/bulk/", {"action": "kill", "ids": [a.engine_id, b.engine_id]}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "will get SIGKILL" in page and "kill will fail" in page
    assert Job.objects.count() == 0  # a preview runs nothing


def test_select_all_matching_previews_every_matching_container(
    users: object, signed_in: Client
) -> None:
    for n in range(55):
        _container(f"many-{n}", users.team)  # type: ignore[attr-defined]
    _container("other-name", users.team)  # type: ignore[attr-defined]
    response = signed_in.post(
        "/containers/bulk/",
        {
            "action": "stop",
            "select_all_matching": "on",
            "filter_q": "many-",
        },
    )
    page = response.content.decode()
    assert page.count('name="ids"') == 55
    assert "other-name" not in page


def test_images_page_lists_and_searches_images(users: object, signed_in: Client) -> None:
    ImageMirror.objects.create(
        engine_id="sha256:" + "a" * 64,
        repo_tags=["app:v1"],
        tags_text="app:v1",
        team=users.team,
        host="fake",
    )  # type: ignore[attr-defined]
    ImageMirror.objects.create(
        engine_id="sha256:" + "b" * 64,
        repo_tags=["other:v1"],
        tags_text="other:v1",
        team=users.team,
        host="fake",
    )  # type: ignore[attr-defined]
    page = signed_in.get("/images/?q=app").content.decode()
    assert "app:v1" in page and "other:v1" not in page


def test_bulk_tag_preview_shows_each_new_reference(users: object, signed_in: Client) -> None:
    image = ImageMirror.objects.create(
        engine_id="sha256:" + "c" * 64,
        repo_tags=["app:v1"],
        tags_text="app:v1",
        team=users.team,
        host="fake",
    )  # type: ignore[attr-defined]
    page = signed_in.post(
        "/images/tag/", {"mode": "prefix", "value": "registry.local/red", "ids": [image.engine_id]}
    ).content.decode()
    assert "registry.local/red/app:v1" in page
    assert Job.objects.count() == 0


def test_job_page_shows_progress_and_the_final_report(users: object, signed_in: Client) -> None:
    job = Job.objects.create(
        verb="kill",
        user=users.operator,
        team=users.team,
        total=2,  # type: ignore[attr-defined]
        done=2,
        failed=1,
        state="failed",
    )
    JobItem.objects.create(job=job, position=0, target="x" * 64, label="one", state="succeeded")
    JobItem.objects.create(
        job=job,
        position=1,
        target="y" * 64,
        label="two",
        state="failed",
        error="Container two is not running.",
    )
    page = signed_in.get(f"/jobs/{job.pk}/").content.decode()
    assert "Container two is not running." in page and 'id="job-report"' in page
    assert "hx-trigger" not in page.split('id="job-progress"')[1].split(">")[0]
    assert f"#{job.pk}" in signed_in.get("/jobs/").content.decode()


def test_a_running_job_polls_its_progress(users: object, signed_in: Client) -> None:
    job = Job.objects.create(
        verb="stop",
        user=users.operator,
        team=users.team,
        total=3,  # type: ignore[attr-defined]
        done=1,
        state="running",
    )
    page = signed_in.get(f"/jobs/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in page and "1 of 3 done" in page


def test_events_and_audit_pages_list_entries(users: object, signed_in: Client) -> None:
    EngineEvent.objects.create(
        kind="container", action="start", actor_id="f" * 64, actor_name="evented", team=users.team
    )  # type: ignore[attr-defined]
    AuditEntry.objects.create(
        user=users.operator,
        username="red-operator",
        verb="kill",  # type: ignore[attr-defined]
        targets=["evented"],
        result="accepted",
    )
    assert "evented" in signed_in.get("/events/?kind=container").content.decode()
    audit = signed_in.get("/audit/?action=kill&user=red-operator").content.decode()
    assert "evented" in audit
    assert signed_in.get("/audit/?since=not-a-date&page=-3").status_code == 200


def test_networks_and_volumes_pages_answer(signed_in: Client) -> None:
    for url in ("/networks/", "/volumes/"):
        response = signed_in.get(url)
        assert response.status_code in (200, 501), url
        if response.status_code == 501:
            assert 'id="not-available"' in response.content.decode()


def test_create_form_offers_risky_options_only_to_site_admins(users: object) -> None:
    client = Client()
    client.force_login(users.operator)  # type: ignore[attr-defined]
    page = client.get("/containers/create/").content.decode()
    assert 'name="image"' in page and 'name="count"' in page
    assert 'name="privileged"' not in page and 'name="cap_add"' not in page
    client.force_login(users.site_admin)  # type: ignore[attr-defined]
    page = client.get("/containers/create/").content.decode()
    assert 'name="privileged"' in page and 'name="cap_add"' in page and 'name="devices"' in page


def test_users_and_teams_pages_let_a_site_admin_manage_members(users: object) -> None:
    client = Client()
    client.force_login(users.site_admin)  # type: ignore[attr-defined]
    assert (
        client.post("/users/", {"username": "newbie", "password": "long-enough-pw"}).status_code
        == 302
    )
    response = client.post("/teams/", {"name": "green"})
    assert response.status_code == 302
    team_url = response["Location"]
    assert client.post(team_url, {"username": "newbie", "role": "viewer"}).status_code == 302
    assert "newbie" in client.get(team_url).content.decode()
    verbs = set(AuditEntry.objects.values_list("verb", flat=True))
    assert {"user.create", "team.create", "team.member"} <= verbs


def test_importing_a_tarball_queues_an_import_job_for_the_chosen_team(
    users: object, signed_in: Client
) -> None:
    import io
    import tarfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"), io.BytesIO(b""))
    upload = SimpleUploadedFile("rootfs.tar", data.getvalue(), "application/x-tar")
    response = signed_in.post(
        "/images/import/",
        {"team": str(users.team.pk), "reference": "imported:v1", "tarball": upload},  # type: ignore[attr-defined]
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.verb == "image.import" and job.team == users.team  # type: ignore[attr-defined]
    assert response["Location"] == f"/jobs/{job.pk}/"


def test_creating_networks_and_volumes_queues_jobs(users: object) -> None:
    client = Client()
    client.force_login(users.admin)  # type: ignore[attr-defined]
    team = str(users.team.pk)  # type: ignore[attr-defined]
    assert client.get("/volumes/create/").status_code == 200
    assert client.post("/volumes/create/", {"team": team, "name": "data1"}).status_code == 302
    assert (
        client.post(
            "/networks/create/", {"team": team, "name": "net1", "subnet": "not-a-subnet"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/networks/create/", {"team": team, "name": "net1", "subnet": "172.31.7.0/24"}
        ).status_code
        == 302
    )
    assert sorted(Job.objects.values_list("verb", flat=True)) == ["network.create", "volume.create"]


def test_bulk_remove_preview_lists_images_and_queues_nothing(
    users: object, signed_in: Client
) -> None:
    image = ImageMirror.objects.create(
        engine_id="sha256:" + "9" * 64,
        repo_tags=["old:v0"],
        tags_text="old:v0",
        team=users.team,
        host="fake",
    )  # type: ignore[attr-defined]
    page = signed_in.post("/images/remove/", {"ids": [image.engine_id]}).content.decode()
    assert "old:v0" in page and 'id="remove-confirm"' in page
    assert Job.objects.count() == 0
    confirmed = signed_in.post("/images/remove/", {"ids": [image.engine_id], "confirmed": "on"})
    assert confirmed.status_code == 302 and Job.objects.get().verb == "image.remove"


def test_cancelling_a_queued_job_from_its_page_ends_it_at_once(
    users: object, signed_in: Client
) -> None:
    job = Job.objects.create(verb="stop", user=users.operator, team=users.team, total=1)  # type: ignore[attr-defined]
    JobItem.objects.create(job=job, position=0, target="z" * 64, label="slowpoke")
    assert f'action="/jobs/{job.pk}/cancel/"' in signed_in.get(f"/jobs/{job.pk}/").content.decode()
    response = signed_in.post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    job.refresh_from_db()
    assert job.state == "cancelled" and job.items.get().state == "cancelled"
    assert "Cancel the rest" not in signed_in.get(f"/jobs/{job.pk}/").content.decode()
