"""Rule conditions: what they read, and the errors that quote the text at the column."""

from __future__ import annotations

import pytest

from rules.errors import ExpressionError
from rules.expr import compile_condition


def test_a_condition_knows_its_signals_context_and_windows() -> None:
    condition = compile_condition(
        'Vehicle.Speed < 1 and rate(Vehicle.Tire.Pressure, "5m") * 60 < -3 '
        'and not held(Vehicle.Speed > 0, "1h") and Vehicle.TraveledDistance > service.odometer'
    )
    assert condition.signals == {
        "Vehicle.Speed",
        "Vehicle.Tire.Pressure",
        "Vehicle.TraveledDistance",
    }
    assert condition.context_names == {"service.odometer"}
    assert condition.windows == {"Vehicle.Tire.Pressure": 300_000}


@pytest.mark.parametrize(
    ("text", "problem", "column"),
    [
        ("not Car.Speed", "unknown name 'Car.Speed'", 5),
        ("Vehicle.Speed", "this is a number, not a condition", 1),
        ("-(Vehicle.Speed > 1) < 0", "a condition is not a number", 3),
        ("Vehicle.Speed in (1, 2)", "only == != < <= > >= comparisons are allowed", 1),
        ("Vehicle.Speed ** 2 > 1", r"only + - * / are allowed", 1),
        ('Vehicle.Speed > "fast"', "'fast' is not a number", 17),
        ("Vehicle.Speed[0] > 1", "Subscript is not allowed", 1),
    ],
)
def test_errors_quote_the_problem_and_its_column(text: str, problem: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_condition(text)
    assert caught.value.problem.startswith(problem)
    assert caught.value.column == column
    assert caught.value.text == text
