"""``save`` and ``load``: images in and out of the store as docker-archive or OCI layouts.

Kernel interfaces: those of ``store`` (layers unpacked by a chrooted child, rename(2)
to publish) and plain file I/O on the archive; ``-o FILE`` appears only once complete.

Owns nothing on disk but a spool file in ``paths.tmp()`` while it loads from a pipe or
a compressed archive (no larger than ``archive.byte_limit``: a gzip bomb is refused
while it is decompressed). Saved layers are the tars the store kept (``store.layer_tar``),
so they hash to the config's ``rootfs.diff_ids`` and a saved and reloaded image has the
same id and history. Loads are all or nothing (``loading``). It never writes a path
taken from an archive: archives are indexed and streamed, never extracted.

    save(["busybox", "app:v2"], Path("x.tar"))            # docker-archive
    save(["busybox"], Path("x.tar"), format="oci")         # OCI layout in a tar
    save(["busybox"], Path("dir"), format="oci-dir")       # OCI layout directory
    load(Path("x.tar"))  -> [Loaded(image_id, tags, replaced)]
"""

from __future__ import annotations

import contextlib
import json
import lzma
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, cast

from runtime import archive, images, paths
from runtime.errors import InvalidSpec, KernelError, NotFound
from runtime.images import bootstrap, references, store
from runtime.images.archives import docker_archive, loading, oci_layout, sinks, sources
from runtime.images.archives.loading import Loaded

__all__ = ["FORMATS", "Loaded", "load", "save"]

FORMATS = {
    "docker": "docker",
    "docker-archive": "docker",
    "oci": "oci",
    "oci-archive": "oci",
    "oci-dir": "oci-dir",
}


def _selected(refs: Sequence[str]) -> list[tuple[str, bytes, list[str]]]:
    """(image id, config bytes, familiar tags) per image, in the order first named.

    A name:tag adds that tag; a bare repository name adds every tag of it (as docker
    save does); an id or id prefix adds the image without tags.
    """
    chosen: dict[str, list[str]] = {}
    table = references.tags()
    for ref in refs:
        tags: list[str] = []
        try:
            parsed = references.parse(ref)
        except InvalidSpec:
            parsed = None
        if parsed is not None and parsed.digest is None and ":" not in ref.rsplit("/", 1)[-1]:
            tags = sorted(
                references.familiar(k) for k in table if k.rsplit(":", 1)[0] == parsed.name
            )
        if tags:
            image_ids = [table[str(references.parse(t))] for t in tags]
        else:
            image = images.resolve(ref)
            image_ids = [image.id]
            if parsed is not None and parsed.tag and str(parsed) in table:
                tags = [references.familiar(parsed)]
        for position, image_id in enumerate(image_ids):
            listed = chosen.setdefault(image_id, [])
            if tags and tags[position] not in listed:
                listed.append(tags[position])
    return [(i, store.get_config(i), t) for i, t in chosen.items()]


def _chains(config: bytes) -> list[str]:
    return store.chain_ids(json.loads(config)["rootfs"]["diff_ids"])


def _layer_tar(chain_id: str) -> Path:
    """The layer's stored tar.

    A base layer stored before tars were kept (the bootstrapped busybox) is rebuilt:
    bootstrap is deterministic, and ``adopt_layer_tar`` takes the rebuilt tar only if
    it hashes to the layer's diff id. Any other such layer is a NotFound saying why.
    """
    try:
        return store.layer_tar(chain_id)
    except NotFound as missing:
        if not store.has_layer(chain_id) or store.layer(chain_id).parent is not None:
            raise
        try:
            host = bootstrap.find()
        except NotFound:
            raise missing from None
        with tempfile.NamedTemporaryFile(dir=paths.tmp(), delete=False) as f:
            rebuilt = Path(f.name)
            try:
                bootstrap.write_rootfs(cast(BinaryIO, f), host)
            except BaseException:
                rebuilt.unlink()
                raise
        try:
            return store.adopt_layer_tar(chain_id, rebuilt)
        except InvalidSpec:
            rebuilt.unlink()
            raise missing from None


def save(refs: Sequence[str], out: Path | BinaryIO, format: str = "docker") -> None:
    """Write the images ``refs`` name to ``out`` (a path, or a binary stream)."""
    kind = FORMATS.get(format)
    if kind is None:
        raise InvalidSpec(f"unknown archive format {format!r}; use docker, oci or oci-dir")
    if not refs:
        raise InvalidSpec("save needs at least one image")
    chosen = _selected(refs)
    for _, config, _ in chosen:  # fail before writing anything if a tar is missing
        for chain in _chains(config):
            _layer_tar(chain)
    writer = docker_archive.write if kind == "docker" else oci_layout.write
    if kind == "oci-dir":
        if not isinstance(out, Path):
            raise InvalidSpec("the oci-dir format needs an output directory (-o DIR)")
        _save_dir(out, chosen)
        return
    try:
        if isinstance(out, Path):
            with sinks.atomic_file(out) as f:
                tar = sinks.TarSink(f)
                writer(tar, chosen, _layer_tar, _chains)
                tar.close()
        else:
            tar = sinks.TarSink(out)
            writer(tar, chosen, _layer_tar, _chains)
            tar.close()
    except OSError as e:
        raise KernelError.from_oserror("write the archive", e) from e


def _save_dir(out: Path, chosen: list[tuple[str, bytes, list[str]]]) -> None:
    """An OCI layout directory, written beside ``out`` and renamed in once complete."""
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InvalidSpec(f"{out} exists and is not an empty directory")
    try:
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    except OSError as e:
        raise KernelError.from_oserror(f"create {out}", e) from e
    try:
        oci_layout.write(sinks.DirSink(staging), chosen, _layer_tar, _chains)
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except OSError as e:
        raise KernelError.from_oserror(f"write {out}", e) from e
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def load(source: Path | BinaryIO) -> list[Loaded]:
    """Store the images of a docker-archive or OCI archive (a file, stream or layout dir).

    Compressed archives (gzip, bzip2, xz) and pipes are spooled to ``paths.tmp()``
    first. All or nothing: on any error no layer, config or tag of this load remains.
    """
    if isinstance(source, Path) and source.is_dir():
        return _load_from(sources.DirSource(source))
    try:
        opened = open(source, "rb") if isinstance(source, Path) else source
    except FileNotFoundError:
        raise InvalidSpec(f"open {source}: no such file or directory") from None
    except OSError as e:
        raise KernelError.from_oserror(f"open {source}", e) from e
    try:
        with _seekable_tar(opened) as tar:
            return _load_from(sources.TarSource(tar))
    finally:
        if opened is not source:
            opened.close()


@contextlib.contextmanager
def _seekable_tar(f: BinaryIO) -> Iterator[BinaryIO]:
    """The archive as a seekable uncompressed file: itself, or a decompressed spool copy."""
    if _seekable(f):
        start = f.tell()
        head = f.read(6)
        f.seek(start)
        if not head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
            yield f
            return
    limit = archive.byte_limit(paths.tmp())
    with tempfile.TemporaryFile(dir=paths.tmp()) as spool:
        stream = archive.decompressed(f)
        try:
            while chunk := stream.read(1 << 20):
                spool.write(chunk)
                if spool.tell() > limit:  # a gzip bomb: stop before it fills the disk
                    raise InvalidSpec(archive.too_big(limit))
        except (EOFError, zlib.error, lzma.LZMAError) as e:
            raise InvalidSpec(f"compressed archive is corrupt or truncated: {e}") from e
        except OSError as e:
            if e.errno is not None:
                raise KernelError.from_oserror("read the archive", e) from e
            raise InvalidSpec(f"compressed archive is corrupt or truncated: {e}") from e
        spool.seek(0)
        yield cast(BinaryIO, spool)


def _seekable(f: BinaryIO) -> bool:
    try:
        return f.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _load_from(source: sources.Source) -> list[Loaded]:
    if source.exists(docker_archive.MANIFEST):
        candidates = docker_archive.parse(source)
    elif source.exists(oci_layout.INDEX):
        candidates = oci_layout.parse(source)
    else:
        raise InvalidSpec(
            "the archive has neither manifest.json nor index.json: it is not a docker save "
            "archive or an OCI layout"
        )
    return loading.store_all(source, candidates)
