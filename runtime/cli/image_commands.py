"""Handlers for the image verbs: images, import, image inspect, image bootstrap, tag,
rmi, history, image prune and system df. (save/load, build and pull live elsewhere.)

Each calls one function of ``runtime.images`` (``removal``, ``usage``) and prints what
the docker CLI prints: ``Untagged:``/``Deleted:`` lines, history's five columns, the
disk-usage tables. A failing argument of a multi-argument verb is reported on its own
line and makes the exit status 1, as docker does.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from typing import Any

from runtime import images, units
from runtime.cli import format, output
from runtime.cli.format import print_documents, print_formatted
from runtime.errors import InvalidSpec, MoorageError
from runtime.images import config, layers, references, removal, usage


def _image_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in ("dangling", "reference", "label", "before", "since"):
            raise InvalidSpec(f"invalid filter '{item}'")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidSpec(f"invalid filter 'dangling={value}'")
        filters.setdefault(key, []).append(value)
    return filters


def _keep(image: images.Image, filters: dict[str, list[str]]) -> bool:
    for value in filters.get("dangling", []):
        if (value.lower() in ("true", "1")) != (not image.repo_tags):
            return False
    labels = (image.config.get("config") or {}).get("Labels") or {}
    for value in filters.get("label", []):
        key, eq, wanted = value.partition("=")
        if key not in labels or (eq and labels[key] != wanted):
            return False
    for key, newer in (("before", False), ("since", True)):
        for value in filters.get(key, []):
            pivot = config.timestamp_ns(images.resolve(value).created)
            created = config.timestamp_ns(image.created)
            if (created <= pivot) if newer else (created >= pivot):
                return False
    return True


def _rows(
    all_images: bool, repository: str | None, filters: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    now = time.time()
    filters = filters or {}
    rows = []
    for image in images.list_images(all=all_images):
        if not all_images and not image.repo_tags and layers.children_of(image.id):
            continue  # an intermediate image: only -a shows it, as in docker
        if not _keep(image, filters):
            continue
        tags = image.repo_tags or ("<none>:<none>",)
        digests = dict(d.rsplit("@", 1) for d in references.digests_of(image.id))
        for tag in tags:
            repo, _, name = tag.rpartition(":")
            if repository and repo != repository and tag != repository:
                continue
            patterns = filters.get("reference", [])
            if patterns and not any(
                fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(repo, p) for p in patterns
            ):
                continue
            rows.append(
                {
                    "Repository": repo,
                    "Tag": name,
                    "ID": image.short_id(),
                    "FullID": image.id,
                    "CreatedSince": output.created_ago(image.created, now) if image.created else "",
                    "CreatedAt": image.created,
                    "Size": units.human_size(image.size),
                    "Digest": digests.get(repo, "<none>"),
                }
            )
    return rows


def cmd_images(args: argparse.Namespace) -> int:
    rows = _rows(args.all, args.repository, _image_filters(args.filter))
    if args.quiet:
        seen = set()
        for row in rows:
            ident = row["FullID"] if args.no_trunc else row["ID"]
            if ident not in seen:
                seen.add(ident)
                print(ident)
        return 0
    if args.format:
        print_formatted(args.format, rows)
        return 0
    digest = ["Digest"] if args.digests else []
    table = [
        [
            r["Repository"],
            r["Tag"],
            *(r[k] for k in digest),
            r["FullID"] if args.no_trunc else r["ID"],
            r["CreatedSince"],
            r["Size"],
        ]
        for r in rows
    ]
    sys.stdout.write(
        output.format_table(
            table,
            ["REPOSITORY", "TAG", *(k.upper() for k in digest), "IMAGE ID", "CREATED", "SIZE"],
        )
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if args.file == "-":
        source = sys.stdin.buffer
        # The CLI runs as root, an admin: setuid files keep their bits, as in Docker.
        image = images.import_tar(
            source, args.reference, args.change, args.message or "", trusted=True
        )
    else:
        try:
            with open(args.file, "rb") as source:
                image = images.import_tar(
                    source, args.reference, args.change, args.message or "", trusted=True
                )
        except FileNotFoundError:
            raise InvalidSpec(f"open {args.file}: no such file or directory") from None
    print(image.id)
    return 0


def cmd_image_inspect(args: argparse.Namespace) -> int:
    documents = []
    failed = 0
    for ref in args.images:
        try:
            documents.append(images.resolve(ref).inspect())
        except MoorageError:
            print(f"Error: No such image: {ref}", file=sys.stderr)
            failed = 1
    print_documents(args.format, documents)
    return failed


def cmd_bootstrap(args: argparse.Namespace) -> int:
    if args.name != "busybox":
        raise InvalidSpec(f"no bootstrap recipe for '{args.name}' (known: busybox)")
    image = images.bootstrap_busybox(args.tag or "busybox:latest")
    print(image.id)
    return 0


def _bool_flag(text: str) -> bool:
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def cmd_tag(args: argparse.Namespace) -> int:
    images.tag(args.source, args.target)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    status = 0
    for ref in args.images:
        try:
            for record in removal.remove(ref, force=args.force, prune=not args.no_prune):
                print(record)
        except MoorageError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            status = 1
    return status


def _history_item(row: usage.HistoryRow, now: float, human: bool, no_trunc: bool) -> dict[str, Any]:
    created_by = row.created_by.replace("\t", " ")
    ident = row.id
    if ident != usage.MISSING and not no_trunc:
        ident = ident.removeprefix("sha256:")[:12]
    return {
        "ID": ident,
        "CreatedSince": output.created_ago(row.created, now)
        if human
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.created)),
        "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.created)),
        "CreatedBy": created_by if no_trunc else output.ellipsis(created_by, 45),
        "Size": units.human_size(row.size) if human else str(row.size),
        "Comment": row.comment,
    }


def cmd_history(args: argparse.Namespace) -> int:
    now = time.time()
    rows = [_history_item(r, now, args.human, args.no_trunc) for r in usage.history(args.image)]
    if args.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    if args.format:
        print_formatted(args.format, rows)
        return 0
    table = [[r["ID"], r["CreatedSince"], r["CreatedBy"], r["Size"], r["Comment"]] for r in rows]
    sys.stdout.write(
        output.format_table(table, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])
    )
    return 0


def _confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def cmd_image_prune(args: argparse.Namespace) -> int:
    warning = (
        "WARNING! This will remove all images without at least one container associated to them."
        if args.all
        else "WARNING! This will remove all dangling images."
    )
    if not args.force and not _confirm(warning):
        return 0
    records, freed = removal.prune(all=args.all)
    if records:
        print("Deleted Images:")
        for record in records:
            print(f"{record.action.lower()}: {record.value}")
        print()
    print(f"Total reclaimed space: {units.human_size(freed, 4)}")
    return 0


def _reclaimable(reclaimable: int, total: int, percent: bool = True) -> str:
    text = units.human_size(reclaimable, 4)
    if total > 0 and percent:
        return f"{text} ({reclaimable * 100 // total}%)"
    return text


def cmd_system_df(args: argparse.Namespace) -> int:
    du = usage.disk_usage()
    active_images = sum(1 for i in du.images if i.containers)
    used = sum(i.image.size - i.shared_size for i in du.images if i.containers)
    running = [c for c in du.containers if c.status in ("running", "paused", "restarting")]
    containers_size = sum(c.size_rw for c in du.containers)
    stopped_size = sum(c.size_rw for c in du.containers if c not in running)
    volumes_size = sum(v.size for v in du.volumes)
    idle_volumes = sum(v.size for v in du.volumes if not v.links)
    if args.format:
        items = [
            {
                "Type": "Images",
                "TotalCount": str(len(du.images)),
                "Active": str(active_images),
                "Size": units.human_size(du.layers_size, 4),
                "Reclaimable": _reclaimable(du.layers_size - used, du.layers_size),
            },
            {
                "Type": "Containers",
                "TotalCount": str(len(du.containers)),
                "Active": str(len(running)),
                "Size": units.human_size(containers_size, 4),
                "Reclaimable": _reclaimable(stopped_size, containers_size),
            },
            {
                "Type": "Local Volumes",
                "TotalCount": str(len(du.volumes)),
                "Active": str(sum(1 for v in du.volumes if v.links)),
                "Size": units.human_size(volumes_size, 4),
                "Reclaimable": _reclaimable(idle_volumes, volumes_size),
            },
            {
                "Type": "Build Cache",
                "TotalCount": "0",
                "Active": "0",
                "Size": "0B",
                "Reclaimable": "0B",
            },
        ]
        print_formatted(args.format, items)
        return 0
    if args.verbose:
        return _system_df_verbose(du)
    table = [
        [
            "Images",
            str(len(du.images)),
            str(active_images),
            units.human_size(du.layers_size, 4),
            _reclaimable(du.layers_size - used, du.layers_size),
        ],
        [
            "Containers",
            str(len(du.containers)),
            str(len(running)),
            units.human_size(containers_size, 4),
            _reclaimable(stopped_size, containers_size),
        ],
        [
            "Local Volumes",
            str(len(du.volumes)),
            str(sum(1 for v in du.volumes if v.links)),
            units.human_size(volumes_size, 4),
            _reclaimable(idle_volumes, volumes_size),
        ],
        ["Build Cache", "0", "0", "0B", "0B"],
    ]
    sys.stdout.write(output.format_table(table, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]))
    return 0


def _system_df_verbose(du: usage.DiskUsage) -> int:
    now = time.time()
    rows = []
    for item in du.images:
        for tag in item.image.repo_tags or ("<none>:<none>",):
            repo, _, name = tag.rpartition(":")
            rows.append(
                [
                    repo,
                    name,
                    item.image.short_id(),
                    output.created_ago(item.image.created, now) if item.image.created else "",
                    units.human_size(item.image.size, 4),
                    units.human_size(item.shared_size, 4),
                    units.human_size(item.unique_size, 4),
                    str(item.containers),
                ]
            )
    print("Images space usage:\n")
    sys.stdout.write(
        output.format_table(
            rows,
            [
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS",
            ],
        )
    )
    print("\nContainers space usage:\n")
    rows = []
    for c in du.containers:
        # docker's df -v uses ps's container columns: same COMMAND, CREATED and STATUS.
        ps_row = format.ps_item(c.record, c.run_state, now, False) if c.run_state else {}
        record = c.record
        rows.append(
            [
                record.id[:12],
                record.image_ref,
                ps_row.get("Command", output.truncate_command(" ".join(record.argv))),
                str(c.volumes),
                units.human_size(c.size_rw, 4),
                output.created_ago(record.created, now),
                ps_row.get("Status", c.status),
                record.name,
            ]
        )
    sys.stdout.write(
        output.format_table(
            rows,
            [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "LOCAL VOLUMES",
                "SIZE",
                "CREATED",
                "STATUS",
                "NAMES",
            ],
        )
    )
    print("\nLocal Volumes space usage:\n")
    sys.stdout.write(
        output.format_table(
            [[v.name, str(v.links), units.human_size(v.size, 4)] for v in du.volumes],
            ["VOLUME NAME", "LINKS", "SIZE"],
        )
    )
    print("\nBuild cache usage: 0B\n")
    sys.stdout.write(
        output.format_table(
            [], ["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]
        )
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("images", help="list images")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("repository", nargs="?")
    p.set_defaults(handler=cmd_images)

    p = sub.add_parser("import", help="import a rootfs tarball as an image")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message")
    p.add_argument("--platform")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("image-inspect", help="display detailed information on images")
    p.add_argument("-f", "--format")
    p.add_argument("images", nargs="+")
    p.set_defaults(handler=cmd_image_inspect)

    p = sub.add_parser("tag", help="create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(handler=cmd_tag)

    p = sub.add_parser("rmi", help="remove one or more images")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")
    p.set_defaults(handler=cmd_rmi)

    p = sub.add_parser("history", help="show the history of an image")
    p.add_argument("-H", "--human", type=_bool_flag, nargs="?", const=True, default=True)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format")
    p.add_argument("image")
    p.set_defaults(handler=cmd_history)

    p = sub.add_parser("image-prune", help="remove unused images")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.set_defaults(handler=cmd_image_prune)

    p = sub.add_parser("system-df", help="show engine disk usage")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--format")
    p.set_defaults(handler=cmd_system_df)

    p = sub.add_parser("image-bootstrap", help="build a base image from the host (busybox)")
    p.add_argument("name")
    p.add_argument("--tag")
    p.set_defaults(handler=cmd_bootstrap)
