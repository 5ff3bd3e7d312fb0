"""Container names: docker-style random names and docker's name rule."""

from __future__ import annotations

import random
import re

import pytest

from runtime.errors import InvalidSpec, NameInUse
from runtime.names import ADJECTIVES, ATTEMPTS, SURNAMES, random_name, validate_name


def test_word_lists_are_big_enough_and_free_of_duplicates() -> None:
    assert len(ADJECTIVES) >= 80 and len(set(ADJECTIVES)) == len(ADJECTIVES)
    assert len(SURNAMES) >= 100 and len(set(SURNAMES)) == len(SURNAMES)
    for word in ADJECTIVES + SURNAMES:
        assert re.fullmatch(r"[a-z]+", word), word


def test_random_name_is_adjective_underscore_surname() -> None:
    name = random_name(lambda _: False, rng=random.Random(1))
    adjective, surname = name.split("_")
    assert adjective in ADJECTIVES
    assert surname in SURNAMES
    assert validate_name(name) == name


def test_random_names_vary() -> None:
    rng = random.Random(7)
    names = {random_name(lambda _: False, rng=rng) for _ in range(50)}
    assert len(names) > 40


def test_taken_names_are_retried_with_a_digit_suffix() -> None:
    asked: list[str] = []

    def taken(name: str) -> bool:
        asked.append(name)
        return len(asked) < 3

    name = random_name(taken, rng=random.Random(3))
    assert len(asked) == 3
    assert re.fullmatch(r"[a-z]+_[a-z]+", asked[0])
    assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", asked[1])
    assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", name)
    assert name == asked[-1]


def test_after_six_taken_names_the_fallback_is_used() -> None:
    asked: list[str] = []

    def taken(name: str) -> bool:
        asked.append(name)
        return True

    assert random_name(taken, fallback="0123456789ab") == "0123456789ab"
    assert len(asked) == ATTEMPTS == 6


def test_without_a_fallback_running_out_of_names_is_a_name_conflict() -> None:
    with pytest.raises(NameInUse):
        random_name(lambda _: True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "web"),
        ("/web", "web"),
        ("my-app_1.0", "my-app_1.0"),
        ("0abc", "0abc"),
        ("ab", "ab"),
        ("A.b-C_d", "A.b-C_d"),
    ],
)
def test_valid_names_pass_without_their_leading_slash(name: str, expected: str) -> None:
    assert validate_name(name) == expected


@pytest.mark.parametrize("name", ["", "a", "/", "-web", "_web", ".web", "we b", "web/1", "wéb"])
def test_invalid_names_are_refused_with_dockers_message(name: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        validate_name(name)
    assert str(err.value) == (
        f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )
