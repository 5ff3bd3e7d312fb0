"""Volume actions for the dashboard: list, create, remove, inspect, who uses them.

Driver options (``type``/``device``/``o``) can mount host paths and devices, so they
count as a host bind mount in the permission table: site admins only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from containers_app import permissions
from containers_app.mirror import TEAM_LABEL
from containers_app.models import ContainerMirror, Job, Team, VolumeMirror
from containers_app.services import audit, jobs
from runtime.errors import InvalidSpec, NotFound

Target = VolumeMirror | str


def search(user: Any, q: str = "") -> QuerySet[VolumeMirror]:
    rows = permissions.visible(user, VolumeMirror.objects.all()).select_related("team")
    return rows.filter(name__icontains=q) if q else rows


def get(user: Any, ref: Target, verb: str = "view") -> VolumeMirror:
    if isinstance(ref, VolumeMirror):
        volume = ref
    else:
        volume = permissions.visible(user, VolumeMirror.objects.filter(name=ref)).first()
        if volume is None:
            raise NotFound(f"get {ref}: no such volume")
    permissions.check(user, verb, volume)
    return volume


def create(
    user: Any,
    team: Team | None,
    name: str = "",
    labels: dict[str, str] | None = None,
    driver_options: dict[str, str] | None = None,
    remote_addr: str | None = None,
) -> Job:
    from runtime.volumes.parsing import check_volume_name

    name = name.strip()
    if name:
        check_volume_name(name)  # InvalidSpec with Docker's reason
    labels = {k: v for k, v in (labels or {}).items() if k != TEAM_LABEL}
    if team is not None:
        labels[TEAM_LABEL] = str(team.pk)
    risky = [permissions.BIND_MOUNT] if driver_options else []
    try:
        permissions.check_owner(user, "volume.create", team, "create global volumes", risky)
    except PermissionDenied as e:
        audit.denied(
            user, "volume.create", [name or "(anonymous)"], e, remote_addr=remote_addr, team=team
        )
        raise
    options = {"name": name or None, "labels": labels, "options": dict(driver_options or {})}
    return jobs.start(
        user,
        "volume.create",
        [jobs.Item(name or "(new)", name, options)],
        team=team,
        options={"name": name},
        remote_addr=remote_addr,
    )


def bulk_remove(
    user: Any, targets: Iterable[Target], force: bool = False, remote_addr: str | None = None
) -> Job:
    chosen: list[VolumeMirror] = []
    try:
        for target in targets:
            chosen.append(get(user, target, "volume.remove"))
    except (PermissionDenied, NotFound) as e:
        audit.denied(
            user, "volume.remove", [v.name for v in chosen] + ["…"], e, remote_addr=remote_addr
        )
        raise
    if not chosen:
        raise InvalidSpec("Select at least one volume.")
    return jobs.start(
        user,
        "volume.remove",
        [jobs.Item(v.name, v.name) for v in chosen],
        team=jobs.common_team([v.team for v in chosen]),
        options={"force": bool(force)},
        remote_addr=remote_addr,
    )


def inspect(user: Any, ref: Target) -> dict[str, Any]:
    from runtime import volumes

    return volumes.get(get(user, ref, "inspect").name).inspect()


def used_by(user: Any, ref: Target) -> QuerySet[ContainerMirror]:
    """The visible containers (running or not) that mount the volume."""
    from runtime import volumes

    volume = get(user, ref)
    ids = volumes.usage().get(volume.name, [])
    return permissions.visible(user, ContainerMirror.objects.filter(engine_id__in=ids))
