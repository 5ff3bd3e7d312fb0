"""Handlers for ``save`` and ``load`` (also ``image save`` / ``image load``), like docker's.

``save [-o FILE] [--format docker|oci|oci-dir] IMAGE...`` writes to FILE or stdout (never
to a terminal); ``load [-i FILE|DIR] [-q]`` reads FILE, an OCI layout directory or
stdin and prints ``Loaded image: NAME:TAG`` per tag, ``Loaded image ID: sha256:...`` for
an untagged image, as docker does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from runtime.errors import InvalidSpec
from runtime.images import archives


def cmd_save(args: argparse.Namespace) -> int:
    if args.output:
        archives.save(args.images, Path(args.output), args.format)
        return 0
    if args.format == "oci-dir":
        raise InvalidSpec("the oci-dir format needs an output directory (-o DIR)")
    if os.isatty(sys.stdout.fileno()):
        raise InvalidSpec("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    archives.save(args.images, sys.stdout.buffer, args.format)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    if args.input:
        loaded = archives.load(Path(args.input))
    else:
        if os.isatty(sys.stdin.fileno()):
            raise InvalidSpec(
                "requested load from stdin, but stdin is empty; use -i FILE or a redirect"
            )
        loaded = archives.load(sys.stdin.buffer)
    for image in loaded:
        for tag, old in image.replaced:
            print(
                f"The image {tag} already exists, renaming the old one with ID {old} "
                "to empty string"
            )
        for tag in image.tags:
            print(f"Loaded image: {tag}")
        if not image.tags:
            print(f"Loaded image ID: {image.image_id}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("save", help="save images to a tar archive (streamed to stdout)")
    p.add_argument("-o", "--output", help="write to a file (or a directory for oci-dir)")
    p.add_argument(
        "--format",
        default="docker",
        choices=sorted(archives.FORMATS),
        help="docker (default), oci (an OCI layout in a tar) or oci-dir",
    )
    p.add_argument("images", nargs="+")
    p.set_defaults(handler=cmd_save)

    p = sub.add_parser("load", help="load images from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="read from a tar file or an OCI layout directory")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for docker's sake")
    p.set_defaults(handler=cmd_load)
