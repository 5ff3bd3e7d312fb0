"""Handlers for system verbs: version, info, system prune, system gc, system reconcile."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

import runtime
from runtime import cgroups, containers, images, paths, state


def cmd_version(args: argparse.Namespace) -> int:
    for section in ("Client", "Server"):
        print(f"{section}: Moorage Engine" if section == "Server" else f"{section}:")
        print(f" Version:           {runtime.__version__}")
        print(f" API version:       {runtime.API_VERSION}" +
              (" (minimum version 1.24)" if section == "Server" else ""))
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


def cmd_system_prune(args: argparse.Namespace) -> int:
    # Containers are all there is to prune until volumes, networks and image removal land.
    from runtime.cli.container_commands import cmd_container_prune
    return cmd_container_prune(args)


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
    sub.add_parser("info", help="display system-wide information").set_defaults(
        handler=cmd_info)
    p = sub.add_parser("system-prune", help="remove unused data")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.set_defaults(handler=cmd_system_prune)
    sub.add_parser("system-gc", help="remove orphans left by a crash").set_defaults(
        handler=cmd_gc)
    sub.add_parser("system-reconcile", help="reconcile state and apply restart policies "
                   "after a reboot").set_defaults(handler=cmd_reconcile)
