"""The expression core shared by the agent's trigger expressions and the care rules' conditions.

Both languages are Python's expression syntax, parsed by `ast` and compiled into closures that
evaluate over NumPy arrays, so that an expression runs over a whole timeline at once and
nothing is evaluated by Python. `ClosureCompiler` compiles what they have in common: ``and``,
``or``, ``not``, comparisons (chains too), ``+ - * /``, unary minus and plus, and it hands
names, calls and constants to the language (`edge_agent.sampling.expr`, `rules.expr`), which
also decides what is a condition and what is a number and how errors read.
"""

from __future__ import annotations

import ast
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["ClosureCompiler", "dotted_path", "is_boolean"]

Ctx = TypeVar("Ctx")  # what a compiled expression reads when it is evaluated

_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def dotted_path(node: ast.AST) -> str | None:
    """``a.b.c`` for a name or a chain of attributes of a name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def is_boolean(node: ast.AST) -> bool:
    """Whether ``node`` is and/or, a comparison or ``not``: booleans whatever it reads."""
    return isinstance(node, ast.BoolOp | ast.Compare) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    )


class ClosureCompiler(ABC, Generic[Ctx]):
    """Compiles a syntax tree into a closure ``f(ctx)`` returning an array or a scalar.

    A language subclasses it and provides `fail` (its error), `condition` and `number` (an
    operand that must be a condition or a number), `name` (a dotted name), `call` and
    `constant`; `comparand` may give an operand of a comparison its own meaning.
    """

    @abstractmethod
    def fail(self, node: ast.AST, problem: str) -> Exception:
        """See the class."""

    @abstractmethod
    def condition(self, node: ast.AST) -> Callable[[Ctx], Any]:
        """See the class."""

    @abstractmethod
    def number(self, node: ast.AST) -> Callable[[Ctx], Any]:
        """See the class."""

    @abstractmethod
    def name(self, node: ast.Attribute | ast.Name, path: str | None) -> Callable[[Ctx], Any]:
        """See the class."""

    @abstractmethod
    def call(self, node: ast.Call) -> Callable[[Ctx], Any]:
        """See the class."""

    @abstractmethod
    def constant(self, node: ast.Constant) -> Callable[[Ctx], Any]:
        """See the class."""

    def comparand(self, operands: Sequence[ast.expr], i: int) -> Callable[[Ctx], Any]:
        """Operand ``i`` of a comparison (a number, unless the language says otherwise)."""
        return self.number(operands[i])

    def node(self, node: ast.AST) -> Callable[[Ctx], Any]:
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def boolean(ctx: Ctx) -> Any:
                result = parts[0](ctx)
                for part in parts[1:]:
                    result = combine(result, part(ctx))
                return result

            return boolean
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                inner = self.condition(node.operand)
                return lambda ctx: np.logical_not(inner(ctx))
            if isinstance(node.op, ast.USub):
                operand = self.number(node.operand)
                return lambda ctx: -operand(ctx)
            if isinstance(node.op, ast.UAdd):
                return self.number(node.operand)
            raise self.fail(node, "this operator is not allowed")
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC.get(type(node.op))
            if op is None:
                raise self.fail(node, "only + - * / are allowed")
            left, right = self.number(node.left), self.number(node.right)
            return lambda ctx: op(left(ctx), right(ctx))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Attribute | ast.Name):
            return self.name(node, dotted_path(node))
        raise self.fail(node, f"{type(node).__name__} is not allowed")

    def compare(self, node: ast.Compare) -> Callable[[Ctx], Any]:
        ops = []
        for op in node.ops:
            function = _COMPARISONS.get(type(op))
            if function is None:
                raise self.fail(node, "only == != < <= > >= comparisons are allowed")
            ops.append(function)
        operands = [node.left, *node.comparators]
        compiled = [self.comparand(operands, i) for i in range(len(operands))]

        def compare(ctx: Ctx) -> Any:
            values = [part(ctx) for part in compiled]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):
                result = np.logical_and(result, ops[i](values[i], values[i + 1]))
            return result

        return compare
