"""Docker-style image references and the local tag store.

Kernel interface: flock(2) on ``repositories.json.lock`` and rename(2) for atomic writes.
Owns ``<images>/repositories.json``: a flat map from a normalized ``name:tag``
(``docker.io/library/busybox:latest``) to an image id. Parsing follows Docker's
distribution/reference grammar and normalization (``busybox`` means
``docker.io/library/busybox:latest``). It never checks that an image id exists: callers
resolve first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from runtime import paths
from runtime.errors import InvalidSpec, KernelError
from runtime.images import store

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    domain: str  # 'docker.io', 'localhost:5000'
    path: str  # 'library/busybox', 'team/app'
    tag: str | None  # 'latest' unless a digest was given alone
    digest: str | None  # 'sha256:<64 hex>'

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        short = self.path.removeprefix("library/")
        return short if "/" not in short else self.path

    def __str__(self) -> str:
        return _suffixed(self.name, self)


def _suffixed(name: str, ref: Reference) -> str:
    return name + (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")


def _bad(reason: str) -> InvalidSpec:
    return InvalidSpec(f"invalid reference format: {reason}")


def parse(ref: str) -> Reference:
    """Parse and normalize ``ref``; the tag defaults to 'latest' unless a digest is given."""
    if _HEX64.fullmatch(ref):
        raise _bad(f"repository name ({ref}) cannot be a 64-byte hexadecimal string")
    slash = ref.find("/")
    first = ref[:slash]
    if slash == -1 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, ref
    else:
        domain, remainder = first, ref[slash + 1 :]
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = "library/" + remainder
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        raise _bad(f"repository name ({remote}) must be lowercase")
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if not ref or match is None:
        raise _bad(f"{ref!r} is not [registry/]name[:tag][@digest]")
    name, tag, digest = match.groups()
    if len(name) > 255:
        raise _bad("repository name must not be more than 255 characters")
    if digest is not None:
        algorithm, _, hexpart = digest.partition(":")
        if _DIGEST_LENGTHS.get(algorithm) != len(hexpart) or hexpart.lower() != hexpart:
            raise _bad(f"invalid digest {digest!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, name[len(domain) + 1 :], tag, digest)


def familiar(ref: str | Reference) -> str:
    """The short form docker prints: 'busybox:latest', 'localhost:5000/team/app:v2'."""
    parsed = parse(ref) if isinstance(ref, str) else ref
    return _suffixed(parsed.familiar_name, parsed)


# --- the tag store -----------------------------------------------------------------


def _file() -> str:
    return str(paths.images() / "repositories.json")


def tags() -> dict[str, str]:
    """Every tag: normalized 'name:tag' -> image id. Readers need no lock (atomic writes)."""
    try:
        with open(_file(), "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise KernelError("read the tag store", errno.EUCLEAN, f"{_file()} is corrupt") from e
    except OSError as e:
        raise KernelError.from_oserror("read the tag store", e) from e
    return {str(k): str(v) for k, v in data.items()}


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, str]]:
    """Hold the store's lock; yields the current map and writes it back if changed."""
    store.ensure_dirs()
    try:
        fd = os.open(_file() + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise KernelError.from_oserror("lock the tag store", e) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = tags()
        wanted = dict(current)
        yield wanted
        if wanted != current:
            data = json.dumps(dict(sorted(wanted.items())), indent=1).encode() + b"\n"
            store.write_atomic(paths.images() / "repositories.json", data)
    finally:
        os.close(fd)  # closing drops the flock


def key(ref: Reference) -> str:
    """The tag store's key: 'name:tag', or 'name@digest' (a digest wins over a tag, as
    in Docker's lookups of 'app:v1@sha256:...')."""
    return f"{ref.name}@{ref.digest}" if ref.digest else str(ref)


def set_digest(ref: Reference, image_id: str) -> None:
    """Record ``name@digest`` for ``image_id`` (pull, load of an OCI layout)."""
    if ref.digest is None:
        raise InvalidSpec(f"{familiar(ref)} has no digest")
    with _locked() as table:
        table[key(ref)] = image_id


def digests_of(image_id: str, table: dict[str, str] | None = None) -> tuple[str, ...]:
    """The familiar 'name@sha256:...' strings pointing at ``image_id`` (RepoDigests)."""
    table = tags() if table is None else table
    return tuple(sorted(familiar(k) for k, v in table.items() if v == image_id and "@" in k))


def set_tag(ref: Reference, image_id: str) -> None:
    """Point ``ref`` (which must carry a tag, not a digest) at ``image_id``."""
    if ref.digest is not None or ref.tag is None:
        raise InvalidSpec("refusing to create a tag with a digest reference")
    with _locked() as table:
        table[str(ref)] = image_id


def remove_tag(ref: Reference) -> str | None:
    """Drop ``ref`` (a tag or a digest); return the image id it pointed at, or None."""
    with _locked() as table:
        return table.pop(key(ref), None)


def tags_of(image_id: str, table: dict[str, str] | None = None) -> tuple[str, ...]:
    """The familiar 'name:tag' strings pointing at ``image_id``, sorted."""
    table = tags() if table is None else table
    return tuple(sorted(familiar(k) for k, v in table.items() if v == image_id and "@" not in k))
