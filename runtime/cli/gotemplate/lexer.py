"""The lexer of Go's text/template, delimiters ``{{`` ``}}``.

It follows ``text/template/parse/lex.go``: text, trim markers (``{{- `` and `` -}}``),
comments, and inside actions spaces, fields, variables, identifiers, keywords, numbers,
strings, raw strings, character constants, ``( ) | = :=`` and ``,``. Spaces are tokens,
because the parser needs them to tell ``.A.B`` (a chain) from ``.A .B`` (two operands).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidSpec

LEFT, RIGHT = "{{", "}}"
SPACE_CHARS = " \t\r\n"
KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range",
            "nil", "template", "with"}  # fmt: skip

# Token kinds.
TEXT, LDELIM, RDELIM, COMMENT, EOF = "text", "{{", "}}", "comment", "EOF"
SPACE, FIELD, VARIABLE, IDENT, DOT, BOOL = "space", "field", "variable", "ident", "dot", "bool"
NUMBER, CHARCONST, STRING, RAWSTRING = "number", "char constant", "string", "raw string"
LPAREN, RPAREN, PIPE, ASSIGN, DECLARE, CHAR = "(", ")", "|", "=", ":=", "char"

_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?)i?"
)
_WORD = re.compile(r"\w*")


@dataclass(frozen=True)
class Token:
    kind: str
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        if self.kind == EOF:
            return "EOF"
        if self.kind in KEYWORDS:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return f'"{self.val[:10]}"...'
        return f'"{self.val}"'


class LexError(InvalidSpec):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _unicode_name(ch: str) -> str:
    return f"U+{ord(ch):04X} '{ch}'"


def lex(text: str) -> list[Token]:
    return _Lexer(text).run()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.pos = 0
        self.paren_depth = 0

    def line_at(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def emit(self, kind: str, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], start, self.line_at(start)))

    def error(self, message: str) -> LexError:
        return LexError(message, self.line_at(self.pos))

    def run(self) -> list[Token]:
        text = self.text
        while True:
            at = text.find(LEFT, self.pos)
            if at < 0:
                if self.pos < len(text):
                    self.emit(TEXT, self.pos, len(text))
                self.tokens.append(Token(EOF, "", len(text), self.line_at(len(text))))
                return self.tokens
            trim_left = text.startswith("-", at + 2) and text[at + 3 : at + 4] in tuple(SPACE_CHARS)
            end = len(text[self.pos : at].rstrip(SPACE_CHARS)) + self.pos if trim_left else at
            if end > self.pos:
                self.emit(TEXT, self.pos, end)
            after = at + 2 + (2 if trim_left else 0)
            if text.startswith("/*", after):
                self.pos = after
                self.comment()
                continue
            self.emit(LDELIM, at, at + 2)
            self.pos = after
            self.paren_depth = 0
            self.inside_action()

    def at_right_delim(self) -> tuple[bool, bool]:
        text, pos = self.text, self.pos
        if text[pos : pos + 1] in tuple(SPACE_CHARS) and text.startswith("-" + RIGHT, pos + 1):
            return True, True
        return text.startswith(RIGHT, pos), False

    def right_delim(self, trim: bool) -> None:
        if trim:
            self.pos += 2
        self.emit(RDELIM, self.pos, self.pos + 2)
        self.pos += 2
        if trim:
            rest = self.text[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))

    def comment(self) -> None:
        close = self.text.find("*/", self.pos + 2)
        if close < 0:
            raise self.error("unclosed comment")
        start = self.pos
        self.pos = close + 2
        delim, trim = self.at_right_delim()
        if not delim:
            raise self.error("comment ends before closing delimiter")
        self.emit(COMMENT, start, self.pos)
        if trim:
            self.pos += 2
        self.pos += 2
        if trim:
            rest = self.text[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))

    def at_terminator(self) -> bool:
        ch = self.text[self.pos : self.pos + 1]
        if ch == "" or ch in SPACE_CHARS or ch in ".,|:()":
            return True
        return self.text.startswith(RIGHT, self.pos)

    def inside_action(self) -> None:
        text = self.text
        while True:
            delim, trim = self.at_right_delim()
            if delim:
                if self.paren_depth:
                    raise self.error("unclosed left paren")
                self.right_delim(trim)
                return
            if self.pos >= len(text):
                raise self.error("unclosed action")
            start = self.pos
            ch = text[start]
            if ch in SPACE_CHARS:
                end = start
                while end < len(text) and text[end] in SPACE_CHARS:
                    end += 1
                # Leave the last space to the " -}}" trim marker that may follow.
                if text.startswith("-" + RIGHT, end):
                    end -= 1
                if end > start:
                    self.emit(SPACE, start, end)
                self.pos = end
            elif ch == "=":
                self.emit(ASSIGN, start, start + 1)
                self.pos += 1
            elif ch == ":":
                if not text.startswith(":=", start):
                    self.pos += 1
                    raise self.error("expected :=")
                self.emit(DECLARE, start, start + 2)
                self.pos += 2
            elif ch == "|":
                self.emit(PIPE, start, start + 1)
                self.pos += 1
            elif ch == '"':
                self.quoted('"', STRING, "unterminated quoted string")
            elif ch == "`":
                close = text.find("`", start + 1)
                if close < 0:
                    raise self.error("unterminated raw quoted string")
                self.emit(RAWSTRING, start, close + 1)
                self.pos = close + 1
            elif ch == "'":
                self.quoted("'", CHARCONST, "unterminated character constant")
            elif ch == "$":
                self.field_or_variable(VARIABLE)
            elif ch == "." and not text[start + 1 : start + 2].isdigit():
                self.field_or_variable(FIELD)
            elif ch in "+-." or ch.isdigit():
                self.number()
            elif ch.isalnum() or ch == "_":
                self.identifier()
            elif ch == "(":
                self.emit(LPAREN, start, start + 1)
                self.paren_depth += 1
                self.pos += 1
            elif ch == ")":
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    raise self.error("unexpected right paren")
                self.emit(RPAREN, start, start + 1)
                self.pos += 1
            elif ord(ch) < 0x80 and ch.isprintable():
                self.emit(CHAR, start, start + 1)
                self.pos += 1
            else:
                raise self.error(f"unrecognized character in action: {_unicode_name(ch)}")

    def quoted(self, quote: str, kind: str, unterminated: str) -> None:
        text, i = self.text, self.pos + 1
        while True:
            if i >= len(text) or text[i] == "\n":
                raise self.error(unterminated)
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                break
            i += 1
        self.emit(kind, self.pos, i + 1)
        self.pos = i + 1

    def field_or_variable(self, kind: str) -> None:
        start = self.pos
        self.pos += 1
        if self.at_terminator():
            self.emit(VARIABLE if kind == VARIABLE else DOT, start, self.pos)
            return
        word = _WORD.match(self.text, self.pos)
        assert word is not None
        self.pos = word.end()
        if not self.at_terminator():
            raise self.error(f"bad character {_unicode_name(self.text[self.pos])}")
        self.emit(kind, start, self.pos)

    def identifier(self) -> None:
        start = self.pos
        word = _WORD.match(self.text, start)
        assert word is not None
        self.pos = word.end()
        if not self.at_terminator():
            raise self.error(f"bad character {_unicode_name(self.text[self.pos])}")
        value = self.text[start : self.pos]
        if value in KEYWORDS:
            kind = value
        elif value in ("true", "false"):
            kind = BOOL
        else:
            kind = IDENT
        self.emit(kind, start, self.pos)

    def number(self) -> None:
        start = self.pos
        match = _NUMBER.match(self.text, start)
        end = match.end() if match else start
        if (
            end == start
            or end < len(self.text)
            and (self.text[end].isalnum() or self.text[end] == "_")
        ):
            bad_end = end + 1 if end < len(self.text) else end
            raise self.error(f"bad number syntax: {self.text[start:bad_end]!r}".replace("'", '"'))
        self.emit(NUMBER, start, end)
        self.pos = end
