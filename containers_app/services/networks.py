"""Network actions for the dashboard: list, create, remove, inspect, who uses them.

Networks made here carry the team label (as containers do), so the mirror gives them to
the team. The built-in networks (bridge, host, none) are global.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from containers_app import permissions
from containers_app.mirror import TEAM_LABEL
from containers_app.models import ContainerMirror, Job, NetworkMirror, Team
from containers_app.services import audit, jobs
from runtime.errors import InvalidSpec, NotFound

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
Target = NetworkMirror | str


def search(user: Any, q: str = "") -> QuerySet[NetworkMirror]:
    rows = permissions.visible(user, NetworkMirror.objects.all()).select_related("team")
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(engine_id__startswith=q.lower()))
    return rows


def find(user: Any, ref: Target) -> NetworkMirror:
    if isinstance(ref, NetworkMirror):
        return ref
    rows = permissions.visible(user, NetworkMirror.objects.select_related("team"))
    found = rows.filter(Q(engine_id=ref) | Q(name=ref)).first()
    if found is None and ref and all(c in "0123456789abcdef" for c in ref):
        matches = list(rows.filter(engine_id__startswith=ref)[:2])
        found = matches[0] if len(matches) == 1 else None
    if found is None:
        raise NotFound(f"network {ref} not found")
    return found


def get(user: Any, ref: Target, verb: str = "view") -> NetworkMirror:
    network = find(user, ref)
    permissions.check(user, verb, network)
    return network


def create(
    user: Any,
    team: Team | None,
    name: str,
    subnet: str = "",
    gateway: str = "",
    ip_range: str = "",
    internal: bool = False,
    labels: dict[str, str] | None = None,
    remote_addr: str | None = None,
) -> Job:
    name = name.strip()
    if not NAME.match(name):
        raise InvalidSpec(
            "A network name uses letters, digits, '_', '.' and '-', and starts "
            "with a letter or digit."
        )
    labels = {k: v for k, v in (labels or {}).items() if k != TEAM_LABEL}
    if team is not None:
        labels[TEAM_LABEL] = str(team.pk)
    try:
        permissions.check_owner(user, "network.create", team, "create global networks")
    except PermissionDenied as e:
        audit.denied(user, "network.create", [name], e, remote_addr=remote_addr, team=team)
        raise
    options = {
        "name": name,
        "subnet": subnet.strip(),
        "gateway": gateway.strip(),
        "ip_range": ip_range.strip(),
        "internal": bool(internal),
        "labels": labels,
    }
    return jobs.start(
        user,
        "network.create",
        [jobs.Item(name, name, options)],
        team=team,
        options={"name": name},
        remote_addr=remote_addr,
    )


def bulk_remove(user: Any, targets: Iterable[Target], remote_addr: str | None = None) -> Job:
    chosen: list[NetworkMirror] = []
    try:
        for target in targets:
            network = find(user, target)
            permissions.check(user, "network.remove", network)
            chosen.append(network)
    except (PermissionDenied, NotFound) as e:
        audit.denied(
            user, "network.remove", [n.name for n in chosen] + ["…"], e, remote_addr=remote_addr
        )
        raise
    if not chosen:
        raise InvalidSpec("Select at least one network.")
    return jobs.start(
        user,
        "network.remove",
        [jobs.Item(n.engine_id, n.name) for n in chosen],
        team=jobs.common_team([n.team for n in chosen]),
        remote_addr=remote_addr,
    )


def inspect(user: Any, ref: Target) -> dict[str, Any]:
    from runtime.network import verbs

    return verbs.inspect(get(user, ref, "inspect").engine_id)


def used_by(user: Any, ref: Target) -> QuerySet[ContainerMirror]:
    """The visible containers with an endpoint on the network."""
    from runtime.network import store

    network = get(user, ref)
    ids = store.containers_on(network.engine_id)
    return permissions.visible(user, ContainerMirror.objects.filter(engine_id__in=ids))
