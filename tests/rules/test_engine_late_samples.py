"""The engine and the agent's message order: a capture runs ahead of the regular batch.

The agent publishes a triggered capture (every value of a few signals from ``pre_s`` before
to ``post_s`` after its trigger) as soon as it ends, before the regular telemetry batch that
covers the same seconds. The regular batch's samples of *other* signals from the capture's
last ``post_s`` seconds are older than the vehicle's watermark but newer than their own
signal's newest: the engine takes them into the signals' history, so an on-change signal (a
DTC) is known from the next evaluation, not only after the agent's heartbeat resends it.
"""

from __future__ import annotations

import numpy as np

from rules.engine import Engine, Observations, VehicleState
from rules.loader import parse_rules

T0 = 1_772_366_400_000
SPEED = "Vehicle.Speed"
DTC = "Vehicle.Private.Diagnostics.DTC.Severity"
RULE = """version = 1
[[rule]]
id = "dtc"
title = "Critical DTC while stopped"
category = "care"
severity = "warning"
when = "Vehicle.Private.Diagnostics.DTC.Severity >= 3 and Vehicle.Speed < 1"
"""


def at(*seconds: float) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return np.asarray([T0 + round(s * 1000) for s in seconds], np.int64)


def test_a_capture_does_not_hide_the_regular_batch_samples_of_other_signals() -> None:
    engine = Engine(parse_rules(RULE, "test.toml"))
    state = VehicleState()
    now = T0 + 300_000
    regular = Observations({SPEED: (at(0, 50, 100), np.zeros(3)), DTC: (at(0), np.zeros(1))})
    capture = Observations({SPEED: (at(101, 102, 103, 104, 105), np.zeros(5))})
    # the next regular batch: the DTC appears at 103 s (on change: sent once)
    late = Observations({SPEED: (at(103, 106, 110), np.zeros(3)), DTC: (at(103), np.full(1, 3.0))})
    changes = []
    for observations in (regular, capture, late):
        changes += engine.process("veh-1", state, observations, now_ms=now)
    assert [c.kind for c in changes] == ["raised"]
