"""Copy the engine's state into the mirror tables, and record what changed as events.

Runs in the Celery worker (root): after every job item (``sync_container``,
``sync_images``) and once a second from beat (``sync_all``), so a container created,
stopped or removed with the ``moorage`` CLI shows within two seconds. Reads the engine
through its public listing verbs only; never writes engine state (listing containers
lets the engine reconcile a dead monitor, which is the engine's own business).

Team ownership: a container made by the dashboard carries the label
``moorage.dashboard.team`` (set by ``services.containers.create``); images take the
team their import or commit job gives them (``claim``). Everything else is global.

A full resync lists the engine first and then touches only rows it has not seen
refreshed since: a row a task wrote after the listing began is newer than the listing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from containers_app.consumers import events as live
from containers_app.models import (
    ContainerMirror,
    EngineEvent,
    ImageMirror,
    NetworkMirror,
    Team,
    VolumeMirror,
)
from runtime import containers as engine_containers
from runtime import images as engine_images
from runtime import volumes as engine_volumes
from runtime.errors import NotFound
from runtime.images import config as image_config
from runtime.network import verbs as network_verbs

log = logging.getLogger(__name__)

TEAM_LABEL = "moorage.dashboard.team"
# Rows of other hosts (and rows tests make up with another host name) are never touched.
HOST = "local"
CONTAINER_FIELDS = (
    "name",
    "image",
    "image_id",
    "command",
    "state",
    "exit_code",
    "created_at",
    "started_at",
    "finished_at",
    "ports",
    "pid",
    "restart_count",
    "labels",
)
# state change → the docker events action it shows as
ACTIONS = {("paused", "running"): "unpause", ("running", "paused"): "pause"}


def _when(seconds: float) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _team_id(labels: dict[str, str], known: set[int]) -> int | None:
    value = labels.get(TEAM_LABEL, "")
    return int(value) if value.isdigit() and int(value) in known else None


def container_fields(record: Any, st: Any) -> dict[str, Any]:
    """The mirror's columns for one engine (Record, State) pair."""
    return {
        "name": record.name,
        "image": record.image_ref,
        "image_id": record.image_id,
        "command": " ".join(record.argv)[:4000],
        "state": st.status,
        "exit_code": st.exit_code,
        "created_at": _when(record.created),
        "started_at": _when(st.started_at),
        "finished_at": _when(st.finished_at),
        "ports": ", ".join(record.spec.publish)[:500],
        "pid": st.pid,
        "restart_count": st.restart_count,
        "labels": dict(record.labels),
    }


def _event(
    kind: str, action: str, actor_id: str, name: str, team_id: int | None, **attributes: Any
) -> EngineEvent:
    return EngineEvent(
        kind=kind,
        action=action,
        actor_id=actor_id,
        actor_name=name,
        team_id=team_id,
        attributes=attributes,
    )


def _state_event(old: str, new: str) -> str | None:
    if old == new:
        return None
    if (old, new) in ACTIONS:
        return ACTIONS[(old, new)]
    if new in ("running", "restarting"):
        return "start" if new == "running" else "restart"
    if new in ("exited", "dead") and old in ("running", "paused", "restarting"):
        return "die"
    return None


def _apply_container(
    row: ContainerMirror | None,
    fields: dict[str, Any],
    cid: str,
    team_ids: set[int],
    events: list[EngineEvent],
) -> ContainerMirror | None:
    """Insert or update one row (in memory); return it if it needs saving."""
    if row is None:
        row = ContainerMirror(engine_id=cid, team_id=_team_id(fields["labels"], team_ids), **fields)
        events.append(_event("container", "create", cid, row.name, row.team_id, image=row.image))
        if row.state == "running":
            events.append(_event("container", "start", cid, row.name, row.team_id))
        return row
    changed = [f for f in CONTAINER_FIELDS if getattr(row, f) != fields[f]]
    if not changed:
        return None
    action = _state_event(row.state, fields["state"])
    if action:
        extra = {"exitCode": fields["exit_code"]} if action == "die" else {}
        events.append(_event("container", action, cid, fields["name"], row.team_id, **extra))
    if row.name != fields["name"]:
        events.append(
            _event("container", "rename", cid, fields["name"], row.team_id, oldName=row.name)
        )
    for f in changed:
        setattr(row, f, fields[f])
    return row


def sync_container(cid: str) -> ContainerMirror | None:
    """Bring one container's row up to date (or delete it if the engine has none)."""
    try:
        return _sync_container_once(cid)
    except IntegrityError:
        # The periodic resync inserted this row between our look and our insert (two
        # inserters race on PostgreSQL; SQLite serialises them): now it is an update.
        return _sync_container_once(cid)


def _sync_container_once(cid: str) -> ContainerMirror | None:
    team_ids = set(Team.objects.values_list("pk", flat=True))
    events: list[EngineEvent] = []
    with transaction.atomic():
        row = ContainerMirror.objects.select_for_update().filter(engine_id=cid, host=HOST).first()
        try:
            record = engine_containers.store.load(cid)
            st = engine_containers.reconcile(cid)
        except (NotFound, FileNotFoundError):
            if row is not None:
                events.append(_event("container", "destroy", cid, row.name, row.team_id))
                row.delete()
                gone_now = [live.change(row, removed=True)]
                transaction.on_commit(lambda: live.publish(gone_now))
            EngineEvent.objects.bulk_create(events)
            return None
        saved = _apply_container(row, container_fields(record, st), cid, team_ids, events)
        if saved is not None:
            saved.synced_at = timezone.now()
            saved.save()
            changed_now = [live.change(saved)]
            transaction.on_commit(lambda: live.publish(changed_now))
        elif row is not None:
            ContainerMirror.objects.filter(pk=row.pk).update(synced_at=timezone.now())
        EngineEvent.objects.bulk_create(events)
    return saved or row


def sync_containers() -> int:
    """Full resync of containers; returns how many rows changed."""
    began = timezone.now()
    listed = engine_containers.list_containers(all=True)
    team_ids = set(Team.objects.values_list("pk", flat=True))
    rows = {r.engine_id: r for r in ContainerMirror.objects.filter(host=HOST)}
    events: list[EngineEvent] = []
    to_create: list[ContainerMirror] = []
    to_update: list[ContainerMirror] = []
    for record, st in listed:
        row = rows.get(record.id)
        if row is not None and row.synced_at >= began:
            continue  # a task refreshed it after our listing: ours is older
        saved = _apply_container(row, container_fields(record, st), record.id, team_ids, events)
        if saved is None:
            continue
        saved.synced_at = timezone.now()
        (to_create if row is None else to_update).append(saved)
    seen = {record.id for record, _ in listed}
    gone = [r for cid, r in rows.items() if cid not in seen and r.synced_at < began]
    removed: list[dict[str, Any]] = []  # live.change() of rows this sync deleted
    with transaction.atomic():
        ContainerMirror.objects.bulk_create(to_create, ignore_conflicts=True)
        if to_update:
            ContainerMirror.objects.bulk_update(to_update, [*CONTAINER_FIELDS, "synced_at"])
        for r in gone:
            # Only if nothing refreshed it meanwhile (a create that raced our listing).
            if ContainerMirror.objects.filter(pk=r.pk, synced_at__lt=began).delete()[0]:
                events.append(_event("container", "destroy", r.engine_id, r.name, r.team_id))
                removed.append(live.change(r, removed=True))
        EngineEvent.objects.bulk_create(events)
    live.publish([live.change(r) for r in to_create + to_update] + removed)
    return len(to_create) + len(to_update) + len(gone)


def _image_created(text: str) -> datetime | None:
    try:
        return _when(image_config.timestamp_ns(text) / 1e9) if text else None
    except (ValueError, TypeError):
        return None


def sync_images() -> int:
    """Full resync of images; returns how many rows changed."""
    began = timezone.now()
    listed = engine_images.list_images(all=True)
    rows = {r.engine_id: r for r in ImageMirror.objects.filter(host=HOST)}
    events: list[EngineEvent] = []
    changed = 0
    with transaction.atomic():
        for image in listed:
            tags = list(image.repo_tags)
            row = rows.get(image.id)
            if row is None:
                ImageMirror.objects.get_or_create(
                    engine_id=image.id,
                    defaults={
                        "repo_tags": tags,
                        "tags_text": " ".join(tags),
                        "size": image.size,
                        "created_at": _image_created(image.created),
                        "labels": (image.config.get("config") or {}).get("Labels") or {},
                    },
                )
                events.append(_event("image", "create", image.id, tags[0] if tags else "", None))
                changed += 1
                continue
            if row.repo_tags != tags:
                for tag in set(tags) - set(row.repo_tags):
                    events.append(_event("image", "tag", image.id, tag, row.team_id))
                for tag in set(row.repo_tags) - set(tags):
                    events.append(_event("image", "untag", image.id, tag, row.team_id))
                ImageMirror.objects.filter(pk=row.pk).update(
                    repo_tags=tags,
                    tags_text=" ".join(tags),
                    size=image.size,
                    synced_at=timezone.now(),
                )
                changed += 1
        seen = {i.id for i in listed}
        for image_id, row in rows.items():
            if (
                image_id not in seen
                and ImageMirror.objects.filter(pk=row.pk, synced_at__lt=began).delete()[0]
            ):
                events.append(_event("image", "delete", image_id, str(row), row.team_id))
                changed += 1
        EngineEvent.objects.bulk_create(events)
    return changed


def claim(
    model: type[ImageMirror] | type[NetworkMirror] | type[VolumeMirror],
    team: Team | None,
    **key: str,
) -> None:
    """Give a newly made object to ``team`` (after the job that made it synced it)."""
    model.objects.filter(**key).update(team=team)


def sync_networks() -> int:
    listed = network_verbs.list_networks()
    team_ids = set(Team.objects.values_list("pk", flat=True))
    rows = {r.engine_id: r for r in NetworkMirror.objects.filter(host=HOST)}
    changed = 0
    with transaction.atomic():
        for net in listed:
            fields = {
                "name": net.name,
                "driver": net.driver,
                "subnet": net.subnet,
                "gateway": net.gateway,
                "labels": dict(net.labels),
            }
            row = rows.get(net.id)
            if row is None:
                team_id = _team_id(net.labels, team_ids)
                NetworkMirror.objects.get_or_create(
                    engine_id=net.id, defaults={**fields, "team_id": team_id}
                )
                changed += 1
            elif any(getattr(row, k) != v for k, v in fields.items()):
                NetworkMirror.objects.filter(pk=row.pk).update(**fields, synced_at=timezone.now())
                changed += 1
        seen = {n.id for n in listed}
        changed += NetworkMirror.objects.filter(host=HOST).exclude(engine_id__in=seen).delete()[0]
    return changed


def sync_volumes() -> int:
    listed = engine_volumes.list_volumes()
    team_ids = set(Team.objects.values_list("pk", flat=True))
    rows = {r.name: r for r in VolumeMirror.objects.filter(host=HOST)}
    changed = 0
    with transaction.atomic():
        for vol in listed:
            fields = {
                "driver": vol.driver,
                "labels": dict(vol.labels),
                "created_at": _when(vol.created),
                "mountpoint": str(vol.mountpoint),
                "team_id": _team_id(vol.labels, team_ids),
            }
            if vol.name not in rows:
                VolumeMirror.objects.get_or_create(name=vol.name, defaults=fields)
                changed += 1
        seen = {v.name for v in listed}
        changed += VolumeMirror.objects.filter(host=HOST).exclude(name__in=seen).delete()[0]
    return changed


def sync_all() -> dict[str, int]:
    """Resync every mirror table; returns the number of changed rows per kind."""
    return {
        "containers": sync_containers(),
        "images": sync_images(),
        "networks": sync_networks(),
        "volumes": sync_volumes(),
    }
