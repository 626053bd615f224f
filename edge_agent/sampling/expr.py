"""Trigger expressions: a small, safe language over VSS signals, evaluated on whole arrays.

    Vehicle.Private.Crash.AirbagDeployed == 1 or abs(Vehicle.Acceleration.Longitudinal) > 40
    Vehicle.Private.Crash.Severity == "SEVERE"
    Vehicle.Speed > 100 and not Vehicle.Powertrain.TractionBattery.Charging.IsCharging

The grammar is Python's expression syntax restricted to: VSS paths (values in VSS units),
numbers, ``True``/``False``, strings compared with a signal that has a value table (the
label's value), ``and``/``or``/``not``, comparisons (chains too), ``+ - * /``, unary minus,
and ``abs``, ``min``, ``max``. Anything else is an `ExpressionError` that quotes the text and
points at the column. Nothing is evaluated by Python: the syntax tree is compiled into NumPy
operations, so an expression evaluates over a whole batch's timeline at once. A signal not
seen yet is NaN, and every comparison with NaN is false. A number used as a condition is
true when it is not zero (NaN is false); a condition used as a number is 1 or 0.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from can2care.expressions import ClosureCompiler, dotted_path, is_boolean

from ..wire import WireSchema
from .errors import ExpressionError

__all__ = ["Expression", "compile_expression"]

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[int, FloatArray]
_Node = Callable[[Columns], Any]  # returns a float or bool array, or a scalar

_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (np.abs, 1, 1),
    "min": (np.minimum, 2, 2),
    "max": (np.maximum, 2, 2),
}
_STRING = "a string can only be compared with a signal that has a value table"


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A compiled expression: which signals it reads, and how to evaluate it."""

    text: str
    signals: tuple[int, ...]  # wire numbers, sorted
    _evaluate: _Node

    def evaluate(self, columns: Columns, length: int) -> npt.NDArray[np.bool_]:
        """The expression's truth at each of ``length`` instants, given each signal's
        value at those instants (``columns[number]``, float arrays of that length)."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            result = self._evaluate(columns)
        out = np.broadcast_to(np.asarray(result), (length,))
        if out.dtype != np.bool_:
            out = np.nan_to_num(out.astype(np.float64), nan=0.0) != 0.0
        return np.asarray(out, np.bool_)


def compile_expression(text: str, schema: WireSchema, *, where: str = "expression") -> Expression:
    """Compile ``text`` against the signals of ``schema``; ``where`` names it in errors
    (the empty string: errors do not name it)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            _message(where, text, exc.offset, f"syntax error: {exc.msg}")
        ) from None
    compiler = _Compiler(text.strip(), schema, where)
    node = compiler.node(tree.body)
    if not compiler.signals:
        raise ExpressionError(_message(where, text, None, "reads no signal, so it never changes"))
    return Expression(text.strip(), tuple(sorted(compiler.signals)), node)


def _message(where: str, text: str, col: int | None, problem: str) -> str:
    pointer = "" if col is None else f" (column {col})"
    head = f"{where}: " if where else ""
    return f"{head}{problem}{pointer}: {text.strip()!r}"


class _Compiler(ClosureCompiler[Columns]):
    def __init__(self, text: str, schema: WireSchema, where: str) -> None:
        self.text = text
        self.schema = schema
        self.where = where
        self.signals: set[int] = set()
        self._paths = {s.vss: s for s in schema.signals}

    def fail(self, node: ast.AST, problem: str) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        return ExpressionError(
            _message(self.where, self.text, None if col is None else col + 1, problem)
        )

    def condition(self, node: ast.AST) -> _Node:
        inner = self.node(node)
        if is_boolean(node):
            return inner
        # A number as a condition: true when non-zero (NaN, not seen yet, is false).
        return lambda c: np.nan_to_num(np.asarray(inner(c), np.float64), nan=0.0) != 0.0

    def number(self, node: ast.AST) -> _Node:
        inner = self.node(node)  # a string constant fails here (`constant`)
        if is_boolean(node):  # a condition as a number: 1 where it holds, else 0
            return lambda c: np.asarray(inner(c), np.float64)
        return inner

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool | int | float):
            number = float(value)
            return lambda c: number
        raise self.fail(node, _STRING)

    def comparand(self, operands: Sequence[ast.expr], i: int) -> _Node:
        operand = operands[i]
        if isinstance(operand, ast.Constant) and isinstance(operand.value, str):
            neighbours = [operands[j] for j in (i - 1, i + 1) if 0 <= j < len(operands)]
            return self.label(operand, neighbours)
        return self.number(operand)

    def label(self, node: ast.Constant, neighbours: list[ast.expr]) -> _Node:
        label = str(node.value)
        for other in neighbours:
            path = dotted_path(other)
            if path is None or path not in self._paths:
                continue
            spec = self._paths[path]
            if not spec.choices:
                raise self.fail(
                    node, f"{path} has no value table, so it cannot be compared with a string"
                )
            for raw, name in spec.choices.items():
                if name == label:
                    value = float(raw) * spec.scale + spec.offset
                    return lambda c: value
            known = ", ".join(sorted(spec.choices.values())) or "none"
            raise self.fail(node, f"{path} has no value {label!r} (its values: {known})")
        raise self.fail(node, _STRING)

    def call(self, node: ast.Call) -> _Node:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise self.fail(node, f"only {', '.join(_FUNCTIONS)} can be called")
        fn, least, most = _FUNCTIONS[name]
        if not least <= len(node.args) <= most:
            raise self.fail(node, f"{name}() takes {least} argument{'s' * (least > 1)}")
        args = [self.number(a) for a in node.args]
        return lambda c: fn(*(a(c) for a in args))

    def name(self, node: ast.Attribute | ast.Name, path: str | None) -> _Node:
        if path is None or path not in self._paths:
            close = difflib.get_close_matches(path or "", self._paths, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise self.fail(node, f"{path or 'this'} is not a VSS path of the catalogue{hint}")
        number = self._paths[path].number
        self.signals.add(number)
        return lambda c: c[number]
