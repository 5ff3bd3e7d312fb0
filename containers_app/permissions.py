"""Who may do what: one table from (verb, risky option) to the team roles allowed.

Every view, service and consumer asks ``check`` (or ``can``) and scopes its querysets
with ``visible``; nothing else decides access. The rules:

- A site admin (``is_superuser``) may do everything, risky options included.
- Anyone else acts through a role in the team that owns the object. Global objects
  (``team`` null) are readable by every signed-in user and otherwise site-admin only:
  for them everyone is a viewer.
- An object of a team the user is not in does not exist for that user: ``check``
  raises ``runtime.errors.NotFound`` (HTTP 404), never PermissionDenied (HTTP 403),
  so ids of other teams' containers cannot be probed.
- Risky options (host bind mounts, privileged, host network/pid/ipc, devices, added
  capabilities) are site-admin only: their rows name no role.
- A (verb, option) pair missing from the table is refused: the table fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet

from containers_app.models import AuditEntry, Job, Membership, Team
from runtime.errors import NotFound

# A request's user (a User, an AnonymousUser, or the lazy object wrapping one).
User: TypeAlias = Any

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"  # Role's values
RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}

READ = frozenset({VIEWER, OPERATOR, ADMIN})
OPERATE = frozenset({OPERATOR, ADMIN})
MANAGE = frozenset({ADMIN})
SITE_ADMIN_ONLY: frozenset[str] = frozenset()

# Risky options: what a form or a spec asks for that can own the host.
BIND_MOUNT, PRIVILEGED, HOST_NETWORK, HOST_PID, HOST_IPC, DEVICES, CAP_ADD = (
    "bind_mount",
    "privileged",
    "host_network",
    "host_pid",
    "host_ipc",
    "devices",
    "cap_add",
)
RISKY_OPTIONS = (BIND_MOUNT, PRIVILEGED, HOST_NETWORK, HOST_PID, HOST_IPC, DEVICES, CAP_ADD)
RISKY_LABELS = {
    BIND_MOUNT: "host bind mounts",
    PRIVILEGED: "--privileged",
    HOST_NETWORK: "--network host",
    HOST_PID: "--pid host",
    HOST_IPC: "--ipc host",
    DEVICES: "--device",
    CAP_ADD: "--cap-add",
}

# THE table. Keys are (verb, None) for the verb itself and (verb, option) for each risky
# option a request may carry; values are the team roles allowed.
PERMISSIONS: dict[tuple[str, str | None], frozenset[str]] = {
    # reading, any kind of object
    ("view", None): READ,
    ("inspect", None): READ,
    ("logs", None): READ,
    ("top", None): READ,
    ("diff", None): READ,
    ("stats", None): READ,
    # containers
    ("start", None): OPERATE,
    ("stop", None): OPERATE,
    ("restart", None): OPERATE,
    ("kill", None): OPERATE,
    ("pause", None): OPERATE,
    ("unpause", None): OPERATE,
    ("remove", None): OPERATE,
    ("rename", None): OPERATE,
    ("create", None): OPERATE,  # obj is the team the new container will belong to
    ("exec", None): OPERATE,  # exec and the browser terminal
    ("attach", None): OPERATE,
    ("commit", None): OPERATE,
    # images
    ("image.tag", None): OPERATE,
    ("image.remove", None): OPERATE,
    ("image.import", None): OPERATE,  # obj is the team the image will belong to
    ("image.pull", None): OPERATE,  # obj is the team the pulled image will belong to
    ("image.build", None): OPERATE,  # obj is the team the built image will belong to
    ("image.push", None): MANAGE,  # it leaves the host, with the registry's credentials
    # networks and volumes
    ("network.create", None): MANAGE,
    ("network.remove", None): MANAGE,
    ("network.connect", None): OPERATE,
    ("volume.create", None): OPERATE,
    ("volume.remove", None): MANAGE,
    # the dashboard itself
    ("job.view", None): READ,
    ("job.cancel", None): OPERATE,  # the job's own user may always cancel it
    ("audit.view", None): MANAGE,  # team admins see their teams' entries
    ("team.manage", None): SITE_ADMIN_ONLY,
    ("user.manage", None): SITE_ADMIN_ONLY,
    ("registry.manage", None): SITE_ADMIN_ONLY,  # registry entries and their credentials
    # risky options: site admins only, whatever the verb
    **{
        (verb, option): SITE_ADMIN_ONLY
        for verb in ("create", "exec", "network.connect")
        for option in RISKY_OPTIONS
    },
    ("volume.create", BIND_MOUNT): SITE_ADMIN_ONLY,  # driver options mount host paths
}
VERBS = frozenset(verb for verb, _ in PERMISSIONS)


def _kind(obj: Any) -> str:
    name = type(obj).__name__.removesuffix("Mirror").lower()
    return {"engineevent": "event", "auditentry": "audit entry"}.get(name, name)


def _ident(obj: Any) -> str:
    for attr in ("name", "short_id", "pk"):
        value = getattr(obj, attr, None)
        if value:
            return str(value)
    return "?"


def team_roles(user: User) -> dict[int, str]:
    """team id → the user's role in it (one query; not cached, so never stale)."""
    if not user.is_authenticated:
        return {}
    return dict(Membership.objects.filter(user_id=user.pk).values_list("team_id", "role"))


def is_site_admin(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_superuser", False))


def _team_of(obj: Any) -> tuple[bool, int | None]:
    """(has an owner field, team id) for a model object, a Team, or None."""
    if obj is None:
        return False, None
    if isinstance(obj, Team):
        return True, obj.pk
    if isinstance(obj, Model) and hasattr(obj, "team_id"):
        return True, obj.team_id
    raise TypeError(f"permissions cannot tell who owns a {type(obj).__name__}")


def role_for(user: User, obj: Any = None, roles: dict[int, str] | None = None) -> str | None:
    """The user's role for ``obj``: in its team; viewer of global objects; for no object,
    the best role the user holds in any team. None: the object is not visible."""
    owned, team_id = _team_of(obj)
    roles = team_roles(user) if roles is None else roles
    if not owned:
        return max(roles.values(), key=RANK.__getitem__, default=None)
    if team_id is None:
        if isinstance(obj, Team):
            return None
        if isinstance(obj, Job):  # a job without a team is its user's alone
            return OPERATOR if obj.user_id == user.pk else None
        return VIEWER
    return roles.get(team_id)


def check(
    user: User,
    verb: str,
    obj: Any = None,
    options: Iterable[str] = (),
    roles: dict[int, str] | None = None,
) -> None:
    """Return if ``user`` may do ``verb`` to ``obj`` with ``options``; raise otherwise.

    Raises NotFound when ``obj`` belongs to a team the user is not in, PermissionDenied
    when the user sees it but the role (or site-admin status, for risky options) falls
    short. ``obj`` is a mirror row, a Job, a Team (for ``create``/``image.import``:
    the team that will own the new object) or None. ``roles`` (``team_roles(user)``)
    saves a query per call when checking many objects in one request.
    """
    options = tuple(options)
    if (verb, None) not in PERMISSIONS:
        raise ValueError(f"unknown verb {verb!r}; add it to permissions.PERMISSIONS")
    if not user.is_authenticated or not user.is_active:
        raise PermissionDenied("Sign in first.")
    if is_site_admin(user):
        return
    role = role_for(user, obj, roles)
    if role is None and obj is not None:
        if isinstance(obj, Team):
            raise PermissionDenied(f"You are not a member of team {obj.name}.")
        raise NotFound(f"No such {_kind(obj)}: {_ident(obj)}")
    if isinstance(obj, Job) and obj.user_id == user.pk and verb in {"job.view", "job.cancel"}:
        return
    if role not in PERMISSIONS[(verb, None)]:
        where = ""
        if isinstance(obj, Team) or getattr(obj, "team_id", None):
            where = f" in team {obj.name if isinstance(obj, Team) else obj.team}"
        held = f"Your role{where} ({role})" if role else "You have no role that"
        raise PermissionDenied(f"{held} does not allow {verb.replace('.', ' ')}.")
    for option in options:
        if role not in PERMISSIONS.get((verb, option), SITE_ADMIN_ONLY):
            label = RISKY_LABELS.get(option, option)
            raise PermissionDenied(f"Only site administrators may use {label}.")


def check_owner(
    user: User, verb: str, team: Team | None, global_what: str, options: Iterable[str] = ()
) -> None:
    """``check`` for making something that ``team`` will own; without a team the thing is
    global, which only site administrators may make ("Only site administrators may
    <global_what>.")."""
    if team is None and not is_site_admin(user):
        raise PermissionDenied(f"Only site administrators may {global_what}.")
    check(user, verb, team, options)


def can(
    user: User,
    verb: str,
    obj: Any = None,
    options: Iterable[str] = (),
    roles: dict[int, str] | None = None,
) -> bool:
    """``check`` as a boolean, for templates and menus (not-visible is False too)."""
    try:
        check(user, verb, obj, options, roles)
    except (PermissionDenied, NotFound):
        return False
    return True


def allowed_risky_options(user: User) -> frozenset[str]:
    """The risky options a create form may offer this user."""
    return frozenset(RISKY_OPTIONS) if is_site_admin(user) else frozenset()


def teams_for(user: User, verb: str) -> QuerySet[Team]:
    """Teams in which ``user`` may do ``verb`` (e.g. where a new container may go)."""
    if is_site_admin(user):
        return Team.objects.all()
    allowed = PERMISSIONS[(verb, None)]
    ids = [team_id for team_id, role in team_roles(user).items() if role in allowed]
    return Team.objects.filter(pk__in=ids)


def visible(user: User, queryset: QuerySet[Any]) -> QuerySet[Any]:
    """``queryset`` narrowed to the rows ``user`` may see.

    Mirrors and events: the user's teams plus global rows. Jobs: the user's own and
    their teams'. Audit entries: the user's own, plus their teams' where they are admin.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if is_site_admin(user):
        return queryset
    roles = team_roles(user)
    mine = list(roles)
    if queryset.model is AuditEntry:
        managed = [team_id for team_id, role in roles.items() if role in MANAGE]
        return queryset.filter(Q(user_id=user.pk) | Q(team_id__in=managed))
    if queryset.model is Job:
        return queryset.filter(Q(user_id=user.pk) | Q(team_id__in=mine))
    if queryset.model is Team:
        return queryset.filter(pk__in=mine)
    return queryset.filter(Q(team__isnull=True) | Q(team_id__in=mine))
