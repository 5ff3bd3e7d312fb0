"""Handlers for ``moorage volume create|ls|inspect|rm|prune``, printing what docker prints.

Each handler calls ``runtime.volumes`` and nothing deeper. ``ls`` filters like
``docker volume ls -f`` (``dangling``, ``name``, ``label``, ``driver``); ``prune``
follows Docker 23+: anonymous volumes only, every unused one with ``--all``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime import units, volumes
from runtime.cli.format import print_documents
from runtime.errors import InvalidSpec, MoorageError

_TITLES = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "CreatedAt": "CREATED AT",
}


def _pairs(items: list[str], what: str) -> dict[str, str]:
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (what == "opt" and not sep):
            raise InvalidSpec(f"invalid {what} '{item}': expected KEY=VALUE")
        found[key] = value
    return found


def cmd_create(args: argparse.Namespace) -> int:
    if args.name and args.name_flag and args.name != args.name_flag:
        raise InvalidSpec(
            "conflicting options: either specify --name or provide positional arg, not both"
        )
    volume = volumes.create(
        args.name or args.name_flag,
        _pairs(args.label, "label"),
        _pairs(args.opt, "opt"),
        args.driver,
    )
    print(volume.name)
    return 0


class Filters:
    """``-f KEY=VALUE``: values of one key are ORed, different keys ANDed, as in Docker."""

    def __init__(self, items: list[str]) -> None:
        self.by_key: dict[str, list[str]] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in ("dangling", "name", "label", "driver"):
                raise InvalidSpec(f"invalid filter '{item}'")
            if key == "dangling" and value.lower() not in ("true", "1", "false", "0"):
                raise InvalidSpec(f"invalid filter 'dangling={value}'")
            self.by_key.setdefault(key, []).append(value)

    def match(self, volume: volumes.Volume, users: dict[str, list[str]]) -> bool:
        keys = self.by_key
        if "name" in keys and not any(v in volume.name for v in keys["name"]):
            return False
        if "driver" in keys and volume.driver not in keys["driver"]:
            return False
        if "label" in keys and not volumes.store.all_labels_match(
            volume.labels, tuple(keys["label"])
        ):
            return False
        if "dangling" in keys:
            wanted = {v.lower() in ("true", "1") for v in keys["dangling"]}
            if (not users.get(volume.name)) not in wanted:
                return False
        return True


def _item(volume: volumes.Volume) -> dict[str, Any]:
    return {
        "Name": volume.name,
        "Driver": volume.driver,
        "Scope": "local",
        "Mountpoint": str(volume.mountpoint),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(volume.labels.items())),
        "Links": "N/A",
        "Size": "N/A",
        "CreatedAt": volume.inspect()["CreatedAt"],
    }


def cmd_ls(args: argparse.Namespace) -> int:
    filters = Filters(args.filter)
    users = volumes.usage()
    found = [v for v in volumes.list_volumes() if filters.match(v, users)]
    if args.quiet:
        for volume in found:
            print(volume.name)
        return 0
    template = args.format or "table {{.Driver}}\t{{.Name}}"
    from runtime.cli import gotemplate

    items = [_item(v) for v in found]
    if gotemplate.is_table(template):
        body = gotemplate.strip_table(template)
        lines = [gotemplate.render(body, _TITLES)]
        lines += [gotemplate.render(body, item) for item in items]
        sys.stdout.write(gotemplate.tabwrite(lines))
        return 0
    for item in items:
        print(gotemplate.render(template, item))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    documents, failed = [], 0
    for name in args.volumes:
        try:
            documents.append(volumes.get(name).inspect())
        except MoorageError:
            print(f"Error: No such volume: {name}", file=sys.stderr)
            failed = 1
    print_documents(args.format, documents)
    return failed


def cmd_rm(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.volumes:
        try:
            volumes.remove(name, force=args.force)
        except MoorageError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            failed = 1
            continue
        print(name)
    return failed


def _confirm(question: str) -> bool:
    sys.stdout.write(question + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_prune(args: argparse.Namespace) -> int:
    labels: list[str] = []
    for item in args.filter:
        key, sep, value = item.partition("=")
        if key == "label" and sep:
            labels.append(value)
        elif key == "label!" and sep:
            labels.append("!" + value)
        else:
            raise InvalidSpec(f"invalid filter '{item}'")
    which = "all local volumes" if args.all else "anonymous local volumes"
    if not args.force and not _confirm(
        f"WARNING! This will remove {which} not used by at least one container."
    ):
        return 0
    removed, reclaimed = volumes.prune(all=args.all, labels=tuple(labels))
    if removed:
        print("Deleted Volumes:")
        for name in removed:
            print(name)
        print()
    print(f"Total reclaimed space: {units.human_size(reclaimed)}")
    return 0


def register(sub: Any) -> None:
    volume = sub.add_parser("volume", help="manage volumes")
    verbs = volume.add_subparsers(
        dest="volume_command", metavar="COMMAND", parser_class=type(volume)
    )
    volume.set_defaults(handler=lambda args: (volume.print_help(), 0)[1])
    p = verbs.add_parser("create", help="create a volume")
    p.add_argument("name", nargs="?")
    p.add_argument("--name", dest="name_flag")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.set_defaults(handler=cmd_create)
    for name in ("ls", "list"):
        p = verbs.add_parser(name, help="list volumes")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-f", "--filter", action="append", default=[])
        p.add_argument("--format")
        p.set_defaults(handler=cmd_ls)
    p = verbs.add_parser("inspect", help="display detailed information on volumes")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--format")
    p.set_defaults(handler=cmd_inspect)
    for name in ("rm", "remove"):
        p = verbs.add_parser(name, help="remove volumes")
        p.add_argument("volumes", nargs="+", metavar="VOLUME")
        p.add_argument("-f", "--force", action="store_true")
        p.set_defaults(handler=cmd_rm)
    p = verbs.add_parser("prune", help="remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.set_defaults(handler=cmd_prune)
