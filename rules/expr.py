"""Rule conditions: a small, safe expression language over a vehicle's signals, on event time.

    Vehicle.LowVoltageBattery.CurrentVoltage < 11.8 and held(Vehicle.Speed < 1, "10m")
    rate(Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure, "5m") * 60 < -3
    Vehicle.TraveledDistance - service.odometer > service.interval_km - 1000

Python's expression syntax restricted to: VSS paths (``Vehicle...``: the signal's value as of
each evaluation time, NaN before its first sample), context values (``service.*``,
``vehicle.*``: numbers the rules worker knows per vehicle, NaN when unknown), numbers,
``True``/``False``, ``and``/``or``/``not``, comparisons (chains too), ``+ - * /``, unary
minus, and the functions:

==========================  ==========================================================
``abs(x)``                  absolute value
``min(a, b)``, ``max(a, b)``  element-wise
``min(S, "10m")``           the least sample of signal ``S`` in the trailing window
``max(S, "10m")``, ``mean(S, "10m")``  likewise
``delta(S, "1h")``          the value now minus the value as of one window ago
``rate(S, "5m")``           ``delta`` per second of the samples' own time
``age(S)``                  seconds since ``S``'s newest sample
``held(c, "10m")``          ``c`` has held continuously for at least the duration
==========================  ==========================================================

Durations are strings (``"90s"``, ``"10m"``, ``"1h30m"``, ``"2d"``). Nothing is evaluated by
Python: the syntax tree is compiled into NumPy operations over a batch's whole timeline, with
the state ``held`` and the windows need carried between batches by the engine. Every error is
an `ExpressionError` quoting the text with the column.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from can2care.durations import parse_duration
from can2care.expressions import ClosureCompiler, dotted_path, is_boolean

from .errors import ExpressionError

__all__ = ["Condition", "EvalContext", "ExpressionError", "compile_condition"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_Node = Callable[["EvalContext"], Any]

_WINDOWED = ("min", "max", "mean", "delta", "rate")
_CONTEXT_ROOTS = ("service", "vehicle")


class EvalContext(Protocol):
    """What a condition reads while it is evaluated over a timeline (the engine provides it)."""

    @property
    def times(self) -> npt.NDArray[np.int64]:
        """The evaluation times, ms since the Unix epoch, non-decreasing."""

    def value(self, path: str) -> FloatArray:
        """The signal's value as of each time (NaN before its first sample)."""

    def last_time(self, path: str) -> FloatArray:
        """The time (ms) of the signal's newest sample as of each time (NaN before)."""

    def window(self, path: str, function: str, window_ms: int) -> FloatArray:
        """min, max or mean of the signal's samples in ``(t - window, t]`` at each time."""

    def value_at(self, path: str, offset_ms: int) -> tuple[FloatArray, FloatArray]:
        """The value and its sample time as of ``t - offset`` at each time."""

    def context(self, name: str) -> float:
        """A per-vehicle context number (NaN when unknown)."""

    def held(self, key: str, condition: BoolArray, duration_ms: int) -> BoolArray:
        """Whether ``condition`` has held for ``duration_ms`` at each time (state kept)."""


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    """A compiled condition: what it reads, and how to evaluate it to booleans."""

    text: str
    signals: frozenset[str]
    context_names: frozenset[str]
    windows: Mapping[str, int]  # signal -> longest window in ms its functions look back
    _root: _Node

    def evaluate(self, ctx: EvalContext) -> BoolArray:
        result = self._root(ctx)
        n = len(ctx.times)
        if isinstance(result, np.ndarray):
            if result.dtype != np.bool_:
                raise ExpressionError(self.text, "the expression is a number, not a condition")
            return result
        if isinstance(result, bool | np.bool_):
            return np.full(n, bool(result))
        raise ExpressionError(self.text, "the expression is a number, not a condition")


def compile_condition(text: str) -> Condition:
    """Compile a condition; `ExpressionError` quoting the text and the column on any problem."""
    try:  # in parentheses, so that a condition may span lines (TOML's multi-line strings)
        tree = ast.parse(f"({text.strip()})", mode="eval")
    except SyntaxError as exc:
        column = None if exc.offset is None else max(exc.offset - 1, 1)
        raise ExpressionError(text, f"not an expression ({exc.msg})", column) from None
    compiler = _Compiler(text)
    if not _is_condition(tree.body):
        raise compiler.fail(tree.body, "this is a number, not a condition (compare it)")
    root = compiler.node(tree.body)
    return Condition(
        text, frozenset(compiler.signals), frozenset(compiler.context_names),
        dict(compiler.windows), root,
    )  # fmt: skip


class _Compiler(ClosureCompiler["EvalContext"]):
    def __init__(self, text: str) -> None:
        self.text = text
        self.signals: set[str] = set()
        self.context_names: set[str] = set()
        self.windows: dict[str, int] = {}
        self._held = 0

    def fail(self, node: ast.AST, problem: str) -> ExpressionError:
        # col_offset counts from 0 and the text was parsed after an opening parenthesis
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) + (0 if line == 1 else 1)
        return ExpressionError(self.text, problem, max(column, 1))

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool):
            return lambda _ctx: value
        if isinstance(value, int | float):
            number = float(value)
            return lambda _ctx: number
        raise self.fail(node, f"{value!r} is not a number (text is only for durations)")

    def name(self, node: ast.Attribute | ast.Name, path: str | None) -> _Node:
        if path is None:
            raise self.fail(node, f"{type(node).__name__} is not allowed")
        root = path.split(".", 1)[0]
        if root == "Vehicle" and "." in path:
            self.signals.add(path)
            return lambda ctx: ctx.value(path)
        if root in _CONTEXT_ROOTS and "." in path:
            self.context_names.add(path)
            return lambda ctx: ctx.context(path)
        raise self.fail(
            node, f"unknown name {path!r}: use a VSS path (Vehicle....) or service.* / vehicle.*"
        )

    def condition(self, node: ast.AST) -> _Node:
        compiled = self.node(node)  # its own errors first: an unknown name, say
        if not _is_condition(node):
            raise self.fail(node, "a number is not a condition (compare it)")
        return compiled

    def number(self, node: ast.AST) -> _Node:
        if is_boolean(node):
            raise self.fail(node, "a condition is not a number")
        return self.node(node)

    def duration(self, node: ast.AST, function: str) -> int:
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            raise self.fail(node, f'{function}() takes a duration such as "10m" here')
        seconds = parse_duration(node.value)
        if seconds is None or seconds <= 0:
            raise self.fail(node, f"{node.value!r} is not a positive duration")
        return round(seconds * 1000)

    def signal(self, node: ast.AST, function: str) -> str:
        path = dotted_path(node)
        if path is None or not path.startswith("Vehicle."):
            raise self.fail(node, f"{function}() takes a signal (a VSS path) here")
        self.signals.add(path)
        return path

    def call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail(node, "only the functions of docs/rules.md may be called")
        name, args = node.func.id, node.args
        if name in ("min", "max") and len(args) == 2 and not _is_text(args[1]):
            a, b = self.number(args[0]), self.number(args[1])
            elementwise = np.fmin if name == "min" else np.fmax
            return lambda ctx: np.where(
                np.isnan(a(ctx)) | np.isnan(b(ctx)), np.nan, elementwise(a(ctx), b(ctx))
            )
        if name in _WINDOWED:
            if len(args) != 2:
                raise self.fail(
                    node,
                    f'{name}() takes a signal and a duration, e.g. {name}(Vehicle.Speed, "10m")',
                )
            path = self.signal(args[0], name)
            window = self.duration(args[1], name)
            self.windows[path] = max(self.windows.get(path, 0), window)
            if name == "delta":
                return lambda ctx: ctx.value(path) - ctx.value_at(path, window)[0]
            if name == "rate":

                def rate(ctx: EvalContext) -> FloatArray:
                    then, then_time = ctx.value_at(path, window)
                    elapsed = (ctx.last_time(path) - then_time) / 1000.0
                    with np.errstate(divide="ignore", invalid="ignore"):
                        return np.where(elapsed > 0, (ctx.value(path) - then) / elapsed, np.nan)

                return rate
            return lambda ctx: ctx.window(path, name, window)
        if name == "abs" and len(args) == 1:
            inner = self.number(args[0])
            return lambda ctx: np.abs(inner(ctx))
        if name == "age" and len(args) == 1:
            path = self.signal(args[0], name)
            return lambda ctx: (ctx.times - ctx.last_time(path)) / 1000.0
        if name == "held" and len(args) == 2:
            inner = self.condition(args[0])
            duration = self.duration(args[1], name)
            self._held += 1
            key = f"held{self._held}:{ast.unparse(args[0])}"
            return lambda ctx: ctx.held(key, np.asarray(inner(ctx), dtype=bool), duration)
        raise self.fail(node, f"unknown function or wrong arguments: {name}()")


def _is_condition(node: ast.AST) -> bool:
    """Whether ``node`` yields booleans: a comparison, and/or/not, held(), True/False."""
    if is_boolean(node):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "held"
    return isinstance(node, ast.Constant) and isinstance(node.value, bool)


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)
