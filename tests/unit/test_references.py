"""runtime.images.references: Docker's reference grammar, and the tag store on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import InvalidSpec
from runtime.images import references
from runtime.images.references import Reference, familiar, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Reference("docker.io", "library/busybox", "latest", None)),
        ("busybox:1.36", Reference("docker.io", "library/busybox", "1.36", None)),
        (
            "docker.io/library/busybox:latest",
            Reference("docker.io", "library/busybox", "latest", None),
        ),
        (
            "index.docker.io/library/busybox",
            Reference("docker.io", "library/busybox", "latest", None),
        ),
        ("team/app", Reference("docker.io", "team/app", "latest", None)),
        ("localhost/app", Reference("localhost", "app", "latest", None)),
        ("localhost:5000/team/app:v2", Reference("localhost:5000", "team/app", "v2", None)),
        (
            "registry.example.com/a/b/c:V_1.0-rc",
            Reference("registry.example.com", "a/b/c", "V_1.0-rc", None),
        ),
        (f"app@{DIGEST}", Reference("docker.io", "library/app", None, DIGEST)),
        (f"app:v1@{DIGEST}", Reference("docker.io", "library/app", "v1", DIGEST)),
        ("my-app__x.y", Reference("docker.io", "library/my-app__x.y", "latest", None)),
        ("[::1]:5000/app", Reference("[::1]:5000", "app", "latest", None)),
    ],
)
def test_references_normalize_like_docker(text: str, expected: Reference) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Busybox", "must be lowercase"),
        ("team/App:v1", "must be lowercase"),
        ("", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("busybox:-bad", "invalid reference format"),
        ("busybox:" + "x" * 129, "invalid reference format"),
        ("bad..name", "invalid reference format"),
        ("-lead", "invalid reference format"),
        ("a b", "invalid reference format"),
        ("app@sha256:abc", "invalid reference format"),
        ("app@sha256:" + "A" * 64, "invalid digest"),
        ("app@md5:" + "a" * 32, "invalid digest"),
        ("a" * 64, "64-byte hexadecimal"),
        ("x/" + "a" * 260, "more than 255 characters"),
    ],
)
def test_bad_references_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidSpec, match="invalid reference format") as caught:
        parse(text)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox:1.36", "busybox:1.36"),
        ("docker.io/team/app:v2", "team/app:v2"),
        ("localhost:5000/team/app:v2", "localhost:5000/team/app:v2"),
        (f"app@{DIGEST}", f"app@{DIGEST}"),
    ],
)
def test_familiar_gives_the_form_docker_prints(text: str, short: str) -> None:
    assert familiar(text) == short


def test_str_of_a_reference_is_the_normalized_form() -> None:
    assert str(parse("busybox")) == "docker.io/library/busybox:latest"


@pytest.fixture
def image_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MOORAGE_ROOT", str(tmp_path))
    yield tmp_path / "image"


def test_tags_are_stored_under_the_normalized_name(image_root: Path) -> None:
    image_id = "sha256:" + "1" * 64
    references.set_tag(parse("busybox"), image_id)
    references.set_tag(parse("localhost:5000/app:v2"), image_id)
    assert references.tags() == {
        "docker.io/library/busybox:latest": image_id,
        "localhost:5000/app:v2": image_id,
    }
    assert references.tags_of(image_id) == ("busybox:latest", "localhost:5000/app:v2")
    assert not list(image_root.glob(".repositories.json.*")), "a temp file was left behind"


def test_moving_a_tag_leaves_the_old_image_untagged(image_root: Path) -> None:
    old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    references.set_tag(parse("app:v1"), old)
    references.set_tag(parse("app:v1"), new)
    assert references.tags_of(old) == ()
    assert references.tags_of(new) == ("app:v1",)


def test_removing_a_tag_returns_the_image_it_named(image_root: Path) -> None:
    image_id = "sha256:" + "1" * 64
    references.set_tag(parse("app"), image_id)
    assert references.remove_tag(parse("app:latest")) == image_id
    assert references.remove_tag(parse("app:latest")) is None
    assert references.tags() == {}


def test_a_digest_reference_cannot_be_a_tag(image_root: Path) -> None:
    with pytest.raises(InvalidSpec, match="digest"):
        references.set_tag(parse(f"app@{DIGEST}"), "sha256:" + "1" * 64)
