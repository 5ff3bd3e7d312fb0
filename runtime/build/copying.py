"""COPY and ADD as build steps: sources, destination rules, cache key, then a layer.

Kernel interfaces: those of ``steps`` (read-only overlay views of images, the staging
dir, ``commit_layer``) and, for ``ADD <tar>``, ``runtime.archive``'s chrooted unpacker.
Follows Docker's rules: sources are relative to the context (or to the ``--from``
stage/image's root) and may not leave it; wildcards use filepath.Match; a directory
source copies its contents; a destination ending in ``/``, or one that is a directory in
the image, receives files under their own names; a relative destination is under
WORKDIR; ADD unpacks local tar archives and downloads URLs only when the build allows
it. Owns nothing on disk after the step returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import images, paths
from runtime.build import dockerfile as df
from runtime.build import steps
from runtime.build.context import Context
from runtime.errors import InvalidSpec, NotFound

if TYPE_CHECKING:
    from runtime.build.builder import _Builder, _Stage


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _source_image(builder: _Builder, ref: str) -> images.Image | None:
    for index, stage in enumerate(builder.stages[:-1]):
        if (stage.name and stage.name.lower() == ref.lower()) or ref == str(index):
            return stage.image
    try:
        return images.resolve(ref)
    except NotFound:
        raise NotFound(f"COPY --from={ref}: no stage or local image named {ref}") from None


def copy_step(builder: _Builder, stage: _Stage, ins: df.Instruction, add: bool) -> None:
    word = "ADD" if add else "COPY"
    env = stage.env()
    words = (
        [df.expand(w, env, builder.escape) for w in ins.json_args]
        if ins.json_args is not None
        else df.expand_words(ins.rest, env, builder.escape)
    )
    *sources, dest = words
    origin = ins.flag("from")
    if origin is not None and add:
        raise df.DockerfileError(ins.line, "ADD does not support the --from flag")
    chown, chmod = ins.flag("chown"), ins.flag("chmod")
    mode = None
    if chmod is not None:
        try:
            mode = int(chmod, 8)
        except ValueError:
            raise df.DockerfileError(ins.line, f"invalid chmod parameter: {chmod}") from None
    workdir = stage.config.get("WorkingDir") or "/"
    target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    target = posixpath.normpath(target)

    with contextlib.ExitStack() as stack:
        if origin is not None:
            root = stack.enter_context(steps.image_view(_source_image(builder, origin)))
            context = steps.context_for(root)
        else:
            context = builder.context
        downloads: Path | None = None
        rels: list[tuple[Context, str, bool]] = []  # (where, path, downloaded)
        for source in sources:
            if add and _is_url(source):
                if not builder.options.allow_urls:
                    raise InvalidSpec(
                        f"ADD {source}: downloading from a URL is turned off; "
                        "pass --allow-url-download to build to allow it"
                    )
                if downloads is None:
                    downloads = Path(
                        stack.enter_context(
                            tempfile.TemporaryDirectory(prefix="build-add-", dir=paths.tmp())
                        )
                    )
                name = steps.download(source, downloads).name
                rels.append((steps.context_for(downloads), name, True))
            else:
                rels.extend((context, rel, False) for rel in context.sources(source))
        if len(rels) > 1 and not wants_dir:
            raise InvalidSpec(
                f"When using {word} with more than one source file, the "
                "destination must be a directory and end with a /"
            )
        digest = hashlib.sha256()
        for ctx, rel, _ in rels:
            digest.update(ctx.checksum([rel]).encode())
        single_dir = len(rels) == 1 and rels[0][0].is_dir(rels[0][1])
        kind = "multi" if len(rels) > 1 else "dir" if single_dir else "file"
        flags = "".join(f"--{k}={v} " for k, v in ins.flags if k != "from")
        origin_part = f"--from={origin} " if origin is not None else ""
        key = f"#(nop) {word} {origin_part}{flags}{kind}:{digest.hexdigest()} in {dest} "

        def make_layer() -> object:
            with steps.image_view(stage.image) as view:
                owner = steps.resolve_owner(view, chown) if chown else None
                stager = steps.Stager(view, owner, mode)
                try:
                    into_dir = wants_dir or stager.is_dir_in_image(target)
                    for ctx, rel, downloaded in rels:
                        full = ctx.root / rel if rel else ctx.root
                        if ctx.is_dir(rel):
                            stager.copy_tree(
                                ctx.root, rel, ctx.included(rel), stager.ensure_dir(target)
                            )
                        elif add and not downloaded and steps.looks_like_archive(full):
                            # A local tar is unpacked; a downloaded one never is (Docker).
                            stager.add_archive(full, stager.ensure_dir(target))
                        else:
                            name = posixpath.basename(rel)
                            path = posixpath.join(target, name) if into_dir else target
                            stager.copy_tree(ctx.root, rel, [], stager.target(path))
                    return stager.commit(stage.image)
                finally:
                    stager.close()

        builder._commit(stage, key, f"/bin/sh -c {key}", make_layer)
