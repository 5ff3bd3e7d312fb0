"""Handlers for system verbs: version, info, system prune, system gc, system reconcile.

``system prune`` calls each family's prune (``containers``, ``runtime.network.verbs``,
``runtime.volumes``, ``runtime.images.removal``) and prints docker's sections.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any

import runtime
from runtime import cgroups, containers, images, paths, state, units, volumes


def cmd_version(args: argparse.Namespace) -> int:
    for section in ("Client", "Server"):
        print(f"{section}: Moorage Engine" if section == "Server" else f"{section}:")
        print(f" Version:           {runtime.__version__}")
        print(
            f" API version:       {runtime.API_VERSION}"
            + (" (minimum version 1.24)" if section == "Server" else "")
        )
        print(f" Python version:    {platform.python_version()}")
        print(f" OS/Arch:           linux/{platform.machine()}")
        print(" Experimental:      false")
        if section == "Client":
            print()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    rows = containers.list_containers(all=True)
    running = sum(1 for _, st in rows if st.status in (state.RUNNING, state.RESTARTING))
    paused = sum(1 for _, st in rows if st.status == state.PAUSED)
    print(f"Containers: {len(rows)}")
    print(f" Running: {running}")
    print(f" Paused: {paused}")
    print(f" Stopped: {len(rows) - running - paused}")
    print(f"Images: {len(images.list_images())}")
    print(f"Server Version: {runtime.__version__}")
    print("Storage Driver: overlay2")
    print(" Backing Filesystem: extfs")
    print("Logging Driver: json-file")
    print(f"Cgroup Version: {cgroups.version()}")
    print(f"Kernel Version: {platform.release()}")
    print(f"CPUs: {os.cpu_count()}")
    print(f"Total Memory: {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')}")
    print(f"Docker Root Dir: {paths.root()}")
    return 0


def _prune_warning(args: argparse.Namespace) -> str:
    """docker's confirmationMessage, item for item (API >= 1.31 lists the build cache)."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append(
        "all images without at least one container associated to them"
        if args.all
        else "all dangling images"
    )
    items.append("all build cache" if args.all else "unused build cache")
    return "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)


def _section(title: str, lines: list[str]) -> None:
    # docker prints each pruner's output with Fprintln: its own newline plus one more.
    if lines:
        print(f"{title}:")
        for line in lines:
            print(line)
        print()


def cmd_system_prune(args: argparse.Namespace) -> int:
    """``docker system prune``: containers, networks, (anonymous) volumes, images, in
    docker's order, so an image a pruned container held goes in the same call."""
    from runtime.images import removal, usage
    from runtime.network import verbs as network_verbs

    if not args.force:
        sys.stdout.write(_prune_warning(args) + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    # docker's container prune reports the removed containers' SizeRw: measure first.
    sizes = {
        cid: usage.dir_size(str(paths.container(cid) / "upper")) for cid in containers.store.ids()
    }
    removed = containers.prune()
    reclaimed = sum(sizes.get(cid, 0) for cid in removed)
    _section("Deleted Containers", removed)
    _section("Deleted Networks", network_verbs.prune())
    if args.volumes:
        # Like docker's volume.RunPrune here: anonymous volumes only, even with -a.
        names, freed = volumes.prune(all=False)
        reclaimed += freed
        _section("Deleted Volumes", names)
    records, freed = removal.prune(all=args.all)
    reclaimed += freed
    _section("Deleted Images", [f"{r.action.lower()}: {r.value}" for r in records])
    print(f"Total reclaimed space: {units.human_size(reclaimed, 4)}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    found = containers.gc()
    for kind, items in found.items():
        for item in items:
            singular = {"directories": "directory"}.get(kind, kind.removesuffix("s"))
            print(f"removed orphaned {singular}: {item}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    for cid in containers.reconcile_all():
        print(f"restarted {cid}")
    return 0


def register(sub: Any) -> None:
    sub.add_parser("version", help="show the version").set_defaults(handler=cmd_version)
    sub.add_parser("info", help="display system-wide information").set_defaults(handler=cmd_info)
    p = sub.add_parser("system-prune", help="remove unused data")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--volumes", action="store_true")
    p.set_defaults(handler=cmd_system_prune)
    sub.add_parser("system-gc", help="remove orphans left by a crash").set_defaults(handler=cmd_gc)
    sub.add_parser(
        "system-reconcile", help="reconcile state and apply restart policies after a reboot"
    ).set_defaults(handler=cmd_reconcile)
