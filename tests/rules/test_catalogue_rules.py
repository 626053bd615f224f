"""Each rule of the built-in catalogue on synthetic data, beside the labelled suite.

The labelled suite (test_catalogue.py, benchmarks/bench_rules.py) runs simulated drives
through the edge agent; the rules it cannot reach (no scenario makes them: a fast puncture, a
low tyre, owner care, offline) are checked here on the engine directly with the catalogue's
own definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from rules.engine import Engine, Observations, VehicleEvent, VehicleState
from rules.loader import load_builtin
from rules.worker import CONNECTIVITY, split_rules

T0 = 1_772_366_400_000
MINUTE = 60_000
DATA, CLOCK = (Engine(rules) for rules in split_rules(load_builtin()))
TYRE = "Vehicle.Chassis.Axle.{}.Wheel.{}.Tire.Pressure"


def series(minutes: Sequence[float], values: Sequence[float]) -> tuple[Any, Any]:
    return (
        np.asarray([T0 + round(m * MINUTE) for m in minutes], np.int64),
        np.asarray(values, np.float64),
    )


def raised(
    engine: Engine,
    signals: Mapping[str, tuple[Any, Any]],
    *,
    context: Mapping[str, float] | None = None,
    events: Sequence[VehicleEvent] = (),
) -> list[tuple[str, str | None, str]]:
    newest = max((int(t[-1]) for t, _v in signals.values()), default=T0)
    now = newest + MINUTE  # live data (the rules' max_age counts from now)
    changes = engine.process(
        "veh-1", VehicleState(), Observations(signals, events), now_ms=now, context=context
    )
    return [(c.rule_id, c.subkey, c.kind) for c in changes]


def tyres(minutes: Sequence[float], **overrides: Sequence[float]) -> dict[str, tuple[Any, Any]]:
    """Four tyres at 250 kPa, any of them overridden (``Row1_Left=[...]``)."""
    found = {}
    for axle in ("Row1", "Row2"):
        for side in ("Left", "Right"):
            values = overrides.get(f"{axle}_{side}", [250.0] * len(minutes))
            found[TYRE.format(axle, side)] = series(minutes, values)
    return found


def test_a_low_tyre_raises_for_its_wheel_only() -> None:
    minutes = list(range(0, 30))
    low = [250.0] * 5 + [175.0] * 25
    assert ("tyre_pressure_low", "Row2.Wheel.Right", "raised") in raised(
        DATA, tyres(minutes, Row2_Right=low)
    )
    assert all(r[0] != "tyre_pressure_low" for r in raised(DATA, tyres(minutes)))


def test_a_puncture_raises_a_fast_loss_and_a_slow_drift_does_not() -> None:
    minutes = [m / 4 for m in range(0, 40)]  # every 15 s
    puncture = [250.0 - max(0.0, m - 2) * 20 for m in minutes]  # 20 kPa a minute from 2 min
    found = raised(DATA, tyres(minutes, Row1_Left=puncture))
    assert ("tyre_pressure_fast_loss", "Row1.Wheel.Left", "raised") in found
    drift = [250.0 - m * 0.5 for m in minutes]  # a cooling tyre: half a kPa a minute
    assert all(
        r[0] != "tyre_pressure_fast_loss" for r in raised(DATA, tyres(minutes, Row1_Left=drift))
    )


def test_coolant_overheating_and_critical_dtc() -> None:
    signals = {
        "Vehicle.Powertrain.CombustionEngine.ECT": series([0, 1, 2, 3], [95, 118, 119, 120]),
        "Vehicle.Private.Diagnostics.DTC.Severity": series([0, 2], [1, 3]),
        "Vehicle.Speed": series([0, 3], [80, 80]),
    }
    found = {r[0] for r in raised(DATA, signals)}
    assert {"coolant_overheating", "critical_dtc"} <= found


def test_service_due_soon_then_overdue() -> None:
    signals = {"Vehicle.Service.DistanceToService": series([0, 10, 20], [3000, 1200, -5])}
    kinds = [(r[0], r[2]) for r in raised(DATA, signals)]
    assert kinds == [
        ("service_due_soon", "raised"),
        ("service_due_soon", "cleared"),
        ("service_overdue", "raised"),
    ]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"vehicle.days_since_delivery": 31.0}, "welcome_check_in"),
        ({"vehicle.days_since_delivery": 400.0}, None),  # long delivered: no welcome now
        ({"vehicle.days_to_warranty_end": 45.0}, "warranty_expiry"),
        (
            {"service.days_since": 350.0, "service.interval_days": 365.0},
            "service_interval_time_soon",
        ),
        ({"service.days_since": 370.0, "service.interval_days": 365.0}, "service_interval_time"),
    ],
)
def test_owner_care_and_service_by_time_on_the_clock(
    context: dict[str, float], expected: str | None
) -> None:
    signals = {CONNECTIVITY: series([0], [1.0])}
    found = [r[0] for r in raised(CLOCK, signals, context=context)]
    assert found == ([] if expected is None else [expected])


def test_a_crash_mutes_the_vehicles_battery_alert() -> None:
    minutes = list(range(0, 60))
    signals = {
        "Vehicle.Speed": series(minutes, [0.0] * 60),
        "Vehicle.LowVoltageBattery.CurrentVoltage": series(minutes, [11.5] * 60),
    }
    assert "lv_battery_low" in {r[0] for r in raised(DATA, signals)}
    crash = VehicleEvent(T0 - MINUTE, "crash", {"severity": "SEVERE"})
    found = {r[0] for r in raised(DATA, signals, events=[crash])}
    assert found == {"crash"}
