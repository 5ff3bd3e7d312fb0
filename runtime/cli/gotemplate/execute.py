"""The executor of Go's text/template, after ``text/template/exec.go``.

Data model: a ``dict`` is a Go map (``.Key`` looks the key up; an absent key yields
``<no value>``), any other object is a Go struct (``.Name`` is an attribute or a method,
called with the command's arguments; an absent one is an error), ``None`` is nil.
Errors read like Go's: ``template: :1:8: executing "" at <.State.Foo>: can't evaluate
field Foo in type ...``.
"""

from __future__ import annotations

import inspect
from typing import Any

from runtime.cli.gotemplate import parser as p
from runtime.cli.gotemplate.functions import (
    FUNCTIONS,
    HEADER_PASSTHROUGH,
    ArgTypeError,
    CallError,
    convert,
    truth,
)
from runtime.cli.gotemplate.gofmt import MISSING, sorted_keys, sprint_value, type_name
from runtime.errors import InvalidSpec, MoorageError


class ExecError(InvalidSpec):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _NoFinal:
    """No value piped in from the previous command (Go's ``missingVal``)."""


NO_FINAL: Any = _NoFinal()


class State:
    def __init__(self, text: str, name: str, dot: Any, header: bool) -> None:
        self.text = text
        self.name = name
        self.header = header
        self.vars: list[tuple[str, Any]] = [("$", dot)]
        self.node: p.Node | None = None
        self.out: list[str] = []

    # errors
    def at(self, node: p.Node) -> None:
        self.node = node

    def error(self, message: str) -> ExecError:
        if self.node is None:
            return ExecError(f"template: {self.name}: {message}")
        before = self.text[: self.node.pos]
        line = 1 + before.count("\n")
        col = len(before[before.rfind("\n") + 1 :].encode())
        context = str(self.node)
        if len(context) > 20:
            context = context[:20] + "..."
        return ExecError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{context}>: {message}'
        )

    # variables
    def push(self, name: str, value: Any) -> None:
        self.vars.append((name, value))

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[-n] = (self.vars[-n][0], value)

    def var_value(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise self.error(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: p.Node) -> None:
        self.at(node)
        if isinstance(node, p.TextNode):
            self.out.append(node.text)
        elif isinstance(node, p.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(sprint_value(value))
        elif isinstance(node, p.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, p.BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, p.BreakNode):
            raise _Break
        elif isinstance(node, p.ContinueNode):
            raise _Continue
        else:
            raise self.error(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: p.BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: p.BranchNode) -> None:
        self.at(node)
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            items: list[tuple[Any, Any]]
            if isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, dict):
                items = [(k, value[k]) for k in sorted_keys(value)]
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is None or value is MISSING:
                items = []  # a nil map or slice: nothing to do, as in Go
            else:
                raise self.error(f"range can't iterate over {sprint_value(value)}")
            body_mark = len(self.vars)
            decl = node.pipe.decl
            for key, elem in items:
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(decl[0].ident[0], key if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if node.pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.set_top_var(2, key)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    self.pop(body_mark)
            if not items and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: p.PipeNode) -> Any:
        self.at(pipe)
        value = NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[p.Node] | None, final: Any) -> None:
        if (args and len(args) > 1) or final is not NO_FINAL:
            first = args[0] if args else ""
            raise self.error(f"can't give argument to non-function {first}")

    def eval_command(self, dot: Any, cmd: p.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, p.FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, p.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, p.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, p.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, p.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, p.NilNode):
            raise self.error("nil is not a command")
        return self.literal(dot, first)

    def literal(self, dot: Any, node: p.Node) -> Any:
        if isinstance(node, p.DotNode):
            return dot
        if isinstance(node, p.NilNode):
            return None
        if isinstance(node, p.BoolNode):
            return node.value
        if isinstance(node, p.NumberNode):
            return node.value
        if isinstance(node, p.StringNode):
            return node.text
        raise self.error(f"can't handle {node} as an argument")

    def eval_arg(self, dot: Any, node: p.Node) -> Any:
        self.at(node)
        if isinstance(node, p.FieldNode):
            return self.eval_field_chain(dot, dot, node, node.ident, [node], NO_FINAL)
        if isinstance(node, p.VariableNode):
            return self.eval_variable(dot, node, None, NO_FINAL)
        if isinstance(node, p.PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, p.IdentifierNode):
            return self.eval_function(dot, node, node, None, NO_FINAL)
        if isinstance(node, p.ChainNode):
            return self.eval_chain(dot, node, None, NO_FINAL)
        return self.literal(dot, node)

    def eval_variable(
        self, dot: Any, node: p.VariableNode, args: list[p.Node] | None, final: Any
    ) -> Any:
        self.at(node)
        value = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.ident[1:], args, final)

    def eval_chain(self, dot: Any, node: p.ChainNode, args: list[p.Node] | None, final: Any) -> Any:
        if isinstance(node.node, p.NilNode):
            raise self.error(f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, node.node)
        self.at(node)
        return self.eval_field_chain(dot, receiver, node, node.fields, args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: p.Node,
        ident: list[str],
        args: list[p.Node] | None,
        final: Any,
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, None, NO_FINAL, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: p.Node,
        args: list[p.Node] | None,
        final: Any,
        receiver: Any,
    ) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        has_args = bool(args and len(args) > 1) or final is not NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            try:
                # Indexing (not .get) lets dict subclasses answer through __missing__.
                return receiver[name]
            except KeyError:
                return MISSING
        is_basic = isinstance(receiver, (str, bytes, int, float, list, tuple))
        if is_basic or name.startswith("_") or not hasattr(receiver, name):
            raise self.error(f"can't evaluate field {name} in type {type_name(receiver)}")
        attr = getattr(receiver, name)
        if inspect.ismethod(attr) or inspect.isbuiltin(attr):
            return self.eval_call(dot, attr, None, node, name, args, final)
        if has_args:
            raise self.error(f"{name} has arguments but cannot be invoked as function")
        return attr

    def eval_function(
        self,
        dot: Any,
        node: p.IdentifierNode,
        cmd: p.Node,
        args: list[p.Node] | None,
        final: Any,
    ) -> Any:
        self.at(node)
        return self.eval_call(dot, None, FUNCTIONS[node.name], cmd, node.name, args, final)

    def eval_call(
        self,
        dot: Any,
        method: Any,
        function: Any,
        node: p.Node,
        name: str,
        args: list[p.Node] | None,
        final: Any,
    ) -> Any:
        """Call a template function (``function``) or an object's method (``method``)."""
        arg_nodes = list(args[1:]) if args else []
        count = len(arg_nodes) + (final is not NO_FINAL)
        if function is not None:
            fixed = len(function.params)
            if count < fixed or (function.variadic is None and count != fixed):
                want = f"at least {fixed}" if function.variadic else str(fixed)
                raise self.error(f"wrong number of args for {name}: want {want} got {count}")
        if function is not None and name in ("and", "or"):
            return self.and_or(dot, name, arg_nodes, final)

        values = [self.eval_arg(dot, a) for a in arg_nodes]
        if final is not NO_FINAL:
            values.append(final)
        if function is not None and self.header and name in HEADER_PASSTHROUGH:
            return values[0]
        try:
            if function is not None:
                kinds = list(function.params) + [function.variadic] * (count - len(function.params))
                values = [convert(kind, value) for kind, value in zip(kinds, values, strict=True)]
                return function.call(*values)
            try:
                inspect.signature(method).bind(*values)
            except TypeError as e:
                raise self.error(f"wrong number of args for {name}: {e}") from e
            return method(*values)
        except ArgTypeError as e:
            raise self.error(str(e)) from e
        except (CallError, MoorageError, ValueError) as e:
            self.at(node)
            raise self.error(f"error calling {name}: {e}") from e

    def and_or(self, dot: Any, name: str, arg_nodes: list[p.Node], final: Any) -> Any:
        """``and``/``or`` stop at the first argument that decides the result (Go 1.18)."""
        value: Any = None
        sources: list[p.Node | None] = list(arg_nodes)
        if final is not NO_FINAL:
            sources.append(None)  # the value piped in comes last
        for source in sources:
            value = final if source is None else self.eval_arg(dot, source)
            if truth(value) == (name == "or"):
                return value
        return value
