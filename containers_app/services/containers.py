"""Container actions for the dashboard: find, preview, act in bulk, create, read.

Mutations become Jobs carried out by the worker (``tasks.run_job``); reads (inspect,
logs, top) call the engine's read-only verbs in this process. Targets are mirror rows
or strings (engine id, unique id prefix, or name) looked up among the rows the user
may see, so another team's container is "No such container" whatever is typed.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from containers_app import permissions
from containers_app.models import (
    ContainerMirror,
    ContainerState,
    ImageMirror,
    Job,
    Team,
)
from containers_app.services import audit, jobs
from runtime import containers as engine
from runtime import images as engine_images
from runtime.errors import InvalidSpec, NotFound
from runtime.images import references
from runtime.spec import ContainerSpec, validate

BULK_VERBS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")
SORTS = {"created": "created_at", "name": "name", "image": "image", "state": "state"}
# The label that tells the mirror which team a container made by the dashboard is for.
TEAM_LABEL = "moorage.dashboard.team"
MAX_COUNT = 50

Target = ContainerMirror | str


def search(
    user: Any,
    q: str = "",
    state: str = "",
    image: str = "",
    label: str = "",
    team: Team | int | None = None,
    running_only: bool = False,
    order: str = "-created",
) -> QuerySet[ContainerMirror]:
    """The containers page's query: visible rows, filtered and sorted.

    ``order`` is a key of SORTS, "-" in front for descending. ``label`` is "key" or
    "key=value". The same arguments give "select all matching" its set.
    """
    rows = permissions.visible(user, ContainerMirror.objects.all()).select_related("team")
    if q:
        rows = rows.filter(
            Q(name__icontains=q)
            | Q(engine_id__startswith=q.lower())
            | Q(image__icontains=q)
            | Q(command__icontains=q)
        )
    if running_only:
        rows = rows.filter(
            state__in=[ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.RESTARTING]
        )
    if state:
        rows = rows.filter(state=state)
    if image:
        rows = rows.filter(Q(image=image) | Q(image_id=image) | Q(image__startswith=image + ":"))
    if label:
        key, sep, value = label.partition("=")
        rows = rows.filter(labels__has_key=key)
        if sep:
            rows = (
                rows.filter(**{f"labels__{key}": value})
                if key.isidentifier()
                else rows.filter(labels__icontains=f'"{key}": "{value}"')
            )
    if team is not None:
        rows = rows.filter(team_id=team.pk if isinstance(team, Team) else team)
    descending = order.startswith("-")
    field = SORTS.get(order.lstrip("-"), "created_at")
    return rows.order_by(("-" if descending else "") + field, "-id")


def find(user: Any, ref: Target) -> ContainerMirror:
    """The visible container ``ref`` names: a row, full id, name or unique id prefix."""
    if isinstance(ref, ContainerMirror):
        return ref
    ref = ref.strip().lstrip("/")
    rows = permissions.visible(user, ContainerMirror.objects.select_related("team"))
    found = rows.filter(Q(engine_id=ref) | Q(name=ref)).first()
    if found is None and ref and all(c in "0123456789abcdef" for c in ref):
        matches = list(rows.filter(engine_id__startswith=ref)[:2])
        if len(matches) == 1:
            found = matches[0]
    if found is None:
        raise NotFound(f"No such container: {ref}")
    return found


def get(user: Any, ref: Target, verb: str = "view") -> ContainerMirror:
    """``find`` plus the permission check for ``verb`` (NotFound for other teams)."""
    container = find(user, ref)
    permissions.check(user, verb, container)
    return container


@dataclass(frozen=True)
class PreviewRow:
    container: ContainerMirror
    allowed: bool
    note: str  # what will happen, or why it will not


def _expected(verb: str, c: ContainerMirror, options: dict[str, Any]) -> str:
    active = c.state in (ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.RESTARTING)
    if verb == "start":
        return "already running: nothing to do" if active else "will be started"
    if verb == "stop":
        return "will be stopped" if active else "not running: nothing to do"
    if verb == "restart":
        return "will be restarted" if active else "will be started"
    if verb == "kill":
        return (
            f"will get SIG{options.get('signal', 'KILL')}"
            if active
            else "not running: kill will fail"
        )
    if verb == "pause":
        return (
            "will be paused"
            if c.state == ContainerState.RUNNING
            else "not running: pause will fail"
        )
    if verb == "unpause":
        return (
            "will be unpaused"
            if c.state == ContainerState.PAUSED
            else "not paused: unpause will fail"
        )
    if verb == "remove":
        if active and not options.get("force"):
            return "running: removal will fail (stop it first or use force)"
        return "will be killed and removed" if active else "will be removed"
    raise ValueError(f"not a bulk verb: {verb}")


def preview(
    user: Any, verb: str, targets: Iterable[Target], options: dict[str, Any] | None = None
) -> list[PreviewRow]:
    """What ``bulk`` would do to each target, without doing anything."""
    rows = []
    roles = permissions.team_roles(user)
    for target in targets:
        container = find(user, target)
        try:
            permissions.check(user, verb, container, roles=roles)
        except PermissionDenied as e:
            rows.append(PreviewRow(container, False, f"not allowed: {e}"))
            continue
        rows.append(PreviewRow(container, True, _expected(verb, container, options or {})))
    return rows


def _clean_options(verb: str, options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    clean: dict[str, Any] = {}
    if verb == "remove":
        clean = {"force": bool(options.get("force")), "volumes": bool(options.get("volumes"))}
    elif verb in ("stop", "restart") and options.get("timeout") not in (None, ""):
        try:
            clean["timeout"] = int(options["timeout"])
        except (TypeError, ValueError):
            raise InvalidSpec("The timeout must be a whole number of seconds.") from None
        if not 0 <= clean["timeout"] <= 3600:
            raise InvalidSpec("The timeout must be between 0 and 3600 seconds.")
    elif verb == "kill":
        sig = str(options.get("signal") or "KILL").upper().removeprefix("SIG")
        if not (sig.isalnum() and len(sig) <= 10):
            raise InvalidSpec(f"Invalid signal: {options.get('signal')}")
        clean["signal"] = sig
    return clean


def bulk(
    user: Any,
    verb: str,
    targets: Iterable[Target],
    options: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> Job:
    """One Job for ``verb`` on every target. All targets must be allowed, or nothing runs
    (PermissionDenied / NotFound, audited as denied)."""
    if verb not in BULK_VERBS:
        raise InvalidSpec(f"Unknown action: {verb}")
    clean = _clean_options(verb, options)
    chosen: list[ContainerMirror] = []
    roles = permissions.team_roles(user)
    try:
        for target in targets:
            container = find(user, target)
            permissions.check(user, verb, container, roles=roles)
            chosen.append(container)
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, verb, [c.name for c in chosen] + ["…"], e, remote_addr=remote_addr)
        raise
    if not chosen:
        raise InvalidSpec("Select at least one container.")
    items = [jobs.Item(c.engine_id, c.name) for c in chosen]
    return jobs.start(
        user,
        verb,
        items,
        team=jobs.common_team([c.team for c in chosen]),
        options=clean,
        remote_addr=remote_addr,
    )


def act(
    user: Any,
    verb: str,
    ref: Target,
    options: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> Job:
    """One action on one container (a job with one item)."""
    return bulk(user, verb, [ref], options, remote_addr)


def rename(user: Any, ref: Target, new_name: str, remote_addr: str | None = None) -> Job:
    new_name = new_name.strip().lstrip("/")
    if not new_name:
        raise InvalidSpec("Give the container a new name.")
    try:
        container = get(user, ref, "rename")
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, "rename", [str(ref)], e, remote_addr=remote_addr)
        raise
    return jobs.start(
        user,
        "rename",
        [jobs.Item(container.engine_id, container.name, {"name": new_name})],
        team=container.team,
        options={"name": new_name},
        remote_addr=remote_addr,
    )


def risky_options(spec: ContainerSpec) -> list[str]:
    """The permission table's risky options that ``spec`` uses."""
    found = []
    if spec.privileged:
        found.append(permissions.PRIVILEGED)
    if spec.cap_add:
        found.append(permissions.CAP_ADD)
    if spec.devices:
        found.append(permissions.DEVICES)
    if spec.network_mode == "host":
        found.append(permissions.HOST_NETWORK)
    if spec.pid_mode == "host":
        found.append(permissions.HOST_PID)
    if spec.ipc_mode == "host":
        found.append(permissions.HOST_IPC)
    binds = [v for v in spec.volumes if v.startswith("/") and ":" in v]
    binds += [m for m in spec.mounts if "type=bind" in m.replace(" ", "").split(",")]
    if binds:
        found.append(permissions.BIND_MOUNT)
    return found


def _check_image_visible(user: Any, ref: str) -> None:
    """Another team's image is "not found" for this user, as its containers are."""
    try:
        image_id = engine_images.resolve(ref).id
    except NotFound:
        return  # the engine says so itself, at create
    mirror = ImageMirror.objects.filter(engine_id=image_id).first()
    if mirror is not None:
        permissions.check(user, "view", mirror)


def create(
    user: Any,
    team: Team | None,
    spec_options: dict[str, Any],
    count: int = 1,
    start: bool = True,
    remote_addr: str | None = None,
) -> Job:
    """Create (and by default start) ``count`` containers for ``team`` as one Job.

    ``spec_options`` are ContainerSpec keyword arguments. The spec is validated here, so
    bad input fails before anything is queued (InvalidSpec, HTTP 400); the engine
    validates again at create. ``team`` None makes global containers (site admins only).
    """
    if not 1 <= count <= MAX_COUNT:
        raise InvalidSpec(f"The count must be between 1 and {MAX_COUNT}.")
    try:
        spec = ContainerSpec(**spec_options)
    except TypeError as e:
        raise InvalidSpec(f"Unknown container option: {e}") from None
    labels = dict(spec.labels)
    labels.pop(TEAM_LABEL, None)  # nobody picks a team by label
    if team is not None:
        labels[TEAM_LABEL] = str(team.pk)
    spec = validate(dataclasses.replace(spec, labels=labels))
    risky = risky_options(spec)
    shown = [spec.name or spec.image]
    try:
        permissions.check_owner(user, "create", team, "create global containers", risky)
        _check_image_visible(user, spec.image)
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, "create", shown, e, remote_addr=remote_addr, team=team)
        raise
    items = []
    for n in range(1, count + 1):
        name = f"{spec.name}-{n}" if spec.name and count > 1 else spec.name
        one = spec.to_json() | {"name": name}
        items.append(jobs.Item(spec.image, name or spec.image, {"spec": one}))
    options = {"start": start, "count": count, "image": spec.image, "risky": risky}
    return jobs.start(user, "create", items, team=team, options=options, remote_addr=remote_addr)


def commit(
    user: Any, ref: Target, reference: str = "", message: str = "", remote_addr: str | None = None
) -> Job:
    """Queue ``docker commit`` of the container into an image of the container's team."""
    reference = reference.strip()
    if reference:
        parsed = references.parse(reference)  # InvalidSpec with the reason
        if parsed.digest is not None:
            raise InvalidSpec(f"refusing to create a tag with a digest reference: {reference}")
    try:
        container = get(user, ref, "commit")
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, "commit", [str(ref)], e, remote_addr=remote_addr)
        raise
    options = {"reference": reference, "message": message.strip(), "author": user.get_username()}
    return jobs.start(
        user,
        "commit",
        [jobs.Item(container.engine_id, container.name, options)],
        team=container.team,
        options={"reference": reference},
        remote_addr=remote_addr,
    )


def diff(user: Any, ref: Target) -> list[tuple[str, str]]:
    """``docker diff``: (kind letter C/A/D, path) for each change to the container's files."""
    from runtime.images.commit import diff as engine_diff

    return [(str(c)[0], c.path) for c in engine_diff(get(user, ref, "diff").engine_id)]


def inspect(user: Any, ref: Target) -> dict[str, Any]:
    return engine.inspect(get(user, ref, "inspect").engine_id)


def logs(user: Any, ref: Target, tail: int = 200) -> str:
    """A static tail of the log, stdout and stderr interleaved as written."""
    container = get(user, ref, "logs")
    entries = engine.logs(container.engine_id, tail=tail)
    return "".join(e.data.decode("utf-8", "replace") for e in entries)


def top(user: Any, ref: Target) -> tuple[list[str], list[list[str]]]:
    return engine.top(get(user, ref, "top").engine_id)


def run_command(user: Any, ref: Target) -> str:
    """A ``moorage run`` command line that makes a container like this one."""
    spec = ContainerSpec.from_json(inspect_record(user, ref)["spec"])
    argv = ["moorage", "run", "-d"]
    if spec.name:
        argv += ["--name", spec.name]
    for key, value in spec.labels.items():
        if key != TEAM_LABEL:
            argv += ["--label", f"{key}={value}"]
    for env in spec.env:
        argv += ["-e", env]
    flags: tuple[tuple[str, str | None], ...] = (
        ("--hostname", spec.hostname),
        ("--workdir", spec.workdir),
        ("--user", spec.user),
        ("--network", spec.network_mode if spec.network_mode != "bridge" else None),
    )
    for flag, given in flags:
        if given:
            argv += [flag, given]
    for port in spec.publish:
        argv += ["-p", port]
    for volume in spec.volumes:
        argv += ["-v", volume]
    if spec.restart_policy != "no":
        policy = spec.restart_policy
        argv += ["--restart", f"{policy}:{spec.restart_max}" if spec.restart_max else policy]
    if spec.memory:
        argv += ["--memory", str(spec.memory)]
    if spec.nano_cpus:
        argv += ["--cpus", f"{spec.nano_cpus / 1e9:g}"]
    if spec.entrypoint is not None:
        argv += ["--entrypoint", " ".join(spec.entrypoint)]
    argv.append(spec.image)
    argv += list(spec.cmd or ())
    return shlex.join(argv)


def inspect_record(user: Any, ref: Target) -> dict[str, Any]:
    """The engine's stored record (spec included) of a visible container."""
    return engine.store.load(get(user, ref, "inspect").engine_id).to_json()


def duplicate_initial(user: Any, ref: Target) -> dict[str, Any]:
    """The container's spec as keyword arguments, to prefill the create form."""
    spec = ContainerSpec.from_json(inspect_record(user, ref)["spec"])
    values = spec.to_json()
    values["labels"] = {k: v for k, v in spec.labels.items() if k != TEAM_LABEL}
    values["name"] = None
    return values
