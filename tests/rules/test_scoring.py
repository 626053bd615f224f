"""Scoring alerts against labels: matching windows, duplicates, false and rescue alerts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from rules.changes import AlertChange, Category, ChangeKind
from rules.scoring import KindScore, explain_alerts, score_alerts

T0 = 1_772_366_400.0  # epoch seconds


@dataclass(frozen=True)
class Lab:
    vehicle: str
    kind: str
    label: str
    time: float


def alert(
    vehicle: str,
    rule: str,
    at: float,
    *,
    kind: ChangeKind = "raised",
    subkey: str | None = None,
    category: Category = "care",
) -> AlertChange:
    return AlertChange(
        kind,
        vehicle,
        rule,
        subkey,
        datetime.fromtimestamp(T0 + at, UTC),
        "critical" if category == "rescue" else "warning",
        category,
        rule,
    )


def test_one_alert_per_episode_gives_recall_precision_and_delay() -> None:
    labels = [Lab("a", "crash", "positive", T0 + 10), Lab("b", "lv_drain", "positive", T0)]
    changes = [
        alert("a", "crash", 10.0, category="rescue"),
        alert("b", "lv_battery_low", 3600.0),
        alert("b", "lv_battery_low", 4000.0, kind="cleared"),  # only raised changes count
    ]
    score = score_alerts(labels, changes)
    assert score.recall == 1.0 and score.precision == 1.0
    assert score.kind("crash").delays_s == (0.0,)
    assert score.kind("lv_drain").delay(0.5) == 3600.0
    assert score.acceptance() == []


def test_a_missed_rescue_episode_breaks_the_acceptance() -> None:
    labels = [Lab("a", "breakdown", "positive", T0), Lab("b", "breakdown", "positive", T0)]
    score = score_alerts(labels, [alert("a", "breakdown", 100.0, category="rescue")])
    assert score.kind("breakdown").recall == 0.5
    assert score.acceptance() == ["breakdown: 1 of 2 missed"]


def test_too_late_or_too_early_does_not_match() -> None:
    labels = [Lab("a", "crash", "positive", T0 + 100)]
    changes = [
        alert("a", "crash", 50.0, category="rescue"),  # before the label
        alert("a", "crash", 200.0, category="rescue"),  # after the crash's 60 s window
    ]
    score = score_alerts(labels, changes)
    assert score.kind("crash").detected == 0
    assert score.precision == 0.0
    assert len(score.false_alerts) == 2


def test_the_same_alert_twice_in_an_episode_is_a_duplicate() -> None:
    labels = [Lab("a", "overheating", "positive", T0)]
    changes = [alert("a", "coolant_overheating", 40.0), alert("a", "coolant_overheating", 400.0)]
    score = score_alerts(labels, changes)
    assert score.kind("overheating").duplicates == 1
    assert score.kind("overheating").alerts == 2
    assert score.acceptance() == ["overheating: 1 episodes raised an alert twice"]


def test_two_expected_alerts_in_one_episode_are_extra() -> None:
    labels = [Lab("a", "slow_puncture", "positive", T0)]
    changes = [
        alert("a", "tyre_pressure_loss", 900.0, subkey="Row1"),
        alert("a", "tyre_pressure_low", 5000.0, subkey="Row1.Wheel.Left"),
    ]
    score = score_alerts(labels, changes)
    assert score.kind("slow_puncture").extra == 1
    assert score.kind("slow_puncture").delays_s == (900.0,)


def test_related_alerts_are_explained_but_do_not_count_for_recall() -> None:
    labels = [Lab("a", "service_due", "positive", T0 + 600)]
    changes = [alert("a", "service_due_soon", 5.0)]  # long before: lead is unlimited
    score = score_alerts(labels, changes)
    assert score.precision == 1.0
    assert score.kind("service_due").detected == 0
    changes.append(alert("a", "service_overdue", 540.0))  # whole km: 0 km before the crossing
    score = score_alerts(labels, changes)
    assert score.kind("service_due").delays_s == (-60.0,)


def test_alerts_on_hard_negatives_are_false_and_rescue_ones_break_the_acceptance() -> None:
    labels = [
        Lab("n", "hard_braking", "negative", T0),
        Lab("n", "pothole", "negative", T0 + 60),
        Lab("p", "crash", "positive", T0),
        Lab("p", "pothole", "negative", T0 - 60),
    ]
    changes = [
        alert("n", "crash", 1.0, category="rescue"),
        alert("p", "crash", 0.5, category="rescue"),
        alert("p", "lv_battery_low", 30.0),  # a drive with a positive: false, not rescue
    ]
    score = score_alerts(labels, changes)
    assert score.rescue_on_hard_negatives == 1
    assert score.kind("hard_braking") == KindScore("hard_braking", False, 1, alerts=1)
    assert {(f.vehicle, f.rule_id, f.hard_negative) for f in score.false_alerts} == {
        ("n", "crash", True),
        ("p", "lv_battery_low", False),
    }
    assert score.acceptance() == ["1 rescue alerts on hard negatives"]
    table = score.table()
    assert "| crash | positive | 1 | 1 | 1.000 |" in table
    assert "| lv_battery_low | 1 |" in table


def test_no_alerts_and_no_labels() -> None:
    score = score_alerts([], [])
    assert math.isnan(score.recall) and math.isnan(score.precision)
    assert score.acceptance() == []
    assert "recall nan" in score.table()


def test_explain_alerts_names_each_alerts_label_and_its_delay() -> None:
    labels = [Lab("v1", "breakdown", "positive", T0 + 100), Lab("v2", "pothole", "negative", T0)]
    changes = [
        alert("v1", "critical_dtc", 100.0),
        alert("v1", "breakdown", 190.0, category="rescue"),
        alert("v2", "crash", 50.0, category="rescue"),
        alert("v1", "breakdown", 195.0, kind="cleared", category="rescue"),
    ]
    explained = explain_alerts(labels, changes)
    assert [(e.change.rule_id, e.primary) for e in explained] == [
        ("critical_dtc", False), ("breakdown", True), ("crash", False),
    ]  # fmt: skip
    assert [e.label.kind if e.label else None for e in explained] == [
        "breakdown", "breakdown", None,
    ]  # fmt: skip
    assert [e.delay_s for e in explained] == [0.0, 90.0, None]
