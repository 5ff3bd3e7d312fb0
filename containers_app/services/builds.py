"""Image builds for the dashboard: a pasted Dockerfile or an uploaded context, as a Job.

Web side (``build``): check the options and the permission (``image.build`` in the team
that will own the image), keep an uploaded context as a private file in the engine's
tmp dir, and queue one job item. Worker side (``run_build``, in tasks.ACTIONS): unpack
the context with the engine (``runtime.build.Context.from_tar`` refuses entries that
would escape it), run ``runtime.build.build`` with its output going to the job's live
stream, and record a failure with the step it happened in and the exit code.

Uploads are untrusted: a size cap (``settings.MOORAGE_MAX_BUILD_CONTEXT``, bytes), a
Dockerfile path that must stay inside the context (symlinks included), and nothing of
the context is ever read in the web process.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied

from containers_app import permissions
from containers_app.models import Job, JobItem, Team
from containers_app.services import audit, jobs
from containers_app.services.image_output import Writer
from containers_app.services.registries import new_image_for
from runtime import paths, units
from runtime.errors import InvalidSpec, KernelError, MoorageError
from runtime.images import references, store

MAX_DOCKERFILE = 64 * 1024
DEFAULT_MAX_CONTEXT = 256 * 1024 * 1024
STAGE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,127}$")
BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def max_context() -> int:
    return int(getattr(settings, "MOORAGE_MAX_BUILD_CONTEXT", DEFAULT_MAX_CONTEXT))


def check_tags(tags: Sequence[str]) -> list[str]:
    """The tags as familiar names; InvalidSpec naming the first bad one."""
    shown = []
    for tag in tags:
        parsed = references.parse(tag)
        if parsed.digest is not None:
            raise InvalidSpec(f"refusing to create a tag with a digest reference: {tag}")
        shown.append(references.familiar(parsed))
    return shown


def check_dockerfile_path(path: str) -> str:
    path = path.strip() or "Dockerfile"
    pure = PurePosixPath(path)
    if "\x00" in path or pure.is_absolute() or ".." in pure.parts or len(path) > 255:
        raise InvalidSpec("The Dockerfile path must be a relative path inside the context.")
    return str(pure)


def build(
    user: Any,
    team: Team | None,
    *,
    dockerfile: str = "",
    context: IO[bytes] | None = None,
    dockerfile_path: str = "Dockerfile",
    tags: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    no_cache: bool = False,
    target: str = "",
    remote_addr: str | None = None,
) -> Job:
    """Queue a build of ``dockerfile`` (text) or of the tar ``context`` for ``team``."""
    if bool(dockerfile.strip()) == (context is not None):
        raise InvalidSpec("Paste a Dockerfile or upload a build context (one of the two).")
    if len(dockerfile.encode()) > MAX_DOCKERFILE:
        raise InvalidSpec(f"The Dockerfile is larger than {MAX_DOCKERFILE // 1024} KiB.")
    shown = check_tags(tags)
    args = dict(build_args or {})
    if any(not BUILD_ARG.match(k) for k in args):
        raise InvalidSpec("A build argument name uses letters, digits and '_'.")
    if target and not STAGE.match(target):
        raise InvalidSpec(f"{target!r} is not a stage name.")
    options = {
        "tags": shown,
        "build_args": sorted(args),
        "no_cache": bool(no_cache),
        "target": target,
        "dockerfile": check_dockerfile_path(dockerfile_path),
        "source": "upload" if context is not None else "pasted",
    }
    try:
        permissions.check_owner(user, "image.build", team, "build global images")
    except PermissionDenied as e:
        audit.denied(
            user,
            "image.build",
            shown or ["(untagged)"],
            e,
            remote_addr=remote_addr,
            team=team,
            options=options,
        )
        raise
    spec: dict[str, Any] = {**options, "build_args": args}
    if context is not None:
        spec["context_path"] = _keep_upload(context)
    else:
        spec["dockerfile_text"] = dockerfile
    label = ", ".join(shown) or "(untagged image)"
    return jobs.start(
        user,
        "image.build",
        [jobs.Item(label, label, spec)],
        team=team,
        options=options,
        remote_addr=remote_addr,
    )


def _keep_upload(upload: IO[bytes]) -> str:
    """Copy the upload to a private file for the worker, refusing it past the cap."""
    limit = max_context()
    fd, path = tempfile.mkstemp(prefix="build-upload-", suffix=".tar", dir=paths.tmp())
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            chunks = (
                upload.chunks()
                if hasattr(upload, "chunks")
                else iter(lambda: upload.read(1 << 20), b"")
            )
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise InvalidSpec(
                        f"The build context is larger than {units.human_size(limit)}."
                    )
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


# --- in the worker --------------------------------------------------------------------


def _dockerfile_only(text: str) -> io.BytesIO:
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _inside(root: Path, name: str) -> str:
    """``name`` relative to the context root, refusing a Dockerfile (or a symlink to
    one) outside it: the engine would read whatever host file it names."""
    root = root.resolve()
    real = (root / name).resolve()
    if not real.is_relative_to(root):
        raise InvalidSpec(f"The Dockerfile {name} leads outside the build context.")
    return str(real.relative_to(root))


def run_build(item: JobItem, options: dict[str, Any]) -> str:
    from runtime.build import BuildOptions, Context, StepFailed
    from runtime.build import build as engine_build

    spec = item.options
    out = Writer(item.job_id)
    existed = set(store.image_ids())
    upload = spec.get("context_path")
    try:
        try:
            if upload:
                with open(upload, "rb") as source:
                    context = Context.from_tar(source)
            else:
                context = Context.from_tar(_dockerfile_only(spec.get("dockerfile_text", "")))
        except OSError as e:
            raise KernelError.from_oserror("read the uploaded build context", e) from e
        finally:
            if upload:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(upload)
        with context:
            dockerfile = _inside(context.root, spec.get("dockerfile") or "Dockerfile")
            out.output(
                f"Sending build context to Docker daemon  {units.human_size(context.size())}\n"
            )
            result = engine_build(
                context,
                BuildOptions(
                    tags=tuple(spec.get("tags") or ()),
                    dockerfile=dockerfile,
                    build_args=dict(spec.get("build_args") or {}),
                    no_cache=bool(spec.get("no_cache")),
                    target=spec.get("target") or None,
                ),
                out.output,
            )
        new_image_for(item.job, result.image_id, existed)
        out.done(
            {
                "image": result.image_id,
                "tags": list(result.tags),
                "steps": result.steps,
                "cached": result.cached,
            }
        )
        return result.image_id
    except StepFailed as e:
        out.failed(str(e), e.code)
        raise StepFailed(f"{out.step or 'A step'} failed (exit code {e.code}): {e}", e.code) from e
    except MoorageError as e:
        out.failed(str(e))
        raise
    finally:
        out.close()
