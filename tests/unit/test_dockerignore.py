""".dockerignore matching and context paths (no root; a temporary directory only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.build.context import Context, ignored, parse_ignore
from runtime.errors import InvalidSpec, NotFound


def _ignored(text: str, path: str) -> bool:
    return ignored(parse_ignore(text), path)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("secret.txt", "secret.txt", True),
        ("secret.txt", "dir/secret.txt", False),  # patterns are rooted
        ("*.txt", "a.txt", True),
        ("*.txt", "dir/a.txt", False),  # '*' never crosses '/'
        ("*/*.txt", "dir/a.txt", True),
        ("**/*.txt", "a/b/c.txt", True),
        ("**/*.txt", "c.txt", True),
        ("dir", "dir/sub/file", True),  # a parent match excludes children
        ("dir/**", "dir/x", True),
        ("/abs.txt", "abs.txt", True),
        ("./rel.txt", "rel.txt", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file12.txt", False),
        ("[ab].txt", "a.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("[!ab].txt", "c.txt", True),
        ("*.md\n!README.md", "README.md", False),  # an exception re-includes
        ("*.md\n!README.md", "CHANGES.md", True),
        ("!README.md\n*.md", "README.md", True),  # the last matching line wins
        ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
        ("\\#hash", "#hash", True),
    ],
)
def test_patterns_follow_dockers_patternmatcher(patterns: str, path: str, expected: bool) -> None:
    assert _ignored(patterns, path) is expected


def _context(tmp_path: Path, ignore: str) -> Context:
    (tmp_path / "keep.txt").write_text("keep\n")
    (tmp_path / "secret.txt").write_text("s3cret\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a\n")
    (tmp_path / "sub" / "b.log").write_text("b\n")
    (tmp_path / ".dockerignore").write_text(ignore)
    return Context.from_directory(tmp_path)


def test_copying_the_whole_context_leaves_out_ignored_files(tmp_path: Path) -> None:
    context = _context(tmp_path, "secret.txt\n**/*.log\n")
    assert context.included("") == [".dockerignore", "keep.txt", "sub", "sub/a.txt"]


def test_an_ignored_source_reads_as_missing(tmp_path: Path) -> None:
    context = _context(tmp_path, "secret.txt\n")
    with pytest.raises(NotFound, match="excluded by .dockerignore"):
        context.sources("secret.txt")


def test_sources_outside_the_context_are_refused(tmp_path: Path) -> None:
    context = _context(tmp_path, "")
    with pytest.raises(InvalidSpec, match="outside the build context"):
        context.sources("../etc/passwd")
    (tmp_path / "out").symlink_to("/etc")
    with pytest.raises(InvalidSpec, match="outside the build context"):
        context.sources("out/passwd")


def test_wildcard_sources_expand_within_one_directory(tmp_path: Path) -> None:
    context = _context(tmp_path, "secret.txt\n")
    assert context.sources("*.txt") == ["keep.txt"]
    assert context.sources("sub/*.txt") == ["sub/a.txt"]


def test_checksum_follows_content_not_modification_time(tmp_path: Path) -> None:
    context = _context(tmp_path, "")
    first = context.checksum(["sub"])
    (tmp_path / "sub" / "a.txt").touch()
    assert context.checksum(["sub"]) == first
    (tmp_path / "sub" / "a.txt").write_text("changed\n")
    assert context.checksum(["sub"]) != first
