"""Image actions for the dashboard: search, bulk tag, bulk remove, import a tarball.

Tags are computed here, before queueing, so the preview shows exactly what the worker
will write and a bad tag fails the form rather than the job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from containers_app import permissions
from containers_app.models import ImageMirror, Job, Team
from containers_app.services import audit, jobs
from runtime import images as engine
from runtime import paths
from runtime.errors import InvalidSpec, NotFound
from runtime.images import references

Target = ImageMirror | str
MAX_UPLOAD_CHUNK = 1 << 20


def search(user: Any, q: str = "", team: Team | int | None = None) -> QuerySet[ImageMirror]:
    rows = permissions.visible(user, ImageMirror.objects.all()).select_related("team")
    if q:
        q = q.strip()
        rows = rows.filter(
            Q(tags_text__icontains=q)
            | Q(engine_id__startswith="sha256:" + q.removeprefix("sha256:"))
        )
    if team is not None:
        rows = rows.filter(team_id=team.pk if isinstance(team, Team) else team)
    return rows


def find(user: Any, ref: Target) -> ImageMirror:
    """The visible image ``ref`` names: a row, id (prefix) or name[:tag]."""
    if isinstance(ref, ImageMirror):
        return ref
    ref = ref.strip()
    rows = permissions.visible(user, ImageMirror.objects.select_related("team"))
    hexpart = ref.removeprefix("sha256:")
    found = rows.filter(engine_id="sha256:" + hexpart).first()
    if found is None:
        try:
            name = str(references.parse(ref))
        except InvalidSpec:
            name = None
        if name:
            # repo_tags holds familiar names ("busybox:latest"); match on the text, then
            # confirm in Python (JSON containment is not portable to SQLite).
            familiar = references.familiar(name)
            for row in rows.filter(tags_text__icontains=familiar):
                if familiar in row.repo_tags:
                    found = row
                    break
    if found is None and hexpart and all(c in "0123456789abcdef" for c in hexpart):
        matches = list(rows.filter(engine_id__startswith="sha256:" + hexpart)[:2])
        if len(matches) == 1:
            found = matches[0]
    if found is None:
        raise NotFound(f"No such image: {ref}")
    return found


def get(user: Any, ref: Target, verb: str = "view") -> ImageMirror:
    image = find(user, ref)
    permissions.check(user, verb, image)
    return image


def new_reference(image: ImageMirror, tag: str | None = None, prefix: str | None = None) -> str:
    """The tag ``image`` gets: its repository with a new tag, or its name under a prefix.

    ``busybox:latest`` with tag "v2" → ``busybox:v2``; with prefix "registry.local/lab"
    → ``registry.local/lab/busybox:latest``. Raises InvalidSpec with the reason.
    """
    if bool(tag) == bool(prefix):
        raise InvalidSpec("Give either a tag or a repository prefix.")
    if not image.repo_tags:
        raise InvalidSpec(
            f"Image {image.short_id} has no name to derive a new tag from; tag it by hand first."
        )
    current = references.parse(image.repo_tags[0])
    if tag:
        candidate = f"{current.familiar_name}:{tag.strip()}"
    else:
        candidate = f"{(prefix or '').strip().rstrip('/')}/{references.familiar(current)}"
    parsed = references.parse(candidate)  # raises InvalidSpec with the reason
    if parsed.digest is not None:
        raise InvalidSpec(f"refusing to create a tag with a digest reference: {candidate}")
    return references.familiar(parsed)


def tag_preview(
    user: Any, images: Iterable[Target], tag: str | None = None, prefix: str | None = None
) -> list[tuple[ImageMirror, str | None, str | None]]:
    """(image, the new tag or None, the reason it cannot be tagged or None) per image."""
    rows: list[tuple[ImageMirror, str | None, str | None]] = []
    for target in images:
        image = find(user, target)
        try:
            permissions.check(user, "image.tag", image)
            rows.append((image, new_reference(image, tag, prefix), None))
        except (PermissionDenied, InvalidSpec) as e:
            rows.append((image, None, str(e)))
    return rows


def _chosen(
    user: Any, verb: str, targets: Iterable[Target], remote_addr: str | None
) -> list[ImageMirror]:
    chosen: list[ImageMirror] = []
    roles = permissions.team_roles(user)
    try:
        for target in targets:
            image = find(user, target)
            permissions.check(user, verb, image, roles=roles)
            chosen.append(image)
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, verb, [str(i) for i in chosen] + ["…"], e, remote_addr=remote_addr)
        raise
    if not chosen:
        raise InvalidSpec("Select at least one image.")
    return chosen


def bulk_tag(
    user: Any,
    images: Iterable[Target],
    tag: str | None = None,
    prefix: str | None = None,
    remote_addr: str | None = None,
) -> Job:
    """One Job adding a tag (or a prefixed name) to every image. A bad tag for any image
    fails here (InvalidSpec) and nothing is queued."""
    chosen = _chosen(user, "image.tag", images, remote_addr)
    items = [
        jobs.Item(i.engine_id, str(i), {"reference": new_reference(i, tag, prefix)}) for i in chosen
    ]
    options = {"tag": tag} if tag else {"prefix": prefix}
    return jobs.start(
        user,
        "image.tag",
        items,
        team=jobs.common_team([i.team for i in chosen]),
        options=options,
        remote_addr=remote_addr,
    )


def bulk_remove(
    user: Any, images: Iterable[Target], force: bool = False, remote_addr: str | None = None
) -> Job:
    chosen = _chosen(user, "image.remove", images, remote_addr)
    items = [jobs.Item(i.engine_id, str(i)) for i in chosen]
    return jobs.start(
        user,
        "image.remove",
        items,
        team=jobs.common_team([i.team for i in chosen]),
        options={"force": bool(force)},
        remote_addr=remote_addr,
    )


def import_tarball(
    user: Any,
    team: Team | None,
    fileobj: IO[bytes],
    reference: str | None = None,
    message: str = "",
    remote_addr: str | None = None,
) -> Job:
    """Queue ``docker import`` of an uploaded rootfs tarball as an image of ``team``.

    The upload is copied to a private file in the engine's tmp dir (same host as the
    worker); the worker imports it and deletes it.
    """
    reference = (reference or "").strip() or None
    if reference:
        parsed = references.parse(reference)
        if parsed.digest is not None:
            raise InvalidSpec(f"refusing to create a tag with a digest reference: {reference}")
    try:
        permissions.check_owner(user, "image.import", team, "import global images")
    except PermissionDenied as e:
        audit.denied(
            user, "image.import", [reference or "(untagged)"], e, remote_addr=remote_addr, team=team
        )
        raise
    fd, path = tempfile.mkstemp(prefix="upload-", suffix=".tar", dir=paths.tmp())
    with os.fdopen(fd, "wb") as out:
        chunks = (
            fileobj.chunks()
            if hasattr(fileobj, "chunks")
            else iter(lambda: fileobj.read(MAX_UPLOAD_CHUNK), b"")
        )
        for chunk in chunks:
            out.write(chunk)
    item = jobs.Item(
        path,
        reference or str(getattr(fileobj, "name", None) or "upload"),
        # Only a site admin's upload may carry setuid/setgid files into an image.
        {
            "path": path,
            "reference": reference,
            "message": message,
            "trusted": permissions.is_site_admin(user),
        },
    )
    return jobs.start(
        user,
        "image.import",
        [item],
        team=team,
        options={"reference": reference},
        remote_addr=remote_addr,
    )


def inspect(user: Any, ref: Target) -> dict[str, Any]:
    return engine.resolve(get(user, ref, "inspect").engine_id).inspect()


def history(user: Any, ref: Target) -> list[dict[str, Any]]:
    """The image's history entries, newest first (``docker history`` order)."""
    image = engine.resolve(get(user, ref, "inspect").engine_id)
    return list(reversed(image.config.get("history") or []))
