"""nftables rules for bridge networks: egress masquerade, isolation, ``--internal``.

Drives nft(8) (``nft -f -``) on one table of its own, ``ip <prefix>-net``, rewritten as
a whole from the network store each time a network appears or goes: an nft script that
declares, flushes and refills the table is applied atomically, so there is never a
moment with half the rules. The rules:

- postrouting (nat): traffic from a non-internal network's subnet leaving by another
  interface than its bridge is masqueraded (egress, like Docker's MASQUERADE);
- forward (filter): traffic from one of our bridges to another one of ours is dropped
  (networks are isolated); an internal network's bridge forwards nothing in or out.

Published ports live in the ports engineer's own table; this module never touches it,
nor any table it did not make.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from runtime import paths
from runtime.errors import KernelError, MissingFeature
from runtime.network.store import Network


def table() -> str:
    return f"{paths.prefix()}-net"


def _nft(script: str | None, *args: str) -> str:
    binary = shutil.which("nft")
    if binary is None:
        raise MissingFeature("nft", 2, "networking needs nftables (Debian package "
                             "'nftables'); it is not installed")
    done = subprocess.run([binary, *args], input=script, capture_output=True, text=True,
                          check=False, timeout=30)
    if done.returncode != 0:
        raise KernelError(f"nft {' '.join(args)}", 22, done.stderr.strip())
    return done.stdout


def script(networks: list[Network]) -> str:
    """The whole table for these networks, as an atomic nft script."""
    bridges = [n for n in networks if n.driver == "bridge" and n.bridge and n.subnet]
    name = table()
    lines = [f"table ip {name} {{}}", f"flush table ip {name}", f"table ip {name} {{"]
    if bridges:
        elements = ", ".join(json.dumps(n.bridge) for n in bridges)
        lines += ["  set bridges {", "    type ifname", f"    elements = {{ {elements} }}",
                  "  }"]
    lines += ["  chain forward {",
              "    type filter hook forward priority filter; policy accept;"]
    for n in bridges:
        br = json.dumps(n.bridge)
        if n.internal:
            lines.append(f"    iifname {br} oifname != {br} drop")
            lines.append(f"    oifname {br} iifname != {br} drop")
        else:
            lines.append(f"    iifname {br} oifname != {br} oifname @bridges drop")
    lines += ["  }", "  chain postrouting {",
              "    type nat hook postrouting priority srcnat; policy accept;"]
    for n in bridges:
        if not n.internal:
            lines.append(f"    ip saddr {n.subnet} oifname != {json.dumps(n.bridge)} "
                         "masquerade")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def sync(networks: list[Network]) -> None:
    """Make the table say exactly what ``networks`` need."""
    _nft(script(networks), "-f", "-")


def remove(name: str | None = None) -> bool:
    """Delete our table (or the table ``name``); False if there was none."""
    if shutil.which("nft") is None:
        return False
    try:
        _nft(None, "delete", "table", "ip", name or table())
    except KernelError as e:
        if "No such file" in str(e):
            return False
        raise
    return True


def present() -> bool:
    try:
        _nft(None, "-j", "list", "table", "ip", table())
    except KernelError:
        return False
    return True
