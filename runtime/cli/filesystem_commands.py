"""Handlers for the verbs on a container's filesystem: diff, commit, export, cp.

Each calls one function of ``runtime.images`` (``commit``, ``copying``) and prints what
the docker CLI prints: ``C /etc`` lines for diff, the new image id for commit, a tar on
stdout (never to a terminal) for export and ``cp ... -``, and, like docker 24+, ``cp``'s
``Successfully copied 12.3kB to DEST`` on stderr when stdout is a terminal and no ``-q``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtime import units
from runtime.errors import InvalidSpec
from runtime.images import commit, copying


def cmd_diff(args: argparse.Namespace) -> int:
    for change in commit.diff(args.container):
        print(change)
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    image = commit.commit(
        args.container,
        args.repository,
        message=args.message or "",
        author=args.author or "",
        changes_=args.change,
        pause=args.pause,
    )
    print(image.id)
    return 0


def _refuse_terminal(what: str) -> None:
    if sys.stdout.isatty():
        raise InvalidSpec(
            f"cowardly refusing to save {what} to a terminal. Use the -o flag or redirect"
        )


def cmd_export(args: argparse.Namespace) -> int:
    if args.output:
        tmp = f"{args.output}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as out:
                copying.export(args.container, out)
            os.replace(tmp, args.output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return 0
    _refuse_terminal("the export")
    copying.export(args.container, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def _split(arg: str) -> tuple[str | None, str]:
    """docker's splitCpArg: '/x', './x' and 'x' without ':' are local paths."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def _local_shown(path: str) -> str:
    """docker's resolveLocalPath: absolute and clean, but keeping a trailing '/' or '.'."""
    shown = os.path.abspath(path)
    if os.path.basename(path.rstrip("/") or "/") == "." and os.path.basename(shown) != ".":
        shown = shown.rstrip("/") + "/."
    if path.endswith("/") and not shown.endswith("/"):
        shown += "/"
    return shown


def _copied(args: argparse.Namespace, size: int, dest: str) -> None:
    # docker's cp is quiet unless its stdout is a terminal; -q makes it quiet anyway.
    if not args.quiet and sys.stdout.isatty():
        print(f"Successfully copied {units.human_size(size)} to {dest}", file=sys.stderr)


def cmd_cp(args: argparse.Namespace) -> int:
    src_container, src = _split(args.src)
    dest_container, dest = _split(args.dest)
    if src_container and dest_container:
        raise InvalidSpec("copying between containers is not supported")
    if not src_container and not dest_container:
        raise InvalidSpec("must specify at least one container source")
    if src_container:
        if not src:
            raise InvalidSpec("source path cannot be empty")
        if dest == "-":
            _refuse_terminal("the archive")
            copying.copy_out(
                src_container,
                src,
                sys.stdout.buffer,
                follow=args.follow_link,
                archive_mode=args.archive,
            )
            sys.stdout.buffer.flush()
        else:
            size = copying.copy_out(
                src_container, src, dest, follow=args.follow_link, archive_mode=args.archive
            )
            _copied(args, size, _local_shown(dest))
        return 0
    assert dest_container is not None
    if not dest:
        raise InvalidSpec("destination path cannot be empty")
    source: Any = sys.stdin.buffer if src == "-" else src
    size = copying.copy_in(
        dest_container,
        source,
        dest,
        follow=args.follow_link,
        archive_mode=args.archive,
        trusted=True,
    )  # root: an admin
    # docker counts only the archive it builds itself: a tar from stdin reports 0B.
    _copied(args, 0 if src == "-" else size, f"{dest_container}:{dest}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="inspect changes to files on a container's filesystem")
    p.add_argument("container")
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("commit", help="create a new image from a container's changes")
    p.add_argument("-a", "--author")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message")
    p.add_argument(
        "-p",
        "--pause",
        type=lambda v: v.lower() in ("true", "1", "t"),
        nargs="?",
        const=True,
        default=True,
    )
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    p.set_defaults(handler=cmd_commit)

    p = sub.add_parser("export", help="export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output")
    p.add_argument("container")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("cp", help="copy files between a container and the host")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("src")
    p.add_argument("dest")
    p.set_defaults(handler=cmd_cp)
