"""``moorage port CONTAINER [PRIVATE_PORT[/PROTO]]``: a container's published ports.

Prints what docker prints: ``80/tcp -> 0.0.0.0:8080`` per binding, or only the host
side for one private port. Reads ``runtime.network.ports.bindings``; changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runtime import containers
from runtime.errors import NotFound
from runtime.network import ports


def cmd_port(args: argparse.Namespace) -> int:
    record = containers.store.load(containers.store.resolve(args.container))
    try:
        lines = ports.port_lines(record, args.private)
    except NotFound as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("port", help="list port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private", metavar="PRIVATE_PORT[/PROTO]", nargs="?")
    p.set_defaults(handler=cmd_port)
