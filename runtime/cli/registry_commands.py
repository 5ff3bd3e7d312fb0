"""Handlers for the registry verbs: pull, push, login, logout and search (docker's output).

The registry package is imported inside each handler: every other verb would otherwise
pay for ``http.client``, ``ssl`` and the registry modules at start-up. Progress arrives
as docker's JSON messages; on a terminal each layer keeps one line, redrawn in place
with a progress bar (docker's ``jsonmessage``); otherwise only status changes print,
one line each, so logs stay readable.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import threading
from typing import Any, TextIO

from runtime.errors import InvalidSpec

_BAR = 50


class ProgressView:
    """Draws a stream of pull/push progress messages the way the docker CLI does."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self._out, self._quiet = out, quiet
        self._tty = out.isatty()
        self._rows: dict[str, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        if self._quiet:
            return
        with self._lock:
            ident, detail = event.get("id"), event.get("progressDetail") or {}
            line = f"{ident}: {event['status']}" if ident else str(event["status"])
            ticking = "current" in detail
            if ticking:
                if not self._tty:
                    return
                line += " " + _bar(int(detail["current"]), int(detail.get("total") or 0))
            if not self._tty or not ident:
                self._out.write(line + "\n")
                self._count += 1 if self._tty else 0
            elif ident not in self._rows:
                self._rows[ident] = self._count
                self._count += 1
                self._out.write(line + "\n")
            else:
                up = self._count - self._rows[ident]
                self._out.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
            self._out.flush()


def _bar(current: int, total: int) -> str:
    from runtime.units import human_size

    if total <= 0:
        return human_size(current)
    filled = min(_BAR, _BAR * current // total)
    arrow = ("=" * (filled - 1) + ">") if filled else ""
    return f"[{arrow.ljust(_BAR)}]  {human_size(current)}/{human_size(total)}"


def _untagged(ref: str) -> bool:
    last = ref.rsplit("/", 1)[-1]
    return ":" not in last and "@" not in last


def cmd_pull(args: argparse.Namespace) -> int:
    from runtime import registry
    from runtime.images import references

    if _untagged(args.name) and not args.all_tags:
        print("Using default tag: latest")
    pulled = registry.pull(
        args.name, all_tags=args.all_tags, progress=ProgressView(sys.stdout, args.quiet)
    )
    print(references.parse(args.name).name if args.all_tags else pulled[0].reference)
    return 0


PULL_POLICIES = ("always", "missing", "never")


def image_for_run(ref: str, policy: str) -> None:
    """``run``/``create --pull POLICY``: make sure ``ref`` is stored, pulling as docker does.

    ``missing`` (the default) pulls only when the image is not stored, after ``Unable to
    find image 'x:latest' locally``; ``always`` pulls first whatever is stored; ``never``
    refuses a missing image with docker's ``No such image``. Progress goes to stderr, as
    docker's does, so the container's own output stays alone on stdout.
    """
    from runtime import images
    from runtime.errors import NotFound
    from runtime.images import references

    if policy not in PULL_POLICIES:
        raise InvalidSpec(
            f'invalid pull option: \'{policy}\': must be one of "always", "missing" or "never"'
        )
    if policy != "always":
        try:
            images.resolve(ref)
            return
        except NotFound:
            if policy == "never":
                raise NotFound(f"No such image: {references.familiar(ref)}") from None
        print(
            f"Unable to find image '{references.familiar(ref)}' locally",
            file=sys.stderr,
            flush=True,
        )
    from runtime import registry

    registry.pull(ref, progress=ProgressView(sys.stderr))


def cmd_push(args: argparse.Namespace) -> int:
    from runtime import registry

    if _untagged(args.name) and not args.all_tags:
        print("Using default tag: latest")
    registry.push(args.name, all_tags=args.all_tags, progress=ProgressView(sys.stdout, args.quiet))
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from runtime import registry

    username, password = args.username, args.password
    if args.password_stdin:
        if args.password:
            raise InvalidSpec("--password and --password-stdin are mutually exclusive")
        if not username:
            raise InvalidSpec("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        print(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
            file=sys.stderr,
        )
    if not username:
        if not sys.stdin.isatty():
            raise InvalidSpec("Cannot perform an interactive login from a non TTY device")
        username = input("Username: ").strip()
    if not password:
        if not sys.stdin.isatty():
            raise InvalidSpec("Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
    registry.login(args.server, username, password)
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from runtime import registry

    domain, existed = registry.logout(args.server)
    print(f"Removing login credentials for {domain}" if existed else f"Not logged in to {domain}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from runtime import registry
    from runtime.cli.gotemplate import tabwrite

    results = registry.search(args.term, limit=args.limit)
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "stars":
            results = [r for r in results if r.stars >= int(value or 0)]
        elif key in ("is-official", "is-automated"):
            want = value.lower() in ("true", "1")
            results = [
                r for r in results if (r.official if key == "is-official" else r.automated) == want
            ]
        else:
            raise InvalidSpec(f"invalid filter '{f}'")
    rows = ["NAME\tDESCRIPTION\tSTARS\tOFFICIAL"]
    for r in results:
        description = (
            r.description
            if args.no_trunc or len(r.description) <= 45
            else (r.description[:44] + "…")
        )
        rows.append("\t".join([r.name, description, str(r.stars), "[OK]" if r.official else ""]))
    sys.stdout.write(tabwrite(rows))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("pull", help="download an image from a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="download every tagged image")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("--platform", help="accepted for docker's sake; the host platform is used")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.set_defaults(handler=cmd_pull)

    p = sub.add_parser("push", help="upload an image to a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="push every local tag")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.set_defaults(handler=cmd_push)

    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(handler=cmd_login)

    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(handler=cmd_logout)

    p = sub.add_parser("search", help="search a registry for images")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--limit", type=int, default=25)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("term")
    p.set_defaults(handler=cmd_search)
