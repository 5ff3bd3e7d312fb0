"""The ``moorage`` command line, shaped like the docker CLI.

``main`` parses docker-style arguments with argparse and dispatches to one handler per
verb (``container_commands``, ``image_commands``, ``system_commands``); the handlers call
the engine's public functions and format the answers like docker does. Errors from the
engine become one line on stderr and Docker's exit codes (125 engine error for ``run``,
126/127 for a command that cannot run, 1 for other verbs).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from runtime.errors import ExecFailed, MoorageError


class UsageError(MoorageError):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee '{self.prog} --help'.")


Handler = Callable[[argparse.Namespace], int]


# Every family of verbs, one module each, in the order `moorage --help` lists them.
COMMAND_MODULES = (
    "container_commands", "image_commands", "archive_commands", "system_commands",
    "volume_commands", "build_command", "port_command", "network_commands",
    "filesystem_commands", "registry_commands",
)
# The verbs scripts call in loops, and the one module that defines each: for these
# only that module is imported, since every CLI call pays for every import (`run --rm`
# start-up is benchmarked against runc). Any other verb loads all the modules.
FAST_VERBS = {verb: "container_commands" for verb in (
    "run", "create", "start", "stop", "kill", "rm", "ps", "exec", "logs", "wait",
    "restart", "pause", "unpause", "attach", "top", "rename")}
# commit is benchmarked against docker too; importing every module costs ~0.25 s.
FAST_VERBS.update(dict.fromkeys(("commit", "diff", "export", "cp"), "filesystem_commands"))


def build_parser(verb: str | None = None) -> Parser:
    parser = Parser(prog="moorage", description="Run containers straight on the Linux kernel.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    names = (FAST_VERBS[verb],) if verb in FAST_VERBS else COMMAND_MODULES
    for name in names:
        importlib.import_module(f"runtime.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.geteuid() != 0 and argv and argv[0] not in ("--help", "-h", "version"):
        print("moorage: this command needs root (it drives namespaces and cgroups)",
              file=sys.stderr)
        return 1
    argv = _split_combined(argv)
    parser = build_parser(argv[0] if argv else None)
    try:
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0
        return handler(args)
    except ExecFailed as e:
        print(f"moorage: {e}", file=sys.stderr)
        return e.exit_code
    except UsageError as e:
        print(f"moorage: {e}", file=sys.stderr)
        return 125
    except MoorageError as e:
        print(f"Error response from daemon: {e}", file=sys.stderr)
        return getattr(e, "cli_exit_code", 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _split_combined(argv: list[str]) -> list[str]:
    """Docker accepts 'container ls' and 'image ls' style; map them onto our verbs."""
    aliases = {("container", "ls"): ["ps"], ("container", "list"): ["ps"],
               ("container", "rm"): ["rm"], ("image", "ls"): ["images"],
               ("image", "list"): ["images"], ("image", "import"): ["import"],
               ("image", "save"): ["save"], ("image", "load"): ["load"],
               ("container", "prune"): ["container-prune"],
               ("container", "inspect"): ["container-inspect"],
               ("image", "inspect"): ["image-inspect"],
               ("image", "bootstrap"): ["image-bootstrap"],
               ("image", "rm"): ["rmi"], ("image", "remove"): ["rmi"],
               ("image", "tag"): ["tag"], ("image", "history"): ["history"],
               ("image", "prune"): ["image-prune"],
               ("image", "pull"): ["pull"], ("image", "push"): ["push"],
               ("system", "prune"): ["system-prune"], ("system", "gc"): ["system-gc"],
               ("system", "reconcile"): ["system-reconcile"],
               ("system", "info"): ["info"], ("system", "df"): ["system-df"]}
    if len(argv) >= 2 and (argv[0], argv[1]) in aliases:
        return aliases[(argv[0], argv[1])] + argv[2:]
    if len(argv) >= 2 and argv[0] == "container":
        return argv[1:]
    return argv


def entry() -> NoReturn:
    sys.exit(main())
