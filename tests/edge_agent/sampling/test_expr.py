"""Trigger expressions: what they accept, how they evaluate, and their error messages."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.sampling import ExpressionError, compile_expression

from .._drive import schema


def _n(path: str) -> int:
    return schema().spec(path).number


SPEED = "Vehicle.Speed"
AIRBAG = "Vehicle.Private.Crash.AirbagDeployed"
SEVERITY = "Vehicle.Private.Crash.Severity"
ACCEL = "Vehicle.Acceleration.Longitudinal"


def _eval(text: str, **columns: list[float]) -> list[bool]:
    expression = compile_expression(text, schema())
    by_number = {
        _n(path): np.array(values, np.float64)
        for path, values in {
            SPEED: columns.get("speed", [np.nan]),
            AIRBAG: columns.get("airbag", [np.nan]),
            SEVERITY: columns.get("severity", [np.nan]),
            ACCEL: columns.get("accel", [np.nan]),
        }.items()
    }
    length = max(len(v) for v in by_number.values())
    by_number = {k: np.broadcast_to(v, (length,)) for k, v in by_number.items()}
    return [bool(x) for x in expression.evaluate(by_number, length)]


def test_comparisons_boolean_logic_and_functions() -> None:
    text = f"{AIRBAG} == 1 or abs({ACCEL}) > 40"
    assert _eval(text, airbag=[0, 0, 1, 0], accel=[0, -45, 0, 39]) == [False, True, True, False]
    assert _eval(f"{SPEED} > 100 and not {AIRBAG}", speed=[50, 120, 120], airbag=[0, 0, 1]) == [
        False,
        True,
        False,
    ]
    assert _eval(f"30 < {SPEED} <= 50", speed=[30, 31, 50, 51]) == [False, True, True, False]
    assert _eval(f"max({SPEED}, {ACCEL} * 10) >= 100", speed=[0, 99], accel=[10, 1]) == [
        True,
        False,
    ]


def test_a_condition_as_a_number_is_one_or_zero() -> None:
    both = f"({SPEED} > 100) + ({AIRBAG} == 1) >= 2"
    assert _eval(both, speed=[120, 120, 50], airbag=[1, 0, 1]) == [True, False, False]
    assert _eval(f"-({SPEED} > 100) < 0", speed=[120, 50]) == [True, False]
    assert _eval(f"({SPEED} > 100) == ({AIRBAG} == 1)", speed=[120, 50], airbag=[0, 0]) == [
        False,
        True,
    ]


def test_value_table_labels_compare_by_value() -> None:
    expression = compile_expression(f'{SEVERITY} == "SEVERE"', schema())
    assert expression.signals == (_n(SEVERITY),)
    severe = next(raw for raw, name in schema().spec(SEVERITY).choices.items() if name == "SEVERE")
    assert _eval(f'{SEVERITY} == "SEVERE"', severity=[0, float(severe)]) == [False, True]


def test_unknown_values_are_false_in_comparisons() -> None:
    assert _eval(f"{SPEED} > 10", speed=[np.nan, 20]) == [False, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Vehicle.Sped > 1",
            r"Vehicle.Sped is not a VSS path of the catalogue; did you mean Vehicle.Speed\?",
        ),
        (f"{SPEED} >", r"syntax error"),
        (f"__import__('os').system('x') or {SPEED}", r"only abs, min, max can be called"),
        (f"{SPEED} ** 2 > 1", r"only \+ - \* / are allowed"),
        (
            f'{SPEED} == "FAST"',
            r"Vehicle.Speed has no value table, so it cannot be compared with a string",
        ),
        ('"FAST" == "FAST"', r"a string can only be compared with a signal that has a value table"),
        (f'{SEVERITY} == "HUGE"', r"has no value 'HUGE' \(its values: .*SEVERE"),
        ("1 > 0", r"reads no signal"),
        (f"{SPEED}[0] > 1", r"Subscript is not allowed"),
        (f"abs({SPEED}, 2) > 1", r"abs\(\) takes 1 argument"),
        (f"{SPEED} in (1, 2)", r"only == != < <= > >= comparisons are allowed"),
    ],
)
def test_errors_quote_the_expression_and_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        compile_expression(text, schema(), where="capture 'x': when")
    assert str(info.value).startswith("capture 'x': when: ")
    assert repr(text.strip()) in str(info.value)
