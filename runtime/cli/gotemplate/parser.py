"""The parser of Go's text/template: tokens to a node tree.

It follows ``text/template/parse/parse.go`` closely, down to its error messages
(``unexpected {{end}}``, ``function "foo" not defined``, ``undefined variable "$x"``), so
that a bad ``--format`` fails the way Docker's does. Not supported: ``define``,
``template`` and ``block`` (Docker's formats never use them).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from runtime.cli.gotemplate import lexer as lx
from runtime.cli.gotemplate.gofmt import quote
from runtime.errors import InvalidSpec


class ParseError(InvalidSpec):
    pass


# ------------------------------------------------------------------------------ nodes


@dataclass
class Node:
    pos: int


@dataclass
class TextNode(Node):
    text: str


@dataclass
class FieldNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return "." + ".".join(self.ident)


@dataclass
class VariableNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode(Node):
    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass
class PipeNode(Node):
    line: int
    decl: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(d) for d in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(c) for c in self.cmds)


@dataclass
class ChainNode(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class ActionNode(Node):
    line: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class BranchNode(Node):
    """``if``, ``range`` and ``with``: the kind says which."""

    kind: str
    line: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        return f"{{{{{self.kind} {self.pipe}}}}}...{{{{end}}}}"


@dataclass
class BreakNode(Node):
    pass


@dataclass
class ContinueNode(Node):
    pass


@dataclass
class _EndNode(Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass
class _ElseNode(Node):
    def __str__(self) -> str:
        return "{{else}}"


# ---------------------------------------------------------------------------- literals


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\"}  # fmt: skip


def unquote(token: str) -> str:
    """``strconv.Unquote`` for "..." strings, `raw` strings and 'c' constants."""
    quote_char, body = token[0], token[1:-1]
    if quote_char == "`":
        return body.replace("\r", "")
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if ch == quote_char:
                raise ValueError("invalid syntax")
            out += ch.encode()
            i += 1
            continue
        esc = body[i + 1 : i + 2]
        if esc in _ESCAPES:
            out += _ESCAPES[esc].encode()
            i += 2
        elif esc in ("'", '"'):
            if esc != quote_char:
                raise ValueError("invalid syntax")
            out += esc.encode()
            i += 2
        elif esc == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif esc in ("u", "U"):
            size = 4 if esc == "u" else 8
            digits = body[i + 2 : i + 2 + size]
            if len(digits) != size:
                raise ValueError("invalid syntax")
            out += chr(int(digits, 16)).encode()
            i += 2 + size
        elif esc in "01234567" and esc:
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", errors="replace")


def parse_number(text: str) -> int | float:
    clean = text.replace("_", "")
    if clean.endswith("i"):
        raise ValueError(f"complex number {text} not supported")
    lower = clean.lower().lstrip("+-")
    negative = clean.startswith("-")
    if lower.startswith("0x") and not any(c in lower for c in ".p"):
        value: int | float = int(lower, 16)
    elif lower.startswith("0x"):
        value = float.fromhex(lower)
    elif lower.startswith(("0o", "0b")):
        value = int(lower, 0)
    elif any(c in lower for c in ".e"):
        value = float(lower)
    elif len(lower) > 1 and lower.startswith("0"):
        value = int(lower, 8)  # Go reads a leading 0 as octal
    else:
        value = int(lower)
    return -value if negative else value


# ------------------------------------------------------------------------------ parser


class Parser:
    def __init__(self, text: str, functions: Collection[str], name: str = "") -> None:
        self.text = text
        self.functions = functions
        self.name = name
        try:
            self.tokens = lx.lex(text)
        except lx.LexError as e:
            raise ParseError(f"template: {name}:{e.line}: {e}") from e
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0

    # token stream
    def next(self) -> lx.Token:
        # Reading past the end keeps returning EOF; backup() stays symmetrical.
        token = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.i += 1
        return token

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> lx.Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> lx.Token:
        token = self.next()
        while token.kind == lx.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> lx.Token:
        token = self.next_non_space()
        self.backup()
        return token

    def error(self, message: str, token: lx.Token | None = None) -> ParseError:
        line = (token or self.tokens[min(max(self.i - 1, 0), len(self.tokens) - 1)]).line
        return ParseError(f"template: {self.name}:{line}: {message}")

    def unexpected(self, token: lx.Token, context: str) -> ParseError:
        return self.error(f"unexpected {token} in {context}", token)

    def expect(self, kind: str, context: str) -> lx.Token:
        token = self.next_non_space()
        if token.kind != kind:
            raise self.unexpected(token, context)
        return token

    # grammar
    def parse(self) -> ListNode:
        root = ListNode(0)
        while self.peek().kind != lx.EOF:
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                raise self.error(f"unexpected {node}")
            if node is not None:
                root.nodes.append(node)
        return root

    def item_list(self) -> tuple[ListNode, Node]:
        items = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != lx.EOF:
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                return items, node
            if node is not None:
                items.nodes.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node | None:
        token = self.next_non_space()
        if token.kind == lx.TEXT:
            return TextNode(token.pos, token.val)
        if token.kind == lx.LDELIM:
            return self.action()
        if token.kind == lx.COMMENT:
            return None
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        kind = token.kind
        if kind in ("if", "range", "with"):
            return self.control(kind)
        if kind == "else":
            return self.else_control()
        if kind == "end":
            self.expect(lx.RDELIM, "end")
            return _EndNode(token.pos)
        if kind in ("break", "continue"):
            if self.range_depth == 0:
                raise self.error(f"{{{{{kind}}}}} outside {{{{range}}}}")
            following = self.next_non_space()
            if following.kind != lx.RDELIM:
                raise self.unexpected(following, f"{{{{{kind}}}}}")
            return BreakNode(token.pos) if kind == "break" else ContinueNode(token.pos)
        if kind in ("define", "template", "block"):
            raise self.error(f"{{{{{kind}}}}} is not supported in --format templates")
        self.backup()
        start = self.peek()
        return ActionNode(start.pos, start.line, self.pipeline("command", lx.RDELIM))

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.kind in ("if", "with"):
            # "{{else if x}}" is parsed as "{{else}}{{if x}}...{{end}}" sharing one end.
            return _ElseNode(peek.pos)
        token = self.expect(lx.RDELIM, "else")
        return _ElseNode(token.pos)

    def control(self, kind: str) -> BranchNode:
        mark = len(self.vars)
        pipe = self.pipeline(kind, lx.RDELIM)
        if kind == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: ListNode | None = None
        if isinstance(end, _ElseNode):
            if kind in ("if", "with") and self.peek().kind == kind:
                self.next()
                else_body = ListNode(end.pos, [self.control(kind)])
            else:
                else_body, end = self.item_list()
                if not isinstance(end, _EndNode):
                    raise self.error(f"expected end; found {end}")
        del self.vars[mark:]
        return BranchNode(pipe.pos, kind, pipe.line, pipe, body, else_body)

    def pipeline(self, context: str, end: str) -> PipeNode:
        start = self.peek_non_space()
        pipe = PipeNode(start.pos, start.line)
        while (var := self.peek_non_space()).kind == lx.VARIABLE:
            at_var = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.kind in (lx.ASSIGN, lx.DECLARE):
                pipe.is_assign = nxt.kind == lx.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(var.pos, [var.val]))
                self.vars.append(var.val)
                break
            if nxt.kind == lx.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(var.pos, [var.val]))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (lx.VARIABLE, lx.RDELIM, lx.RPAREN):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            # Not a declaration after all: rewind to the variable.
            self.i = at_var
            break
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.kind in (lx.BOOL, lx.CHARCONST, lx.DOT, lx.FIELD, lx.IDENT, lx.NUMBER,
                              "nil", lx.RAWSTRING, lx.STRING, lx.VARIABLE, lx.LPAREN):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == lx.SPACE:
                continue
            if token.kind in (lx.RDELIM, lx.RPAREN):
                self.backup()
            elif token.kind != lx.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind != lx.FIELD:
            return node
        # Go positions a chain at its first chained field: ".State.Foo" is at ".Foo".
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().kind == lx.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(pos, node.ident + fields)
        if isinstance(node, VariableNode):
            return VariableNode(pos, node.ident + fields)
        if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
            raise self.error(f"unexpected . after term {quote(str(node))}")
        return ChainNode(pos, node, fields)

    def term(self) -> Node | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == lx.IDENT:
            if token.val not in self.functions:
                raise self.error(f'function "{token.val}" not defined', token)
            return IdentifierNode(token.pos, token.val)
        if kind == lx.DOT:
            return DotNode(token.pos)
        if kind == "nil":
            return NilNode(token.pos)
        if kind == lx.VARIABLE:
            parts = token.val.split(".")
            if parts[0] not in self.vars:
                raise self.error(f'undefined variable "{parts[0]}"', token)
            return VariableNode(token.pos, parts)
        if kind == lx.FIELD:
            return FieldNode(token.pos, [token.val[1:]])
        if kind == lx.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if kind in (lx.NUMBER, lx.CHARCONST):
            value: Any
            try:
                if kind == lx.CHARCONST:
                    value = ord(unquote(token.val))
                else:
                    value = parse_number(token.val)
            except (ValueError, TypeError) as e:
                raise self.error(f"illegal number syntax: {quote(token.val)}", token) from e
            return NumberNode(token.pos, token.val, value)
        if kind == lx.LPAREN:
            return self.pipeline("parenthesized pipeline", lx.RPAREN)
        if kind in (lx.STRING, lx.RAWSTRING):
            try:
                return StringNode(token.pos, token.val, unquote(token.val))
            except (ValueError, IndexError) as e:
                raise self.error("invalid syntax", token) from e
        self.backup()
        return None


def parse(text: str, functions: Collection[str], name: str = "") -> ListNode:
    return Parser(text, functions, name).parse()
