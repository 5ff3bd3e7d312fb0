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
from typing import Any, NoReturn

from runtime.errors import ExecFailed, MoorageError


class UsageError(MoorageError):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee '{self.prog} --help'.")


Handler = Callable[[argparse.Namespace], int]


# Every family of verbs, one module each, in the order `moorage --help` lists them.
COMMAND_MODULES = (
    "container_commands",
    "image_commands",
    "archive_commands",
    "system_commands",
    "volume_commands",
    "build_command",
    "port_command",
    "network_commands",
    "filesystem_commands",
    "registry_commands",
)
# The verbs scripts call in loops, and the one module that defines each: for these
# only that module is imported, since every CLI call pays for every import (`run --rm`
# start-up is benchmarked against runc). Any other verb loads all the modules.
FAST_VERBS = {
    verb: "container_commands"
    for verb in (
        "run",
        "create",
        "start",
        "stop",
        "kill",
        "rm",
        "ps",
        "exec",
        "logs",
        "wait",
        "restart",
        "pause",
        "unpause",
        "attach",
        "top",
        "rename",
    )
}
# commit is benchmarked against docker too; importing every module costs ~0.25 s.
FAST_VERBS.update(dict.fromkeys(("commit", "diff", "export", "cp"), "filesystem_commands"))
# So are build (a fully cached one is mostly interpreter start) and pull.
FAST_VERBS.update(build="build_command")
FAST_VERBS.update(dict.fromkeys(("pull", "push", "login", "logout", "search"), "registry_commands"))


# Parsers built ahead, by verb: the warm server fills it before it forks its runners,
# each of which uses one parser once.
PREBUILT: dict[str | None, Parser] = {}


def build_parser(verb: str | None = None) -> Parser:
    prebuilt = PREBUILT.get(verb if verb in FAST_VERBS else None)
    if prebuilt is not None:
        return prebuilt
    parser = Parser(prog="moorage", description="Run containers straight on the Linux kernel.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    if verb in FAST_VERBS:
        importlib.import_module(f"runtime.cli.{FAST_VERBS[verb]}").register(_OneVerb(sub, verb))
        return parser
    for name in COMMAND_MODULES:
        importlib.import_module(f"runtime.cli.{name}").register(sub)
    return parser


class _OneVerb:
    """The subparsers action, building the parser of one verb only: the module of a fast
    verb registers some twenty verbs and hundreds of options, which took more time than
    parsing. Other verbs get a stand-in that accepts and ignores every call."""

    def __init__(self, sub: Any, verb: str) -> None:
        self._sub, self._verb = sub, verb

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self._verb or self._verb in kwargs.get("aliases", ()):
            return self._sub.add_parser(name, **kwargs)
        return _Ignored()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sub, name)


class _Ignored:
    def __getattr__(self, name: str) -> Callable[..., _Ignored]:
        return lambda *args, **kwargs: self


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.geteuid() != 0 and argv and argv[0] not in ("--help", "-h", "version"):
        print(
            "moorage: this command needs root (it drives namespaces and cgroups)", file=sys.stderr
        )
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
    aliases = {
        ("container", "ls"): ["ps"],
        ("container", "list"): ["ps"],
        ("container", "rm"): ["rm"],
        ("image", "ls"): ["images"],
        ("image", "list"): ["images"],
        ("image", "import"): ["import"],
        ("image", "save"): ["save"],
        ("image", "load"): ["load"],
        ("container", "prune"): ["container-prune"],
        ("container", "inspect"): ["container-inspect"],
        ("image", "inspect"): ["image-inspect"],
        ("image", "bootstrap"): ["image-bootstrap"],
        ("image", "rm"): ["rmi"],
        ("image", "remove"): ["rmi"],
        ("image", "tag"): ["tag"],
        ("image", "history"): ["history"],
        ("image", "prune"): ["image-prune"],
        ("image", "pull"): ["pull"],
        ("image", "push"): ["push"],
        ("system", "prune"): ["system-prune"],
        ("system", "gc"): ["system-gc"],
        ("system", "reconcile"): ["system-reconcile"],
        ("system", "info"): ["info"],
        ("system", "df"): ["system-df"],
    }
    if len(argv) >= 2 and (argv[0], argv[1]) in aliases:
        return aliases[(argv[0], argv[1])] + argv[2:]
    if len(argv) >= 2 and argv[0] == "container":
        return argv[1:]
    return argv


def entry() -> NoReturn:
    """Run the command in ``sys.argv`` in this process (``runtime.cli.entry`` first tries
    the warm server, which calls this in a fork of itself)."""
    argv = sys.argv[1:]
    code = main(argv)
    verb = _split_combined(argv)[0] if argv else ""
    if FAST_VERBS.get(verb) == "container_commands" and isinstance(code, int):
        quick_exit(code)
    sys.exit(code)


def quick_exit(code: int) -> None:
    """Exit without tearing the interpreter down, which frees every object of every
    module one by one (~25 ms with the engine loaded, on each `run --rm`). What that
    teardown does that matters still happens: atexit handlers (weakref.finalize's too)
    and flushing stdout and stderr. Returns, for the normal exit, if another thread
    would have to be joined or a flush fails (a closed pipe is reported as usual)."""
    threading = sys.modules.get("threading")
    if threading is not None and any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code & 0xFF)
