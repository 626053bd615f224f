"""Triggered capture over a simulated crash: full-rate samples from pre_s before to post_s after."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from edge_agent.config import CaptureConfig, SamplingConfig, SamplingPolicy
from edge_agent.sampling import CaptureManager, Sampler, SamplingError, capture_problems
from simulators import Scenario

from .._drive import decoder, drive_frames, schema, split, urban_frames

AIRBAG = "Vehicle.Private.Crash.AirbagDeployed"
SPEED = "Vehicle.Speed"


@functools.cache
def _crash_frames():  # type: ignore[no-untyped-def]
    return drive_frames(
        120.0, seed=5, scenarios=[Scenario("crash", at=40.0, params={"min_speed_kmh": 20.0})]
    )


def _run(captures: list[CaptureConfig], cuts: range, frames=None):  # type: ignore[no-untyped-def]
    manager = CaptureManager(schema(), captures)
    sampler = Sampler(
        schema(), decoder(), SamplingConfig(default=SamplingPolicy("off")), watch=manager.watch
    )
    done = []
    for part in split(_crash_frames() if frames is None else frames, list(cuts)):
        done.extend(manager.feed(sampler.feed(decoder().decode(part))))
    done.extend(manager.flush())
    return done


def _airbag_time() -> int:
    decoded = decoder().decode(_crash_frames())
    column = decoded.signal("ACU_CrashStatus.AirbagDeployed")
    first = np.flatnonzero(column.raw >= 1)[0]
    return round(float(column.timestamps[first]) * 1000)


def test_a_crash_capture_holds_every_sample_from_pre_to_post() -> None:
    capture = CaptureConfig("crash", f"{AIRBAG} == 1", pre_s=10.0, post_s=5.0, signals=(SPEED,))
    done = _run([capture], range(0, 100_000, 977))
    assert len(done) == 1
    data = done[0]
    fired = _airbag_time()
    assert data.capture.name == "crash"
    assert data.capture.trigger_ms == fired
    (series,) = data.series
    assert series.signal == schema().spec(SPEED).number
    decoded = decoder().decode(_crash_frames()).signal("ESP_VehicleSpeed.VehicleSpeed")
    times = np.round(decoded.timestamps * 1000).astype(np.int64)
    window = (times >= fired - 10_000) & (times <= fired + 5_000)
    assert series.times_ms.tolist() == times[window].tolist()
    assert series.raw.tolist() == decoded.raw[window].tolist()


def test_batching_does_not_change_the_capture() -> None:
    capture = CaptureConfig(
        "crash", f"{AIRBAG} == 1", pre_s=3.0, post_s=2.0, signals=("Vehicle.Acceleration.*",)
    )
    a = _run([capture], range(0, 100_000, 333))
    b = _run([capture], range(0, 0))
    assert len(a) == len(b) == 1
    assert [s.times_ms.tolist() for s in a[0].series] == [s.times_ms.tolist() for s in b[0].series]
    assert len(a[0].series) == 3


def test_cooldown_and_rising_edges() -> None:
    # In this urban drive the speed rises above 10 km/h twice; with a long cooldown only the
    # first rising edge fires.
    when = f"{SPEED} > 10"
    often = CaptureConfig("fast", when, pre_s=0.0, post_s=0.1, signals=(SPEED,), cooldown_s=0.0)
    rarely = CaptureConfig(
        "fast2", when, pre_s=0.0, post_s=0.1, signals=(SPEED,), cooldown_s=1000.0
    )
    many = _run([often, rarely], range(0, 100_000, 5000), urban_frames())
    assert sum(d.capture.name == "fast2" for d in many) == 1
    assert sum(d.capture.name == "fast" for d in many) == 2


def test_no_trigger_no_capture() -> None:
    capture = CaptureConfig("never", f"{SPEED} > 1000", signals=(SPEED,))
    assert _run([capture], range(0, 100_000, 5000)) == []


def test_capture_problems_name_every_path_the_catalogue_lacks() -> None:
    captures = [
        CaptureConfig(name="ok", when=f"{SPEED} > 100", signals=(SPEED,)),
        CaptureConfig(name="typo", when="Vehicle.Sped > 3", signals=(SPEED, "Vehicle.Nope.*")),
    ]
    found = capture_problems(schema(), captures)
    assert [p.key for p in found] == ["capture[1].when", "capture[1].signals"]
    assert found[0].reason.startswith("Vehicle.Sped is not a VSS path of the catalogue")
    assert "did you mean Vehicle.Speed?" in found[0].reason
    assert found[1].reason.startswith("pattern 'Vehicle.Nope.*' matches no VSS path")
    with pytest.raises(SamplingError, match=r"^capture\[1\]\.when: Vehicle\.Sped is not"):
        CaptureManager(schema(), captures)
