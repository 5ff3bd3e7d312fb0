"""Registries: entries with encrypted credentials, and pull/push jobs that use them.

Entries are managed by site admins (``registry.manage``). A password is stored only as a
Fernet token under a key derived from Django's SECRET_KEY with HKDF, so a copy of the
database alone does not give it away; it is decrypted in the worker when a job talks to
that registry, and never rendered, logged or put in a job's options. Changing SECRET_KEY
makes stored passwords unreadable: the job then says so and an admin enters them again.

Dashboard jobs use only these entries' credentials (anonymous otherwise), never the
credentials ``moorage login`` stored for root on the host: an operator must not borrow
the host admin's account. An entry's ``insecure`` flag allows plain HTTP after HTTPS
fails (loopback registries are always allowed it, as in the engine).

``run_pull``/``run_push``/``pull_if_missing`` run in the worker (tasks.ACTIONS); the
rest in the web process.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from containers_app import mirror, permissions
from containers_app.models import AuditResult, ImageMirror, Job, JobItem, RegistryEntry, Team
from containers_app.services import audit, jobs
from containers_app.services import images as image_services
from containers_app.services.image_output import Writer
from runtime import images as engine_images
from runtime import registry as engine_registry
from runtime.errors import InvalidSpec, MoorageError, NotFound
from runtime.images import references, store
from runtime.registry import endpoints

HKDF_INFO = b"moorage registry credentials v1"


# --- credentials at rest ----------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(password: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(password.encode()).decode()


def decrypt(entry: RegistryEntry) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(entry.password_token.encode()).decode()
    except InvalidToken:
        raise InvalidSpec(
            f"The stored password for registry {entry.domain} cannot be decrypted (the "
            "server's secret key changed?); a site admin must enter it again."
        ) from None


def domain_of(url: str) -> str:
    """The reference domain a registry URL serves: 'http://127.0.0.1:5000/' → '127.0.0.1:5000'."""
    domain = endpoints.server_domain(url)  # InvalidSpec for garbage
    try:
        references.parse(f"{domain}/probe")
    except InvalidSpec:
        raise InvalidSpec(
            f"{url!r} is not a registry address such as registry.local:5000."
        ) from None
    return domain


# --- entries (site admins) --------------------------------------------------------------


def entries(user: Any) -> list[RegistryEntry]:
    """Every entry (domains and usernames only matter to who may pull or push)."""
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return list(RegistryEntry.objects.all())


def check_manage(user: Any, verb: str, target: str, remote_addr: str | None) -> None:
    try:
        permissions.check(user, "registry.manage")
    except PermissionDenied as e:
        audit.denied(user, verb, [target], e, remote_addr=remote_addr)
        raise


def get_entry(user: Any, pk: int | str) -> RegistryEntry:
    permissions.check(user, "registry.manage")
    try:
        return RegistryEntry.objects.get(pk=int(pk))
    except (RegistryEntry.DoesNotExist, ValueError):
        raise NotFound(f"No such registry: {pk}") from None


def save(
    user: Any,
    *,
    url: str,
    username: str = "",
    password: str = "",
    insecure: bool = False,
    entry: RegistryEntry | None = None,
    remote_addr: str | None = None,
) -> RegistryEntry:
    """Create ``entry`` (None) or update it. An empty ``password`` keeps the stored one;
    no username clears it. The audit entry never carries the password."""
    verb = "registry.update" if entry else "registry.create"
    check_manage(user, verb, url, remote_addr)
    domain = domain_of(url)
    clash = RegistryEntry.objects.filter(domain=domain).exclude(pk=entry.pk if entry else None)
    if clash.exists():
        raise InvalidSpec(f"There is already an entry for registry {domain}.")
    entry = entry or RegistryEntry()
    changed_password = bool(password) or (not username and bool(entry.password_token))
    entry.url, entry.domain, entry.username = url.strip(), domain, username.strip()
    entry.insecure = bool(insecure)
    if not entry.username:
        entry.password_token = ""
    elif password:
        entry.password_token = encrypt(password)
    entry.updated_at = timezone.now()
    entry.save()
    audit.record(
        user,
        verb,
        [domain],
        AuditResult.SUCCEEDED,
        remote_addr=remote_addr,
        options={
            "url": entry.url,
            "username": entry.username,
            "insecure": entry.insecure,
            "password_changed": changed_password,
        },
    )
    return entry


def delete(user: Any, pk: int | str, remote_addr: str | None = None) -> None:
    check_manage(user, "registry.remove", f"registry {pk}", remote_addr)
    entry = get_entry(user, pk)
    entry.delete()
    audit.record(
        user, "registry.remove", [entry.domain], AuditResult.SUCCEEDED, remote_addr=remote_addr
    )


def session_for(reference: str) -> engine_registry.Registry:
    """A registry session for ``reference``'s domain with the entry's credentials, if any
    (worker side: this is where the password is decrypted)."""
    domain = references.parse(reference).domain
    entry = RegistryEntry.objects.filter(domain=domain).first()
    if entry is None:
        return engine_registry.Registry(domain, use_stored=False)
    auth = (entry.username, decrypt(entry)) if entry.username else None
    session = engine_registry.Registry(domain, auth=auth, use_stored=False)
    if entry.insecure:
        session.endpoint = dataclasses.replace(session.endpoint, insecure=True)
    return session


# --- pull and push jobs (web side) --------------------------------------------------------


def _reference(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidSpec(f"Enter the {what}.")
    return references.familiar(references.parse(text))  # InvalidSpec with the reason


def pull(user: Any, team: Team | None, reference: str, remote_addr: str | None = None) -> Job:
    """Queue a pull of ``reference`` into an image of ``team`` (None: global)."""
    reference = _reference(reference, "image to pull")
    try:
        permissions.check_owner(user, "image.pull", team, "pull global images")
    except PermissionDenied as e:
        audit.denied(user, "image.pull", [reference], e, remote_addr=remote_addr, team=team)
        raise
    return jobs.start(
        user,
        "image.pull",
        [jobs.Item(reference, reference)],
        team=team,
        options={"reference": reference},
        remote_addr=remote_addr,
    )


def push(user: Any, image: Any, target: str, remote_addr: str | None = None) -> Job:
    """Queue a push of the visible image ``image`` as ``target`` (tagged first if new)."""
    target = _reference(target, "repository to push to")
    if references.parse(target).digest is not None:
        raise InvalidSpec("cannot push a digest reference")
    try:
        row = image_services.get(user, image, "image.push")
        if target not in row.repo_tags:
            permissions.check(user, "image.tag", row)
    except (PermissionDenied, NotFound) as e:
        audit.denied(user, "image.push", [target], e, remote_addr=remote_addr)
        raise
    item = jobs.Item(target, target, {"source": row.engine_id})
    return jobs.start(
        user,
        "image.push",
        [item],
        team=row.team,
        options={"reference": target},
        remote_addr=remote_addr,
    )


# --- in the worker -------------------------------------------------------------------------


def new_image_for(job: Job, image_id: str, existed: set[str]) -> None:
    """Mirror the images now; an image this job made belongs to the job's team (one
    that was already there keeps its owner: a pull of busybox does not take it)."""
    mirror.sync_images()
    if image_id not in existed:
        mirror.claim(ImageMirror, job.team, engine_id=image_id)


def _pull(job: Job, reference: str, out: Writer) -> str:
    existed = set(store.image_ids())
    try:
        with session_for(reference) as session:
            pulled = engine_registry.pull(reference, progress=out.progress, registry=session)
    except MoorageError as e:
        out.failed(str(e))
        raise
    image_id = pulled[0].image_id
    new_image_for(job, image_id, existed)
    return image_id


def run_pull(item: JobItem, options: dict[str, Any]) -> str:
    out = Writer(item.job_id)
    try:
        image_id = _pull(item.job, item.target, out)
        out.done({"image": image_id, "reference": item.target})
        return image_id
    finally:
        out.close()


def run_push(item: JobItem, options: dict[str, Any]) -> str:
    out = Writer(item.job_id)
    try:
        source = item.options.get("source")
        if source and references.tags().get(str(references.parse(item.target))) != source:
            engine_images.tag(source, item.target)
            out.progress({"status": f"Tagged {source[:19]} as {item.target}"})
            mirror.sync_images()
        with session_for(item.target) as session:
            pushed = engine_registry.push(item.target, progress=out.progress, registry=session)
        out.done({"reference": item.target, "digest": pushed[0].digest})
        return pushed[0].digest
    except MoorageError as e:
        out.failed(str(e))
        raise
    finally:
        out.close()


def pull_if_missing(job: Job, reference: str) -> None:
    """Before a create job's container: pull its image when it is not here and the job's
    user may pull into the job's team (audited as a pull of its own). Otherwise leave the
    missing image to the engine's own "No such image" error."""
    try:
        engine_images.resolve(reference)
        return
    except NotFound:
        pass
    try:
        references.parse(reference)
    except InvalidSpec:
        return
    allowed = job.user is not None and (
        permissions.is_site_admin(job.user)
        or (job.team is not None and permissions.can(job.user, "image.pull", job.team))
    )
    if not allowed:
        return
    out = Writer(job.pk)
    result, detail = AuditResult.FAILED, "the pull did not finish"
    try:
        out.progress({"status": f"Unable to find image '{reference}' locally"})
        _pull(job, reference, out)
        result = AuditResult.SUCCEEDED
        detail = f"pulled for create job {job.pk}"
    except MoorageError as e:
        result, detail = AuditResult.FAILED, str(e)
        raise
    finally:
        out.close()
        audit.record(
            job.user, "image.pull", [reference], result, team=job.team, job=job, detail=detail
        )
