"""The labelled scenario suite: its shape, determinism, and one drive through the agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config
from simulators import check_scenarios
from simulators.suite import NEGATIVE_KINDS, POSITIVE_KINDS, build_suite, observe_drive

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.example.toml"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_suite_has_its_shape(seed: int) -> None:
    drives = build_suite(120, seed)
    assert len(drives) == 120
    assert len({d.vehicle_id for d in drives}) == 120
    hard = [d for d in drives if d.hard_negative]
    assert len(hard) >= 40
    assert {k for d in hard for k in d.kinds} == set(NEGATIVE_KINDS)
    positives = [d for d in drives if not d.hard_negative]
    for kind in POSITIVE_KINDS:
        assert sum(kind in d.kinds for d in positives) >= 10, kind
    assert {d.config.variant for d in drives} == {"ev", "combustion"}
    assert {d.config.cycle for d in drives} == {"urban", "wltp", "highway", "parking"}
    for d in drives:  # every drive fits its vehicle, cycle and scenarios
        check_scenarios(d.config, d.scenarios, d.vehicle_id)


def test_the_suite_is_deterministic() -> None:
    assert build_suite(30, 5) == build_suite(30, 5)
    assert build_suite(30, 5) != build_suite(30, 6)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="n_drives"):
        build_suite(0)
    with pytest.raises(ValueError, match="negative_share"):
        build_suite(10, negative_share=0.2)


def test_a_crash_drive_through_the_agent(tmp_path: Path) -> None:
    drive = next(d for d in build_suite(20, 0) if "crash" in d.kinds)
    config = load_config(EXAMPLE, env={}, overrides={"mqtt.tls": False})
    observed = observe_drive(drive, config, work_dir=tmp_path)
    (label,) = [lab for lab in observed.labels if lab.kind == "crash"]
    events = [e for m in observed.messages for e in m.events]
    assert len(events) == 1
    assert events[0].payload["vehicle_id"] == drive.vehicle_id
    assert 0 <= events[0].time_ms - label.time * 1000 < 100
    speed = [m.signals["Vehicle.Speed"] for m in observed.messages if "Vehicle.Speed" in m.signals]
    assert sum(len(t) for t, _ in speed) >= drive.config.duration * 4  # 5 per second sampled
    assert observed.frames > 300 * drive.config.duration
    assert list(tmp_path.iterdir()) == []  # the outbox went with its directory
