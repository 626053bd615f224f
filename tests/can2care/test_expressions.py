"""The expression core both languages build on, through the smallest language it allows."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from can2care.expressions import ClosureCompiler, dotted_path, is_boolean

Columns = Mapping[str, Any]


class _Toy(ClosureCompiler[Columns]):
    """Names read columns, numbers are numbers, nothing can be called."""

    def fail(self, node: ast.AST, problem: str) -> ValueError:
        return ValueError(f"column {getattr(node, 'col_offset', 0) + 1}: {problem}")

    def condition(self, node: ast.AST) -> Callable[[Columns], Any]:
        if not is_boolean(node):
            raise self.fail(node, "not a condition")
        return self.node(node)

    def number(self, node: ast.AST) -> Callable[[Columns], Any]:
        if is_boolean(node):
            raise self.fail(node, "not a number")
        return self.node(node)

    def name(self, node: ast.Attribute | ast.Name, path: str | None) -> Callable[[Columns], Any]:
        if path is None:
            raise self.fail(node, "not a name")
        return lambda c: c[path]

    def call(self, node: ast.Call) -> Callable[[Columns], Any]:
        raise self.fail(node, "no calls")

    def constant(self, node: ast.Constant) -> Callable[[Columns], Any]:
        if not isinstance(node.value, int | float):
            raise self.fail(node, "not a number")
        value = float(node.value)
        return lambda c: value


def _run(text: str, columns: Columns) -> Any:
    return _Toy().node(ast.parse(text, mode="eval").body)(columns)


def test_operators_compile_to_array_operations() -> None:
    columns = {"a.x": np.array([1.0, 5.0, 9.0]), "b": np.array([2.0, 2.0, 2.0])}
    assert _run("1 < a.x <= 5", columns).tolist() == [False, True, False]
    assert _run("a.x > 4 and not b > 3 or a.x == 1", columns).tolist() == [True, True, True]
    assert _run("-a.x * b / 2 + 1 - +b", columns).tolist() == [-2.0, -6.0, -10.0]
    assert _run("a.x != 5", columns).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a ** 2", r"column 1: only \+ - \* / are allowed"),
        ("a in b", "only == != < <= > >= comparisons are allowed"),
        ("~a", "this operator is not allowed"),
        ("a[0]", "Subscript is not allowed"),
        ("a < b < (c > 1)", "column 10: not a number"),
        ("a and b", "column 1: not a condition"),
        ("f(a)", "no calls"),
        ("f(a).b", "not a name"),
    ],
)
def test_what_is_not_allowed_is_the_languages_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _Toy().node(ast.parse(text, mode="eval").body)


def test_dotted_path() -> None:
    assert dotted_path(ast.parse("Vehicle.Body.Speed", mode="eval").body) == "Vehicle.Body.Speed"
    assert dotted_path(ast.parse("x", mode="eval").body) == "x"
    assert dotted_path(ast.parse("f().x", mode="eval").body) is None
