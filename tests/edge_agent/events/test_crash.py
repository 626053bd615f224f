"""Crash detection on simulated drives: real crashes give one event with what rescue needs;
hard braking and potholes give none."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.config import CrashConfig, SamplingConfig, SamplingPolicy, VehicleConfig
from edge_agent.events import CrashDetector, EventConfigError, crash_problems
from edge_agent.sampling import Sampler
from edge_agent.wire import CrashEvent
from simulators import Scenario

from .._drive import decoder, drive_frames, schema, split

VEHICLE = VehicleConfig(id="test-1", vin="C2CDEM00000000001", propulsion="electric")


def _events(
    scenario: Scenario | None,
    crash: CrashConfig | None = None,
    step: int = 701,
    *,
    alarms: bool = True,
) -> list[CrashEvent]:
    frames = drive_frames(90.0, seed=7, cycle="urban", scenarios=[scenario] if scenario else [])
    detector = CrashDetector(schema(), crash or CrashConfig(), VEHICLE)
    sampler = Sampler(
        schema(), decoder(), SamplingConfig(default=SamplingPolicy("off")), watch=detector.watch
    )
    if alarms:  # as the agent runs it: quiet batches are skipped on the sampler's count
        for number, threshold in detector.alarms.items():
            sampler.alarm(number, threshold)
        detector.alarms_counted()
    events: list[CrashEvent] = []
    for part in split(frames, list(range(0, len(frames), step))):
        events.extend(detector.feed(sampler.feed(decoder().decode(part))))
    return events


def test_a_crash_gives_one_event_with_what_rescue_needs() -> None:
    events = _events(Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0}))
    assert len(events) == 1
    event = events[0]
    assert event.vehicle_id == "test-1"
    assert event.vin == "C2CDEM00000000001"
    assert event.propulsion == "electric"
    assert event.catalogue_id == schema().catalogue_id
    assert event.time_ms >= 1_700_000_030_000
    assert event.severity in ("MINOR", "MODERATE", "SEVERE")
    assert event.position is not None
    assert abs(event.position.latitude - 48.1374) < 0.1
    assert abs(event.position.longitude - 11.5755) < 0.1
    assert event.position.time_ms <= event.time_ms
    assert event.heading_deg is not None and 0 <= event.heading_deg <= 360
    assert len(event.previous_positions) == 2
    newest, older = event.previous_positions
    assert older.time_ms < newest.time_ms < event.position.time_ms
    assert event.occupants is not None and event.occupants >= 1
    assert event.peak_acceleration is not None and event.peak_acceleration > 40
    assert event.sequence == 1


def test_batch_size_does_not_change_the_event() -> None:
    scenario = Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0})
    a, b = _events(scenario, step=97), _events(scenario, step=50_000)
    assert a == b


@pytest.mark.parametrize("kind", ["hard_braking", "pothole"])
def test_hard_negatives_give_no_event(kind: str) -> None:
    assert _events(Scenario(kind, at=30.0)) == []


def test_acceleration_alone_triggers_when_the_airbag_signal_stays_quiet() -> None:
    # Point the airbag at a signal that never reaches 1 here; the pulse still triggers.
    crash = CrashConfig(airbag_signal="Vehicle.Private.Crash.EventCounter", severity_signal=None)
    events = _events(Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0}), crash)
    assert len(events) == 1
    assert events[0].trigger == "acceleration"
    assert events[0].severity in ("MINOR", "MODERATE", "SEVERE")


def test_cooldown_suppresses_repeats() -> None:
    events = _events(
        Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0}), CrashConfig(cooldown_s=0.0)
    )
    assert len(events) >= 1
    times = np.array([e.time_ms for e in events])
    assert (np.diff(times) >= 0).all()


def test_without_an_airbag_signal_the_acceleration_triggers() -> None:
    crash = CrashConfig(airbag_signal=None, severity_signal=None)
    detector = CrashDetector(schema(), crash, VEHICLE)
    assert schema().spec("Vehicle.Private.Crash.AirbagDeployed").number not in detector.alarms
    events = _events(Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0}), crash)
    assert [e.trigger for e in events] == ["acceleration"]


def test_unknown_signal_names_the_key() -> None:
    with pytest.raises(
        EventConfigError, match=r"crash.airbag_signal: 'Vehicle.Nope' is not a VSS path"
    ):
        CrashDetector(schema(), CrashConfig(airbag_signal="Vehicle.Nope"), VEHICLE)


def test_crash_problems_name_every_signal_the_catalogue_lacks() -> None:
    crash = CrashConfig(
        airbag_signal="Vehicle.Nope",
        severity_signal="Vehicle.Private.Crash.Severity",
        acceleration_signals=("Vehicle.Acceleration.Lateral", "Vehicle.Acceleration.Sideways"),
    )
    found = crash_problems(schema(), crash)
    assert [(p.key, p.reason.split(" is ")[0]) for p in found] == [
        ("crash.airbag_signal", "'Vehicle.Nope'"),
        ("crash.acceleration_signals", "'Vehicle.Acceleration.Sideways'"),
    ]
    assert crash_problems(schema(), CrashConfig()) == []


def test_skipping_quiet_batches_changes_nothing() -> None:
    scenario = Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0})
    with_alarms = _events(scenario, step=97)
    assert with_alarms == _events(scenario, step=97, alarms=False)
    assert len(with_alarms) == 1
