"""The build context: a directory or a tar stream, filtered by ``.dockerignore``.

Kernel interface: none of its own; a tar context is unpacked by ``runtime.archive``
(chrooted child, hostile-archive checks) into a temporary directory under
``paths.tmp()``, which ``close`` removes. A directory context is read in place and never
written. ``.dockerignore`` follows Docker's patternmatcher: Go ``filepath.Match`` syntax
per path element, ``**`` for any number of directories, ``!`` exceptions, the last
matching line wins, and a pattern that matches a parent directory excludes everything
under it. It never follows a symlink out of the context and never reads a path that
cleans to outside it.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from runtime import archive, paths
from runtime.errors import InvalidSpec, KernelError, NotFound

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool  # a '!' line: re-include what matches

    def matches(self, rel: str) -> bool:
        if self.regex.match(rel):
            return True
        parts = rel.split("/")
        return any(self.regex.match("/".join(parts[:i])) for i in range(1, len(parts)))


def _compile(pattern: str) -> re.Pattern[str]:
    """A Go filepath.Match pattern, plus ``**``, as an anchored regex (as moby does it)."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 2
                if pattern[i : i + 1] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidSpec(f"syntax error in .dockerignore pattern: {pattern}")
            body = pattern[i + 1 : end]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def parse_ignore(text: str) -> list[Pattern]:
    """The lines of a .dockerignore file as patterns, in order."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line).lstrip("/") if line else ""
        if cleaned in ("", "."):
            continue
        patterns.append(Pattern(cleaned, _compile(cleaned), exclusion))
    return patterns


def ignored(patterns: list[Pattern], rel: str) -> bool:
    """True if the context path ``rel`` ('dir/file', no leading '/') is excluded."""
    result = False
    for pattern in patterns:
        if pattern.matches(rel):
            result = not pattern.exclusion
    return result


class Context:
    """A build context rooted at ``root``. Use as a context manager for tar contexts."""

    def __init__(self, root: Path, owned: bool = False) -> None:
        self.root = Path(root)
        self._owned = owned
        try:
            text = (self.root / DOCKERIGNORE).read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as e:
            raise KernelError.from_oserror("read .dockerignore", e) from e
        self.patterns = parse_ignore(text)

    @classmethod
    def from_directory(cls, path: str | Path) -> Context:
        root = Path(path)
        if not root.is_dir():
            raise NotFound(f'unable to prepare context: path "{path}" not found')
        return cls(root.resolve())

    @classmethod
    def from_tar(cls, source: BinaryIO) -> Context:
        """Unpack a (possibly compressed) tar context into a private temporary directory."""
        try:
            root = Path(tempfile.mkdtemp(prefix="build-context-", dir=paths.tmp()))
        except OSError as e:
            raise KernelError.from_oserror("create a build context directory", e) from e
        try:
            archive.extract(source, root, whiteouts="keep")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(root, owned=True)

    @classmethod
    def from_stdin(cls, source: BinaryIO) -> Context:
        """``build -``: a tar context (maybe compressed), or a lone Dockerfile."""
        data = source.read()
        is_tar = (
            data[:2] == b"\x1f\x8b"
            or data[:3] == b"BZh"
            or data[:6] == b"\xfd7zXZ\x00"
            or data[257:262] == b"ustar"
        )
        if not is_tar:  # `build - < Dockerfile`: no files, just the Dockerfile
            data = _single_file_tar("Dockerfile", data)
        return cls.from_tar(io.BytesIO(data))

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------

    def is_ignored(self, rel: str) -> bool:
        return ignored(self.patterns, rel)

    def read_dockerfile(self, name: str = "Dockerfile") -> str:
        """The Dockerfile (it is read even when .dockerignore excludes it, as in Docker)."""
        path = Path(name) if os.path.isabs(name) else self.root / name
        try:
            return path.read_text()
        except FileNotFoundError:
            raise NotFound(f"Cannot locate specified Dockerfile: {name}") from None
        except OSError as e:
            raise KernelError.from_oserror(f"read {name}", e) from e

    def clean(self, source: str) -> str:
        """``source`` as a context-relative path ('' for the root); refuses escapes."""
        normal = posixpath.normpath("/" + source)
        joined = posixpath.normpath(source if not source.startswith("/") else source[1:])
        if joined == ".." or joined.startswith("../"):
            raise InvalidSpec(f"forbidden path outside the build context: {source} ()")
        return normal.lstrip("/")

    def sources(self, pattern: str) -> list[str]:
        """Context-relative paths for one COPY/ADD source, wildcards expanded."""
        rel = self.clean(pattern)
        if any(ch in rel for ch in "*?["):
            found = sorted(
                r for r in self.walk("") if _glob(rel).match(r) and not self.is_ignored(r)
            )
            if not found:
                raise NotFound(f"no source files were specified matching {pattern}")
            return found
        full = self.root / rel
        if rel and (not os.path.lexists(full) or self.is_ignored(rel)):
            raise NotFound(
                "file not found in build context or excluded by .dockerignore: "
                f"stat {rel}: file does not exist"
            )
        self._check_inside(rel)
        return [rel]

    def _check_inside(self, rel: str) -> None:
        # Intermediate symlinks must not lead out of the context (the last may be a link:
        # it is copied as a link, not followed).
        if not rel:
            return  # the context root itself
        parent = (self.root / rel).parent
        real = os.path.realpath(parent)
        if real != str(self.root) and not real.startswith(str(self.root) + "/"):
            raise InvalidSpec(f"forbidden path outside the build context: {rel} ()")

    def walk(self, rel: str) -> list[str]:
        """Every path under ``rel`` (itself excluded), not following symlinks, sorted."""
        out: list[str] = []
        base = self.root / rel if rel else self.root
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            prefix = os.path.relpath(dirpath, self.root)
            prefix = "" if prefix == "." else prefix + "/"
            out.extend(prefix + name for name in dirnames + sorted(filenames))
        return sorted(out)

    def size(self) -> int:
        """Bytes of the regular files a build can see (for 'Sending build context')."""
        total = 0
        for rel in self.walk(""):
            if not self.is_ignored(rel):
                st = os.lstat(self.root / rel)
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
        return total

    def is_dir(self, rel: str) -> bool:
        """True for a real directory (a symlink to one is copied as a link)."""
        full = self.root / rel if rel else self.root
        return full.is_dir() and not full.is_symlink()

    def included(self, rel: str) -> list[str]:
        """The paths ``COPY rel`` takes: itself or, for a directory, what is under it."""
        if self.is_dir(rel):
            return [r for r in self.walk(rel) if not self.is_ignored(r)]
        return [rel]

    def checksum(self, rels: list[str]) -> str:
        """Docker-style content digest of what a COPY takes: names, types, modes, bytes.

        Modification times are left out, so touching a file does not bust the cache.
        """
        digest = hashlib.sha256()
        for rel in rels:
            for item in [rel] + self.included(rel) if self.is_dir(rel) else [rel]:
                full = self.root / item if item else self.root
                st = os.lstat(full)
                digest.update(
                    f"{item}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode()
                )
                if stat.S_ISLNK(st.st_mode):
                    digest.update(os.readlink(full).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as f:
                        while chunk := f.read(1 << 20):
                            digest.update(chunk)
                digest.update(b"\0")
        return digest.hexdigest()


def _glob(rel_pattern: str) -> re.Pattern[str]:
    """filepath.Match for one COPY source: '*' never crosses '/'."""
    compiled = _compile(rel_pattern.replace("**", "*"))
    return compiled


def _single_file_tar(name: str, data: bytes) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
