"""Reads of containers, and volumes and networks through jobs, on the real engine."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied

from containers_app.models import ContainerMirror, Job, JobState, NetworkMirror, VolumeMirror
from containers_app.services import containers as container_services
from containers_app.services import host as host_services
from containers_app.services import networks as network_services
from containers_app.services import volumes as volume_services
from runtime import volumes
from runtime.errors import NotFound

pytestmark = [pytest.mark.kernel]


@pytest.mark.django_db
def test_reads_show_a_teams_container_to_its_viewer_only(users, engine_containers) -> None:
    cid = engine_containers.run(
        "talker", "sh", "-c", "echo hello from busybox; sleep 600", team=users.team
    )
    row = ContainerMirror.objects.get(engine_id=cid)
    assert (row.team, row.state, row.image) == (users.team, "running", "busybox")

    assert container_services.inspect(users.viewer, "talker")["Id"] == cid
    titles, processes = container_services.top(users.viewer, cid[:12])
    assert "PID" in titles and any("sleep" in " ".join(p) for p in processes)
    command = container_services.run_command(users.viewer, "talker")
    assert command.startswith("moorage run -d --name talker --network none ")
    assert "moorage.dashboard.team" not in command
    assert container_services.duplicate_initial(users.viewer, "talker")["name"] is None
    for read in (container_services.inspect, container_services.logs):
        with pytest.raises(NotFound):
            read(users.outsider, "talker")


@pytest.mark.django_db
def test_logs_give_a_static_tail(users, engine_containers) -> None:
    cid = engine_containers.run("printer", "sh", "-c", "seq 1 500", team=users.team)
    engine_containers.cli("wait", cid)
    tail = container_services.logs(users.viewer, cid, tail=3)
    assert tail == "498\n499\n500\n"


@pytest.mark.django_db
def test_host_facts_and_counts(users, engine_containers) -> None:
    engine_containers.run("counted", team=users.team)
    host_services._CACHE.clear()  # disk use is cached for a minute; earlier tests filled it
    facts = host_services.facts()
    assert facts["cpus"] >= 1 and facts["memory"] > 0 and facts["kernel"]
    assert facts["disk"]["images"] > 0
    assert host_services.counts(users.viewer)["running"] >= 1
    assert host_services.counts(users.outsider).get("running", 0) == 0


@pytest.mark.usefixtures("celery_worker")
def test_volumes_are_created_for_the_team_and_removed(
    transactional_db: None, users, wait_for_job: Callable[..., Job]
) -> None:
    job = wait_for_job(volume_services.create(users.operator, users.team, "red-data"))
    assert job.state == JobState.SUCCEEDED, job.report()
    row = VolumeMirror.objects.get(name="red-data")
    assert row.team == users.team
    assert volume_services.inspect(users.viewer, "red-data")["Name"] == "red-data"
    with pytest.raises(NotFound):
        volume_services.get(users.outsider, "red-data")
    with pytest.raises(PermissionDenied):
        volume_services.bulk_remove(users.operator, ["red-data"])  # team admins only
    with pytest.raises(PermissionDenied, match="site administrators"):
        volume_services.create(
            users.admin,
            users.team,
            "host-etc",
            driver_options={"type": "none", "o": "bind", "device": "/etc"},
        )

    job = wait_for_job(volume_services.bulk_remove(users.admin, ["red-data"]))
    assert job.state == JobState.SUCCEEDED, job.report()
    assert not VolumeMirror.objects.filter(name="red-data").exists()
    with pytest.raises(NotFound):
        volumes.get("red-data")


@pytest.mark.usefixtures("celery_worker")
def test_networks_are_made_by_team_admins_and_removed(
    transactional_db: None, users, wait_for_job: Callable[..., Job]
) -> None:
    with pytest.raises(PermissionDenied):
        network_services.create(users.operator, users.team, "red-net")
    job = wait_for_job(network_services.create(users.admin, users.team, "red-net"))
    assert job.state == JobState.SUCCEEDED, job.report()
    try:
        row = NetworkMirror.objects.get(name="red-net")
        assert row.team == users.team and row.subnet
        assert network_services.inspect(users.viewer, "red-net")["Name"] == "red-net"
        with pytest.raises(NotFound):
            network_services.get(users.outsider, "red-net")
    finally:
        job = wait_for_job(network_services.bulk_remove(users.admin, ["red-net"]))
    assert job.state == JobState.SUCCEEDED, job.report()
    assert not NetworkMirror.objects.filter(name="red-net").exists()
