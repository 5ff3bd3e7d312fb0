"""``moorage build``: docker build's options, over ``runtime.build``.

Reads the context from a directory or a tar (or a lone Dockerfile) on stdin, streams the
builder's output to stdout as it comes, and exits 1 when a step fails, like docker.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from runtime.cli.main import Parser
from runtime.errors import InvalidSpec


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidSpec(f"invalid {option} '{item}': name can not be blank")
        if not eq:  # `--build-arg NAME` takes the caller's environment, as docker does
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_build(args: argparse.Namespace) -> int:
    # Imported here: every other verb would pay ~80 ms at start-up for the builder.
    from runtime import units
    from runtime.build import BuildOptions, Context, StepFailed, build

    options = BuildOptions(
        tags=tuple(args.tag),
        dockerfile=args.file or "Dockerfile",
        build_args=_pairs(args.build_arg, "--build-arg"),
        no_cache=args.no_cache,
        target=args.target,
        labels=_pairs(args.label, "--label"),
        allow_urls=args.allow_url_download,
        network_mode=args.network,
    )
    if args.file and args.file != "-" and args.path != "-":
        options = BuildOptions(**{**options.__dict__, "dockerfile": os.path.abspath(args.file)})
    if args.path == "-":
        context = Context.from_stdin(sys.stdin.buffer)
    else:
        context = Context.from_directory(args.path)
    with context:
        if not args.quiet:
            _write(f"Sending build context to Docker daemon  {units.human_size(context.size())}\n")
        try:
            result = build(context, options, None if not args.quiet else lambda _text: None)
        except StepFailed as e:
            print(e, file=sys.stderr)
            return 1
    if args.quiet:
        print(result.image_id)
    return 0


class _BuildParser(Parser):
    """Takes docker's ``--no-cache=true`` and ``--rm=false`` spellings of the flags.

    argparse can give a flag an optional value only by letting it swallow the next word
    too (``--no-cache PATH``), so the ``=value`` forms are rewritten before parsing.
    """

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        fixed: list[str] = []
        for arg in list(args or []):
            flag, eq, value = arg.partition("=")
            if eq and flag in ("--no-cache", "--rm", "--force-rm", "--pull"):
                if value.lower() in ("1", "true", "yes"):
                    fixed.append(flag)
                continue
            fixed.append(arg)
        return super().parse_known_args(fixed, namespace)


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="build an image from a Dockerfile")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append", default=[])
    p.__class__ = _BuildParser
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--target")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--network")
    p.add_argument("--force-rm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pull", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--allow-url-download", action="store_true", help="let ADD download URLs (off by default)"
    )
    p.add_argument("--rm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("path")
    p.set_defaults(handler=cmd_build)
