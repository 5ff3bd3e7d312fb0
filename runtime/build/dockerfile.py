"""Dockerfile parsing and ARG/ENV substitution, as Docker's classic builder does them.

No kernel interface and nothing on disk: text in, ``Dockerfile`` out. Handles parser
directives (``# escape=``, ``# syntax=`` ignored), comments, line continuations with the
escape character, JSON (exec) versus shell forms, ``--flag=value`` options, and the
shell-style word expansion Docker applies to ADD, ARG, COPY, ENV, EXPOSE, FROM, LABEL,
STOPSIGNAL, USER, VOLUME and WORKDIR: ``$a``, ``${a}``, ``${a:-b}``, ``${a-b}``,
``${a:+b}``, ``${a+b}``, ``${a:?msg}``, with single and double quotes. It never expands
RUN, CMD or ENTRYPOINT (their shell does) and does not support heredocs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.errors import InvalidSpec

INSTRUCTIONS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)
EXPANDED = frozenset(
    {
        "ADD",
        "ARG",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
FLAGS: dict[str, frozenset[str]] = {
    "ADD": frozenset({"chown", "chmod", "checksum", "keep-git-dir", "link"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "FROM": frozenset({"platform"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
    "RUN": frozenset({"network", "mount", "security"}),
}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


class DockerfileError(InvalidSpec):
    """The Dockerfile cannot be parsed; the message names the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"Dockerfile parse error line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Instruction:
    keyword: str  # 'RUN', upper case
    rest: str  # the text after the keyword and flags, continuations joined
    line: int  # where the instruction starts (1-based)
    flags: tuple[tuple[str, str], ...] = ()
    json_args: tuple[str, ...] | None = None  # set for the JSON (exec) form

    @property
    def original(self) -> str:
        """The instruction as Docker prints it in ``Step n/m : ...``."""
        flags = "".join(f"--{k}={v} " for k, v in self.flags)
        return f"{self.keyword} {flags}{self.rest}".rstrip()

    def flag(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return default


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)


# --- parsing ------------------------------------------------------------------------


def parse(text: str) -> Dockerfile:
    """Parse a whole Dockerfile. Raises DockerfileError (an InvalidSpec) with the line."""
    lines = text.replace("\r\n", "\n").split("\n")
    escape, directives, index = _directives(lines)
    instructions: list[Instruction] = []
    while index < len(lines):
        start = index
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        logical = stripped
        while _continues(logical, escape):
            logical = logical.rstrip()[:-1]
            while index < len(lines) and (
                not lines[index].strip() or lines[index].lstrip().startswith("#")
            ):
                index += 1  # comments and blank lines inside a continuation vanish
            if index >= len(lines):
                break
            logical += lines[index]  # Docker keeps the next line's indentation
            index += 1
        instructions.append(parse_line(logical.strip(), start + 1, escape))
    if not instructions:
        raise InvalidSpec("the Dockerfile (Dockerfile) cannot be empty")
    return Dockerfile(instructions, escape, directives)


def _continues(text: str, escape: str) -> bool:
    trimmed = text.rstrip()
    return trimmed.endswith(escape) and not trimmed.endswith(escape * 2)


def _directives(lines: list[str]) -> tuple[str, dict[str, str], int]:
    """Directives are only read at the very top, before any comment, blank or instruction."""
    directives: dict[str, str] = {}
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match or match[1].lower() not in ("escape", "syntax", "check"):
            break
        key = match[1].lower()
        if key in directives:
            raise DockerfileError(index + 1, f"only one {key} parser directive can be used")
        directives[key] = match[2]
        index += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(1, f"invalid escape token '{escape}' does not match ` or \\")
    return escape, directives, 0 if not directives else index


def parse_line(text: str, line: int, escape: str = "\\") -> Instruction:
    """One logical line (continuations joined) to an Instruction."""
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    keyword = word.upper()
    if keyword not in INSTRUCTIONS:
        raise DockerfileError(line, f"unknown instruction: {word}")
    rest = rest.strip()
    flags: list[tuple[str, str]] = []
    allowed = FLAGS.get(keyword, frozenset())
    while rest.startswith("--") and allowed:
        token, _, after = rest.partition(" ")
        name, eq, value = token[2:].partition("=")
        if name not in allowed:
            raise DockerfileError(line, f"Unknown flag: {name}")
        if not eq and name not in ("link", "keep-git-dir", "parents"):
            raise DockerfileError(line, f"Missing a value on flag: --{name}")
        flags.append((name, value if eq else "true"))
        rest = after.strip()
    json_args = (
        _json_array(rest)
        if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "VOLUME", "COPY", "ADD")
        else None
    )
    instruction = Instruction(keyword, rest, line, tuple(flags), json_args)
    try:
        _check(instruction)
    except DockerfileError:
        raise
    except InvalidSpec as e:
        raise DockerfileError(line, str(e)) from None
    return instruction


def _json_array(rest: str) -> tuple[str, ...] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None  # Docker falls back to the shell form
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _check(ins: Instruction) -> None:
    """The per-instruction argument checks Docker makes while parsing."""
    k, rest, line = ins.keyword, ins.rest, ins.line
    if not rest and k not in ("CMD", "ENTRYPOINT", "RUN"):
        raise DockerfileError(line, f"{k} requires at least one argument")
    if k == "FROM":
        words = rest.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
            raise DockerfileError(line, "FROM requires either one or three arguments")
    elif k == "SHELL" and ins.json_args is None:
        raise DockerfileError(line, "SHELL requires the arguments to be in JSON form")
    elif k in ("COPY", "ADD"):
        count = len(ins.json_args) if ins.json_args is not None else len(rest.split())
        if count < 2:
            raise DockerfileError(
                line,
                f"{k} requires at least two arguments, but only one "
                "was provided. Destination could not be determined.",
            )
    elif k == "ONBUILD":
        trigger = rest.split(None, 1)[0].upper()
        if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(line, f"{trigger} isn't allowed as an ONBUILD trigger")
        parse_line(rest, line)
    elif k == "HEALTHCHECK":
        kind = rest.split(None, 1)[0].upper()
        if kind not in ("CMD", "NONE"):
            raise DockerfileError(line, f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    elif k in ("ENV", "LABEL", "ARG"):
        for key, _ in pairs(ins, {}, "\\"):
            if not key:
                raise DockerfileError(line, f"{k} names can not be blank")


# --- word expansion -----------------------------------------------------------------


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word with quotes removed and variables expanded (Docker's ProcessWord)."""
    return "".join(_Lexer(text, env, escape).run(split=False)) if text else ""


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Split on unquoted blanks, then expand each word (Docker's ProcessWords)."""
    return _Lexer(text, env, escape).run(split=True)


def raw_words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted blanks but keep quotes and escapes, for later expansion."""
    words: list[str] = []
    current = ""
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c.isspace():
            if current:
                words.append(current)
            current = ""
            i += 1
            continue
        current += c
        i += 1
    if quote:
        raise InvalidSpec(f"unexpected end of statement while looking for matching {quote}")
    if current:
        words.append(current)
    return words


def pairs(ins: Instruction, env: Mapping[str, str], escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL ``k=v k2="v 2"`` or the legacy ``ENV k some value``; ARG ``k`` or ``k=v``.

    Keys and values are expanded against ``env``; for ARG a key without ``=`` gets the
    value None-as-empty marker ``\\0`` so callers can tell "no default" from "".
    """
    words = raw_words(ins.rest, escape)
    if ins.keyword == "ARG":
        out = []
        for word in words:
            key, eq, value = word.partition("=")
            out.append((key, expand(value, env, escape) if eq else "\0"))
        return out
    if words and "=" not in words[0]:
        if ins.keyword == "LABEL" or len(words) < 2:
            raise DockerfileError(ins.line, f"{ins.keyword} must have two arguments")
        key, _, value = ins.rest.partition(words[0])
        return [(words[0], expand(value.strip(), env, escape))]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(
                ins.line,
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value',
            )
        out.append((expand(key, env, escape), expand(value, env, escape)))
    return out


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def run(self, split: bool, stop: str = "") -> list[str]:
        words: list[str] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if stop and c == stop:
                break
            if split and c.isspace():
                if started:
                    words.append("".join(current))
                current, started = [], False
                self.pos += 1
                continue
            started = True
            self.pos += 1
            if c == self.escape:
                if self.pos < len(self.text):
                    current.append(self.text[self.pos])
                    self.pos += 1
            elif c == "'":
                end = self.text.find("'", self.pos)
                if end < 0:
                    raise InvalidSpec(
                        "unexpected end of statement while looking for matching single-quote"
                    )
                current.append(self.text[self.pos : end])
                self.pos = end + 1
            elif c == '"':
                current.append(self._double_quoted())
            elif c == "$":
                current.append(self._dollar())
            else:
                current.append(c)
        if started or not split:
            words.append("".join(current))
        return words

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            c = self._peek()
            if not c:
                raise InvalidSpec(
                    "unexpected end of statement while looking for matching double-quote"
                )
            self.pos += 1
            if c == '"':
                return "".join(out)
            if c == self.escape:
                nxt = self._peek()
                if nxt in ('"', "$", self.escape):
                    out.append(nxt)
                    self.pos += 1
                else:
                    out.append(c)
            elif c == "$":
                out.append(self._dollar())
            else:
                out.append(c)

    def _dollar(self) -> str:
        if self._peek() != "{":
            match = _NAME.match(self.text, self.pos)
            if not match:
                return "$"
            self.pos = match.end()
            return self.env.get(match[0], "")
        self.pos += 1
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise InvalidSpec(f"missing ':' in substitution: {self.text}")
        name = match[0]
        self.pos = match.end()
        c = self._peek()
        if c == "}":
            self.pos += 1
            return self.env.get(name, "")
        colon = c == ":"
        if colon:
            self.pos += 1
        op = self._peek()
        if op not in ("-", "+", "?"):
            raise InvalidSpec(f"unsupported modifier ({op}) in substitution: {self.text}")
        self.pos += 1
        word = "".join(self.run(split=False, stop="}"))
        if self._peek() != "}":
            raise InvalidSpec(f"syntax error: missing '}}' in {self.text}")
        self.pos += 1
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set and value is not None else word
        if op == "+":
            return word if is_set else ""
        if not is_set:
            raise InvalidSpec(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""
