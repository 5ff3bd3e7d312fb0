"""What the forms share: name rules and parsers for the text a user types."""

from __future__ import annotations

import re
import shlex

from django import forms

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NAME_RULE = "A name may use letters, digits, '_', '.' and '-', and starts with a letter or digit."
HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")
ENV_KEY = re.compile(r"^[^=\s]+$")
PORT = re.compile(
    r"^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:\d{1,5}(?:-\d{1,5})?:)?"
    r"\d{1,5}(?:-\d{1,5})?(?:/(?:tcp|udp|sctp))?$"
)
LABEL_KEY = re.compile(r"^[^=\s]+$")
MAX_COUNT = 50


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_command(text: str, label: str) -> tuple[str, ...] | None:
    text = text.strip()
    if not text:
        return None
    if "\x00" in text:
        raise forms.ValidationError(f"The {label} cannot contain NUL bytes.")
    try:
        return tuple(shlex.split(text))
    except ValueError as e:
        raise forms.ValidationError(f"The {label} has unbalanced quotes ({e}).") from e


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in lines(text):
        key, _, value = item.partition("=")
        if not LABEL_KEY.match(key):
            raise forms.ValidationError(f"Not a key=value line: {item!r}.")
        labels[key] = value
    return labels


def port_numbers_ok(item: str) -> bool:
    numbers = re.findall(r"(?<![\d.])\d+(?![\d.])", item.split("/")[0].rsplit("]", 1)[-1])
    return all(0 < int(n) <= 65535 for n in numbers)


REFERENCE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?$"
)
REPOSITORY_PREFIX = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*/?$"
)
