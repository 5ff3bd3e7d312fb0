"""Handlers for ``moorage network create|ls|inspect|rm|prune|connect|disconnect``.

Each handler calls one function of ``runtime.network.verbs`` and prints what docker
prints: ``create`` the 64-hex id, ``ls`` a ``NETWORK ID NAME DRIVER SCOPE`` table,
``rm`` each name it removed, ``prune`` the names under ``Deleted Networks:``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime.cli import output
from runtime.cli.format import print_documents, print_formatted
from runtime.errors import InvalidSpec, MoorageError
from runtime.network import verbs
from runtime.network.store import Network


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidSpec(f"invalid label '{item}'")
        labels[key] = value
    return labels


def _by_family(items: list[str], what: str) -> tuple[str, str]:
    """(IPv4 one, IPv6 one) of repeated --subnet/--gateway values; one of each at most.
    A value that is neither goes first, for the IPv4 parser's error."""
    v4: list[str] = []
    v6: list[str] = []
    for item in items:
        (v6 if ":" in item else v4).append(item)
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidSpec(f"only one IPv4 and one IPv6 {what} per network")
    return (v4 or [""])[0], (v6 or [""])[0]


def cmd_create(args: argparse.Namespace) -> int:
    subnet, subnet6 = _by_family(args.subnet, "subnet")
    gateway, gateway6 = _by_family(args.gateway, "gateway")
    if len(args.ip_range) > 1 or any(":" in r for r in args.ip_range):
        raise InvalidSpec("only one IPv4 ip-range per network (IPv6 ranges are not supported)")
    if gateway6 and not subnet6:
        raise InvalidSpec(f"invalid gateway {gateway6}: it needs an IPv6 --subnet")
    network = verbs.create(
        args.name,
        subnet=subnet,
        gateway=gateway,
        ip_range=(args.ip_range or [""])[0],
        internal=args.internal,
        labels=_labels(args.label),
        driver=args.driver,
        ipv6=args.ipv6,
        subnet6=subnet6,
        gateway6=gateway6,
    )
    print(network.id)
    return 0


def _item(network: Network, no_trunc: bool) -> dict[str, Any]:
    from runtime.logs import timestamp

    return {
        "ID": network.id if no_trunc else network.id[:12],
        "Name": network.name,
        "Driver": network.driver,
        "Scope": "local",
        "IPv6": str(network.enable_ipv6).lower(),
        "Internal": str(network.internal).lower(),
        "CreatedAt": timestamp(network.created),
        "Labels": ",".join(f"{k}={v}" for k, v in network.labels.items()),
    }


def cmd_ls(args: argparse.Namespace) -> int:
    rows = verbs.list_networks(verbs.parse_filters(args.filter))
    items = [_item(n, args.no_trunc) for n in rows]
    if args.quiet:
        for item in items:
            print(item["ID"])
        return 0
    if args.format:
        print_formatted(args.format, items)
        return 0
    table = [[i["ID"], i["Name"], i["Driver"], i["Scope"]] for i in items]
    sys.stdout.write(output.format_table(table, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    documents, failed = [], 0
    for ref in args.networks:
        try:
            documents.append(verbs.inspect(ref))
        except MoorageError:
            print(f"Error: No such network: {ref}", file=sys.stderr)
            failed = 1
    print_documents(args.format, documents)
    return failed


def cmd_rm(args: argparse.Namespace) -> int:
    failed = 0
    for ref in args.networks:
        try:
            verbs.remove(ref)
            print(ref)
        except MoorageError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            failed = 1
    return failed


def cmd_prune(args: argparse.Namespace) -> int:
    if not args.force and sys.stdin.isatty():
        answer = input(
            "WARNING! This will remove all custom networks not used by at least "
            "one container.\nAre you sure you want to continue? [y/N] "
        )
        if answer.strip().lower() != "y":
            return 0
    removed = verbs.prune(verbs.parse_filters(args.filter))
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
        print()
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    verbs.connect(args.network, args.container, tuple(args.alias), args.ip, args.ip6)
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    verbs.disconnect(args.network, args.container, args.force)
    return 0


def register(sub: Any) -> None:
    network = sub.add_parser("network", help="manage networks")
    verbs_parsers = network.add_subparsers(
        dest="network_command", metavar="COMMAND", parser_class=type(network)
    )

    p = verbs_parsers.add_parser("create", help="create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name")
    p.set_defaults(handler=cmd_create)

    for name in ("ls", "list"):
        p = verbs_parsers.add_parser(name, help="list networks")
        p.add_argument("-f", "--filter", action="append", default=[])
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("--no-trunc", action="store_true")
        p.add_argument("--format")
        p.set_defaults(handler=cmd_ls)

    p = verbs_parsers.add_parser("inspect", help="display detailed information on networks")
    p.add_argument("-f", "--format")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.set_defaults(handler=cmd_inspect)

    for name in ("rm", "remove"):
        p = verbs_parsers.add_parser(name, help="remove networks")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("networks", nargs="+", metavar="NETWORK")
        p.set_defaults(handler=cmd_rm)

    p = verbs_parsers.add_parser("prune", help="remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.set_defaults(handler=cmd_prune)

    p = verbs_parsers.add_parser("connect", help="connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--ip6", default="")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_connect)

    p = verbs_parsers.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_disconnect)
