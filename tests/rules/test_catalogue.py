"""The built-in catalogue on the simulator's labelled scenario suite, through the edge agent.

Issue 7's acceptance: every rescue-worthy episode raises exactly one alert, no hard negative
raises a rescue alert, each episode raises one alert (not one per sample). The full suite
(120 drives, over 80 hours of traffic, a few minutes of CPU) runs in
``python -m benchmarks.bench_rules``; here a deterministic subset of it: the two shortest
drives of every positive kind and twelve hard negatives covering every negative kind, about
ten hours of simulated traffic through the agent's real pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config
from rules.changes import AlertChange
from rules.engine import Engine, Observations, VehicleEvent
from rules.loader import load_builtin
from rules.replay import replay
from rules.scoring import EXPECTED, Score, score_alerts
from simulators.suite import (
    NEGATIVE_KINDS,
    POSITIVE_KINDS,
    ObservedDrive,
    SuiteDrive,
    build_suite,
    observe_drive,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.example.toml"


def subset(
    drives: tuple[SuiteDrive, ...], per_kind: int = 2, negatives: int = 12
) -> list[SuiteDrive]:
    def length(d: SuiteDrive) -> float:
        return d.config.duration

    chosen: list[SuiteDrive] = []
    for kind in POSITIVE_KINDS:
        of_kind = [d for d in drives if not d.hard_negative and kind in d.kinds]
        chosen += sorted(of_kind, key=length)[:per_kind]
    hard = sorted((d for d in drives if d.hard_negative), key=length)
    picked: list[SuiteDrive] = []
    for kind in NEGATIVE_KINDS:  # the shortest of each negative kind, then the shortest
        first = next(d for d in hard if kind in d.kinds)
        if first not in picked:
            picked.append(first)
    picked += [d for d in hard if d not in picked][: negatives - len(picked)]
    return chosen + picked


def as_observations(observed: ObservedDrive) -> list[Observations]:
    return [
        Observations(m.signals, [VehicleEvent(e.time_ms, e.kind, e.payload) for e in m.events])
        for m in observed.messages
    ]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> list[ObservedDrive]:
    config = load_config(EXAMPLE, env={}, overrides={"mqtt.tls": False})
    work = tmp_path_factory.mktemp("suite")
    return [observe_drive(d, config, work_dir=work) for d in subset(build_suite(120, seed=0))]


@pytest.fixture(scope="module")
def changes(observed: list[ObservedDrive]) -> list[AlertChange]:
    engine = Engine(load_builtin())
    return [c for o in observed for c in replay(engine, o.vehicle_id, as_observations(o)).changes]


@pytest.fixture(scope="module")
def score(observed: list[ObservedDrive], changes: list[AlertChange]) -> Score:
    return score_alerts([label for o in observed for label in o.labels], changes)


def test_the_subset_covers_every_kind(observed: list[ObservedDrive]) -> None:
    kinds = {label.kind for o in observed for label in o.labels}
    assert kinds == set(POSITIVE_KINDS) | set(NEGATIVE_KINDS)
    assert sum(o.drive.hard_negative for o in observed) >= 10


def test_the_acceptance_holds(score: Score) -> None:
    assert score.acceptance() == [], score.table()


def test_every_episode_is_caught_once_and_nothing_else_is_raised(score: Score) -> None:
    for kind in score.positives:
        assert (kind.kind, kind.detected, kind.alerts) == (kind.kind, kind.episodes, kind.episodes)
    assert score.false_alerts == (), score.table()
    assert score.rescue_on_hard_negatives == 0


def test_rescue_alerts_come_quickly(score: Score) -> None:
    assert score.kind("crash").delay(1.0) <= 1.0  # the agent sends a crash at once
    # a breakdown: stopped with hazards on for 90 s; out of charge: stopped for 60 s
    assert score.kind("breakdown").delay(1.0) < EXPECTED["breakdown"].within_s
    assert score.kind("ev_out_of_charge").delay(1.0) < EXPECTED["ev_out_of_charge"].within_s


def test_a_crash_alert_carries_the_rescue_payload(changes: list[AlertChange]) -> None:
    crashes = [c for c in changes if c.rule_id == "crash"]
    assert crashes
    for change in crashes:
        event = change.details["event"]
        assert event["vehicle_id"] == change.vehicle_id
        assert event["position"] is not None
