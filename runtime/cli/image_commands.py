"""Handlers for the image verbs available so far: images, import, image inspect,
image bootstrap. (tag, rmi, save/load, history, build and pull come with their issues.)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from runtime import images, units
from runtime.cli import output
from runtime.cli.format import print_documents, print_formatted
from runtime.errors import InvalidSpec, MoorageError


def _rows(all_images: bool, repository: str | None) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for image in images.list_images(all=all_images):
        tags = image.repo_tags or ("<none>:<none>",)
        for tag in tags:
            repo, _, name = tag.rpartition(":")
            if repository and repo != repository and tag != repository:
                continue
            rows.append({
                "Repository": repo, "Tag": name, "ID": image.short_id(),
                "FullID": image.id,
                "CreatedSince": output.created_ago(image.created, now) if image.created else "",
                "CreatedAt": image.created, "Size": units.human_size(image.size),
                "Digest": "<none>",
            })
    return rows


def cmd_images(args: argparse.Namespace) -> int:
    rows = _rows(args.all, args.repository)
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
    table = [[r["Repository"], r["Tag"], r["FullID"] if args.no_trunc else r["ID"],
              r["CreatedSince"], r["Size"]] for r in rows]
    sys.stdout.write(output.format_table(table, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED",
                                                 "SIZE"]))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if args.file == "-":
        source = sys.stdin.buffer
        image = images.import_tar(source, args.reference, args.change, args.message or "")
    else:
        try:
            with open(args.file, "rb") as source:
                image = images.import_tar(source, args.reference, args.change,
                                          args.message or "")
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

    p = sub.add_parser("image-bootstrap", help="build a base image from the host (busybox)")
    p.add_argument("name")
    p.add_argument("--tag")
    p.set_defaults(handler=cmd_bootstrap)
