"""nftables rules for bridge networks: egress masquerade, isolation, ``--internal``.

Drives nftables (through ``runtime.network.nftables``) on one table of its own, ``ip
<prefix>-net``, and while some network has IPv6 its twin ``ip6 <prefix>-net`` (isolation
only: IPv6 gets no NAT and no egress rule, as Docker without ip6tables NAT), rewritten
as a whole from the network store each time a network appears or goes: an nft script
that declares, flushes and refills the tables is applied atomically, so there is never
a moment with half the rules. The rules:

- postrouting (nat): traffic from a non-internal network's subnet leaving by another
  interface than its bridge is masqueraded (egress, like Docker's MASQUERADE);
- forward (filter): traffic from one of our bridges to another one of ours is dropped
  (networks are isolated); an internal network's bridge forwards nothing in or out.

Published ports live in the ports engineer's own table; this module never touches it,
nor any table it did not make.
"""

from __future__ import annotations

import json

from runtime import paths
from runtime.errors import KernelError
from runtime.network import nftables
from runtime.network.store import Network

FAMILIES = ("ip", "ip6")


def table() -> str:
    return f"{paths.prefix()}-net"


def _nft(script: str, json_output: bool = False) -> str:
    done = nftables.run(script, json_output)
    if not done.ok:
        raise KernelError(f"nft: {script.splitlines()[0]}", 22, done.err)
    return done.out


def script(networks: list[Network], ip6_present: bool = True) -> str:
    """The whole table for these networks, as an atomic nft script (``ip6_present``:
    whether an IPv6 twin may be there to delete)."""
    bridges = [n for n in networks if n.driver == "bridge" and n.bridge and n.subnet]
    name = table()
    lines = [f"table ip {name} {{}}", f"flush table ip {name}", f"table ip {name} {{"]
    lines += _filter(bridges)
    lines += [
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    for n in bridges:
        if not n.internal:
            lines.append(f"    ip saddr {n.subnet} oifname != {json.dumps(n.bridge)} masquerade")
    lines += ["  }", "}"]
    # The IPv6 twin exists while a network has IPv6. When none has, it is declared and
    # deleted in the same transaction, which removes it whether or not it was there.
    if any(n.enable_ipv6 for n in bridges):
        lines += [
            f"table ip6 {name} {{}}",
            f"flush table ip6 {name}",
            f"table ip6 {name} {{",
            *_filter(bridges),
            "}",
        ]
    elif ip6_present:
        lines += [f"table ip6 {name} {{}}", f"delete table ip6 {name}"]
    return "\n".join(lines) + "\n"


def _filter(bridges: list[Network]) -> list[str]:
    """The set of our bridges and the forward chain: isolation and --internal."""
    lines = []
    if bridges:
        elements = ", ".join(json.dumps(n.bridge) for n in bridges)
        lines += ["  set bridges {", "    type ifname", f"    elements = {{ {elements} }}", "  }"]
    lines += ["  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    for n in bridges:
        br = json.dumps(n.bridge)
        if n.internal:
            lines.append(f"    iifname {br} oifname != {br} drop")
            lines.append(f"    oifname {br} iifname != {br} drop")
        else:
            lines.append(f"    iifname {br} oifname != {br} oifname @bridges drop")
    lines.append("  }")
    return lines


def sync(networks: list[Network]) -> None:
    """Make the tables say exactly what ``networks`` need."""
    ip6 = any(n.enable_ipv6 for n in networks)
    # A deletion costs the kernel an RCU grace period (~15 ms): only when there is one.
    present = ip6 or nftables.run(f"list table ip6 {table()}\n").ok
    _nft(script(networks, present))


def remove(name: str | None = None) -> bool:
    """Delete our tables (or the tables ``name``), both families; False if none was there."""
    gone = False
    for family in FAMILIES:
        try:
            _nft(f"delete table {family} {name or table()}\n")
            gone = True
        except KernelError as e:
            if "No such file" not in str(e):
                raise
    return gone


def present() -> bool:
    try:
        _nft(f"list table ip {table()}\n", json_output=True)
    except KernelError:
        return False
    return True
