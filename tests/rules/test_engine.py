"""The rules engine on synthetic signals: timing, lifecycle, windows, state across batches."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.changes import AlertChange
from rules.engine import Engine, Observations, VehicleEvent, VehicleState
from rules.loader import parse_rules

T0 = 1_772_366_400_000  # 2026-03-01 12:00 UTC, ms
NOW = T0 + 86_400_000
V = "Vehicle.LowVoltageBattery.CurrentVoltage"
SPEED = "Vehicle.Speed"


def engine(body: str) -> Engine:
    return Engine(parse_rules("version = 1\n" + body, "test.toml"))


def obs(**signals: tuple[Any, Any]) -> Observations:
    paths = {"volts": V, "speed": SPEED}
    return Observations(
        {
            paths.get(k, k): (np.asarray(t, np.int64), np.asarray(v, float))
            for k, (t, v) in signals.items()
        }
    )


def seconds(*s: float) -> list[int]:
    return [T0 + round(x * 1000) for x in s]


def run(e: Engine, batches: Sequence[Observations], now: int = NOW) -> list[AlertChange]:
    state = VehicleState()
    changes: list[AlertChange] = []
    for batch in batches:
        state = VehicleState.from_json(json.loads(json.dumps(state.to_json())))  # as persisted
        changes += e.process("veh-1", state, batch, now_ms=now)
    return changes


def kinds(changes: Sequence[AlertChange]) -> list[tuple[str, float]]:
    return [(c.kind, (c.time.timestamp() * 1000 - T0) / 1000) for c in changes]


LOW = """
[[rule]]
id = "lv_low"
title = "12 V battery low"
category = "care"
severity = "warning"
when = "Vehicle.LowVoltageBattery.CurrentVoltage < 11.8"
clear = "Vehicle.LowVoltageBattery.CurrentVoltage > 12.2"
for = "60s"
"""


def test_pending_then_raise_then_hysteresis_clear() -> None:
    times = seconds(0, 30, 59, 61, 100, 120, 200)
    volts = [11.5, 11.5, 11.6, 11.7, 12.0, 12.3, 12.4]  # 12.0 is not yet clear
    assert kinds(run(engine(LOW), [obs(volts=(times, volts))])) == [
        ("raised", 61.0),
        ("cleared", 120.0),
    ]


def test_a_dip_shorter_than_for_raises_nothing() -> None:
    times = seconds(0, 30, 59, 70)
    assert run(engine(LOW), [obs(volts=(times, [11.5, 11.5, 12.5, 11.0]))]) == []


def test_keep_holds_the_alert_through_a_short_recovery() -> None:
    rule = LOW.replace('for = "60s"', 'keep = "5m"')
    times = seconds(0, 10, 100, 200, 800)
    volts = [11.5, 12.5, 11.5, 12.5, 12.5]
    assert kinds(run(engine(rule), [obs(volts=(times, volts))])) == [
        ("raised", 0.0),
        ("cleared", 800.0),  # 200 s + keep 300 s passed by the 800 s sample
    ]


def test_cooldown_and_repeat() -> None:
    rule = LOW.replace('for = "60s"', 'cooldown = "1h"\nrepeat = "10m"')
    t = seconds(0, 700, 1300, 1400, 1500, 4000, 9000)
    volts = [11.5, 11.5, 11.5, 12.5, 11.5, 11.5, 11.5]
    assert kinds(run(engine(rule), [obs(volts=(t, volts))])) == [
        ("raised", 0.0),
        ("renotified", 700.0),
        ("renotified", 1300.0),
        ("cleared", 1400.0),
        ("raised", 9000.0),  # the cooldown ends at 5000 s: the next sample after it
    ]


def test_data_older_than_max_age_raises_only_when_fresh() -> None:
    rule = LOW.replace('for = "60s"', 'max_age = "1h"')
    t = seconds(0, 100, 3 * 3600)
    now = t[-1] + 60_000
    changes = run(engine(rule), [obs(volts=(t, [11.5, 11.5, 11.5]))], now=now)
    assert kinds(changes) == [("raised", 3 * 3600.0)]


def test_held_and_windows_across_batches() -> None:
    rule = """
[[rule]]
id = "parked_low"
title = "12 V low while parked"
category = "care"
severity = "warning"
when = '''held(Vehicle.Speed < 1, "10m")
        and mean(Vehicle.LowVoltageBattery.CurrentVoltage, "2m") < 11.8'''
"""
    t = seconds(*range(0, 1200, 30))
    speed = [0.0] * len(t)
    volts = [12.0 if x < 400 else 11.5 for x in range(0, 1200, 30)]
    whole = run(engine(rule), [obs(speed=(t, speed), volts=(t, volts))])
    assert kinds(whole) == [("raised", 600.0)]
    parts = [
        obs(speed=(t[a:b], speed[a:b]), volts=(t[a:b], volts[a:b]))
        for a, b in ((0, 7), (7, 21), (21, 40))
    ]
    assert kinds(run(engine(rule), parts)) == kinds(whole)


def test_rate_of_a_slow_puncture_per_wheel() -> None:
    rule = """
[[rule]]
id = "pressure_loss"
title = "Tyre losing pressure"
category = "care"
severity = "warning"
for_each = { wheel = ["Left", "Right"] }
when = 'rate(Vehicle.Chassis.Axle.Row1.Wheel.{wheel}.Tire.Pressure, "5m") * 60 < -2'
"""
    t = seconds(*range(0, 1800, 60))
    left = [240.0 - (3.0 * max(0, i - 10)) for i in range(len(t))]  # -3 kPa/min from 10 min
    right = [240.0] * len(t)
    changes = run(engine(rule), [Observations({
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": (np.array(t), np.array(left)),
        "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": (np.array(t), np.array(right)),
    })])  # fmt: skip
    assert [(c.kind, c.subkey, c.key) for c in changes] == [
        ("raised", "Left", "veh-1/pressure_loss/Left")
    ]


CRASH = """
[[rule]]
id = "crash"
title = "Crash: send rescue"
category = "rescue"
severity = "critical"
event = "crash"
resolve = "manual"
keep = "1d"

[[rule]]
id = "stopped"
title = "Vehicle stopped with hazard lights"
category = "rescue"
severity = "critical"
when = "Vehicle.Speed < 1"
for = "60s"
inhibited_by = ["crash"]
"""


def test_a_crash_raises_at_once_and_mutes_a_breakdown() -> None:
    e = engine(CRASH)
    t = seconds(0, 10, 100, 200)
    crash = VehicleEvent(T0 + 5_000, "crash", {"severity": "SEVERE"})
    batch = Observations({SPEED: (np.array(t), np.array([50.0, 0.0, 0.0, 0.0]))}, [crash])
    changes = run(e, [batch])
    assert [(c.rule_id, c.kind) for c in changes] == [("crash", "raised")]
    assert changes[0].details["event"] == {"severity": "SEVERE"}
    assert not changes[0].auto_resolve and changes[0].category == "rescue"
    # without the crash, the stop raises
    assert [c.rule_id for c in run(e, [Observations(batch.signals)])] == ["stopped"]


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 79), max_size=6, unique=True).map(sorted),
    seed=st.integers(0, 1000),
)
def test_any_batch_split_gives_the_same_changes(cuts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.array(seconds(*np.cumsum(rng.integers(5, 90, 80))))
    volts = np.where(rng.random(80) < 0.5, 11.5, 12.5)
    speed = rng.choice([0.0, 30.0], 80)
    rule = (
        LOW.replace('for = "60s"', 'for = "60s"\nkeep = "2m"\ncooldown = "5m"\nrepeat = "10m"')
        + """
[[rule]]
id = "parked"
title = "parked long"
category = "care"
severity = "info"
when = 'held(Vehicle.Speed < 1, "3m") and max(Vehicle.LowVoltageBattery.CurrentVoltage, "5m") < 12'
"""
    )
    e = engine(rule)
    whole = run(e, [obs(volts=(t, volts), speed=(t, speed))])
    bounds = [0, *cuts, 80]
    parts = [
        obs(volts=(t[a:b], volts[a:b]), speed=(t[a:b], speed[a:b]))
        for a, b in itertools.pairwise(bounds)
    ]
    assert kinds(run(e, parts)) == kinds(whole)


def test_a_crash_older_than_the_newest_samples_still_raises() -> None:
    e = engine(CRASH)
    state = VehicleState()
    t = seconds(0, 100, 200)
    e.process("veh-1", state, obs(speed=(t, [50.0, 50.0, 50.0])), now_ms=NOW)
    buffered = Observations(events=[VehicleEvent(T0 + 50_000, "crash", {})])
    changes = e.process("veh-1", state, buffered, now_ms=NOW)
    assert [(c.rule_id, c.kind) for c in changes] == [("crash", "raised")]
