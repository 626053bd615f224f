"""Score the engine's alerts against ground-truth labels of a scenario suite (pure).

Each positive label (``label == "positive"``) is an episode some rule must catch: `EXPECTED`
names, per scenario kind, the rules that count as catching it and the rules whose alerts it
also explains (a critical DTC during a breakdown, service due soon before it is overdue).
An alert matches an episode of its vehicle when its rule is expected or related and it was
raised within the kind's window after the label's time (related rules may come ``lead_s``
before). Everything else raised is a false alert; a rescue alert on a vehicle whose labels are
all hard negatives is the worst kind of false alert.

    score = score_alerts(labels, changes)
    print(score.table())
    assert not score.acceptance()

Detection delay is the first expected alert's time minus the label's time (for slowly
developing kinds such as a slow puncture it includes the time the fault takes to show).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from .changes import AlertChange

__all__ = [
    "EXPECTED",
    "RESCUE_KINDS",
    "Expectation",
    "Explained",
    "FalseAlert",
    "KindScore",
    "LabelLike",
    "Score",
    "explain_alerts",
    "score_alerts",
]


class LabelLike(Protocol):
    """What scoring reads of a label (`simulators.Label` has it)."""

    @property
    def vehicle(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def time(self) -> float: ...  # epoch seconds


@dataclass(frozen=True, slots=True)
class Expectation:
    """Which rules catch a kind of episode, and when.

    ``rules``: any of them raising in ``[time - tolerance_s, time + within_s]`` catches the
    episode. ``related``: alerts the episode also explains (not false alerts, not counted
    for recall), from ``lead_s`` before the label.
    """

    rules: tuple[str, ...]
    related: tuple[str, ...] = ()
    within_s: float = math.inf
    lead_s: float = 0.0
    tolerance_s: float = 1.0


EXPECTED: Mapping[str, Expectation] = MappingProxyType(
    {
        "crash": Expectation(("crash",), within_s=60.0),
        "breakdown": Expectation(("breakdown",), related=("critical_dtc",), within_s=600.0),
        "ev_out_of_charge": Expectation(("ev_out_of_charge",), within_s=600.0),
        "slow_puncture": Expectation(("tyre_pressure_loss", "tyre_pressure_low")),
        "lv_drain": Expectation(("lv_battery_low",)),
        "overheating": Expectation(("coolant_overheating",)),
        # the distance to service counts down to 0: "due soon" comes before it is overdue;
        # clusters report whole km, so 0 km shows from half a km before the crossing
        "service_due": Expectation(
            ("service_overdue",),
            related=("service_due_soon",),
            within_s=900.0,
            lead_s=math.inf,
            tolerance_s=300.0,
        ),
    }
)

#: Kinds whose every episode must raise exactly one alert (the vehicle needs rescue).
RESCUE_KINDS = ("crash", "breakdown", "ev_out_of_charge")


@dataclass(frozen=True, slots=True)
class KindScore:
    """One scenario kind over the suite. For a negative kind, ``alerts`` counts every alert
    raised on hard-negative drives with it (``episodes`` of them)."""

    kind: str
    positive: bool
    episodes: int
    detected: int = 0
    alerts: int = 0  # raised by expected rules in matched episodes (positive), or false
    duplicates: int = 0  # episodes where one alert (vehicle, rule, sub-key) was raised twice
    extra: int = 0  # episodes with more than one expected alert
    delays_s: tuple[float, ...] = ()

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else math.nan

    def delay(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the delays, nearest rank; NaN without any."""
        if not self.delays_s:
            return math.nan
        ordered = sorted(self.delays_s)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True, slots=True)
class FalseAlert:
    """An alert no label explains."""

    vehicle: str
    rule_id: str
    subkey: str | None
    time_s: float
    category: str
    hard_negative: bool  # raised on a drive with hard negatives only


@dataclass(frozen=True, slots=True)
class Score:
    """The suite's score: per kind, overall, and the false alerts."""

    kinds: tuple[KindScore, ...]
    raised: int
    matched: int
    false_alerts: tuple[FalseAlert, ...] = field(default=())

    @property
    def positives(self) -> tuple[KindScore, ...]:
        return tuple(k for k in self.kinds if k.positive)

    @property
    def recall(self) -> float:
        episodes = sum(k.episodes for k in self.positives)
        return sum(k.detected for k in self.positives) / episodes if episodes else math.nan

    @property
    def precision(self) -> float:
        return self.matched / self.raised if self.raised else math.nan

    @property
    def rescue_on_hard_negatives(self) -> int:
        return sum(1 for f in self.false_alerts if f.hard_negative and f.category == "rescue")

    def kind(self, name: str) -> KindScore:
        return next(k for k in self.kinds if k.kind == name)

    def acceptance(self) -> list[str]:
        """What breaks issue 7's acceptance (empty: met): every rescue-worthy episode raises
        exactly one alert, no hard negative raises a rescue alert, one alert per episode."""
        problems = []
        for k in self.positives:
            if k.kind in RESCUE_KINDS and k.detected < k.episodes:
                problems.append(f"{k.kind}: {k.episodes - k.detected} of {k.episodes} missed")
            if k.duplicates:
                problems.append(f"{k.kind}: {k.duplicates} episodes raised an alert twice")
            if k.extra:
                problems.append(f"{k.kind}: {k.extra} episodes raised more than one alert")
        if self.rescue_on_hard_negatives:
            problems.append(f"{self.rescue_on_hard_negatives} rescue alerts on hard negatives")
        return problems

    def table(self) -> str:
        """The score as Markdown tables (per kind; overall; false alerts by rule)."""
        lines = [
            "| kind | label | episodes | detected | recall | alerts | duplicates "
            "| delay median s | p95 s | max s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for k in self.kinds:
            if k.positive:
                lines.append(
                    f"| {k.kind} | positive | {k.episodes} | {k.detected} | {k.recall:.3f} "
                    f"| {k.alerts} | {k.duplicates} | {_s(k.delay(0.5))} | {_s(k.delay(0.95))} "
                    f"| {_s(k.delay(1.0))} |"
                )
            else:
                lines.append(
                    f"| {k.kind} | hard negative | {k.episodes} | - | - | {k.alerts} | - "
                    "| - | - | - |"
                )
        lines += [
            "",
            f"Overall: recall {self.recall:.3f}, precision {self.precision:.3f} "
            f"({self.matched} of {self.raised} raised alerts explained by a label), "
            f"{len(self.false_alerts)} false alerts, "
            f"{self.rescue_on_hard_negatives} rescue alerts on hard negatives.",
        ]
        by_rule: dict[str, int] = defaultdict(int)
        for f in self.false_alerts:
            by_rule[f.rule_id] += 1
        if by_rule:
            lines += ["", "| false alerts of rule | count |", "|---|---:|"]
            lines += [f"| {rule} | {n} |" for rule, n in sorted(by_rule.items())]
        return "\n".join(lines)


def _s(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def score_alerts(
    labels: Iterable[LabelLike],
    changes: Iterable[AlertChange],
    *,
    expected: Mapping[str, Expectation] = EXPECTED,
) -> Score:
    """Match the ``raised`` changes to ``labels`` (see the module docstring)."""
    by_vehicle: dict[str, list[LabelLike]] = defaultdict(list)
    for label in labels:
        by_vehicle[label.vehicle].append(label)
    raised = [c for c in changes if c.kind == "raised"]
    alerts: dict[str, list[AlertChange]] = defaultdict(list)
    for change in raised:
        alerts[change.vehicle_id].append(change)
    hard_negative = {
        v: all(lab.label == "negative" for lab in labs) for v, labs in by_vehicle.items()
    }
    matched: dict[int, tuple[LabelLike, bool]] = {}  # ids of matched changes
    episodes = _episodes(by_vehicle, alerts, expected, matched)
    false_alerts = tuple(
        FalseAlert(
            c.vehicle_id,
            c.rule_id,
            c.subkey,
            c.time.timestamp(),
            c.category,
            hard_negative.get(c.vehicle_id, False),
        )
        for c in raised
        if id(c) not in matched
    )
    kinds = [_kind_score(kind, episodes[kind]) for kind in expected if kind in episodes]
    kinds += _negative_scores(by_vehicle, hard_negative, false_alerts)
    return Score(tuple(kinds), len(raised), len(matched), false_alerts)


@dataclass(frozen=True, slots=True)
class Explained:
    """A raised alert and the label that explains it (None: no label does); ``primary``: its
    rule is one that catches the label's kind (not only a related one)."""

    change: AlertChange
    label: LabelLike | None
    primary: bool

    @property
    def delay_s(self) -> float | None:
        """The alert's time minus the label's (detection delay), when a label explains it."""
        return None if self.label is None else self.change.time.timestamp() - self.label.time


def explain_alerts(
    labels: Iterable[LabelLike],
    changes: Iterable[AlertChange],
    *,
    expected: Mapping[str, Expectation] = EXPECTED,
) -> list[Explained]:
    """Each ``raised`` change with the label it matched, matched as `score_alerts` does."""
    by_vehicle: dict[str, list[LabelLike]] = defaultdict(list)
    for label in labels:
        by_vehicle[label.vehicle].append(label)
    raised = [c for c in changes if c.kind == "raised"]
    alerts: dict[str, list[AlertChange]] = defaultdict(list)
    for change in raised:
        alerts[change.vehicle_id].append(change)
    matched: dict[int, tuple[LabelLike, bool]] = {}
    _episodes(by_vehicle, alerts, expected, matched)
    out = []
    for change in raised:
        found = matched.get(id(change))
        out.append(Explained(change, *(found or (None, False))))
    return out


def _episodes(
    by_vehicle: Mapping[str, Sequence[LabelLike]],
    alerts: Mapping[str, Sequence[AlertChange]],
    expected: Mapping[str, Expectation],
    matched: dict[int, tuple[LabelLike, bool]],
) -> dict[str, list[_Episode]]:
    episodes: dict[str, list[_Episode]] = defaultdict(list)
    for vehicle, labs in by_vehicle.items():
        for label in sorted(labs, key=lambda lab: lab.time):
            spec = expected.get(label.kind)
            if label.label != "positive" or spec is None:
                continue
            episode = _match(label, spec, alerts.get(vehicle, []), matched)
            episodes[label.kind].append(episode)
    return episodes


@dataclass(frozen=True, slots=True)
class _Episode:
    delay_s: float | None
    alerts: int
    duplicate: bool
    extra: bool


def _match(
    label: LabelLike,
    spec: Expectation,
    alerts: Sequence[AlertChange],
    matched: dict[int, tuple[LabelLike, bool]],
) -> _Episode:
    primary: list[AlertChange] = []
    for change in alerts:
        if id(change) in matched:
            continue
        offset = change.time.timestamp() - label.time
        if change.rule_id in spec.rules and -spec.tolerance_s <= offset <= spec.within_s:
            primary.append(change)
            matched[id(change)] = (label, True)
        elif change.rule_id in spec.related and -spec.lead_s <= offset <= spec.within_s:
            matched[id(change)] = (label, False)
    keys = [c.key for c in primary]
    first = min((c.time.timestamp() for c in primary), default=None)
    return _Episode(
        None if first is None else first - label.time,
        len(primary),
        len(keys) != len(set(keys)),
        len(set(keys)) > 1,
    )


def _kind_score(kind: str, episodes: Sequence[_Episode]) -> KindScore:
    delays = tuple(e.delay_s for e in episodes if e.delay_s is not None)
    return KindScore(
        kind,
        True,
        len(episodes),
        detected=len(delays),
        alerts=sum(e.alerts for e in episodes),
        duplicates=sum(e.duplicate for e in episodes),
        extra=sum(e.extra for e in episodes),
        delays_s=delays,
    )


def _negative_scores(
    by_vehicle: Mapping[str, Sequence[LabelLike]],
    hard_negative: Mapping[str, bool],
    false_alerts: Sequence[FalseAlert],
) -> list[KindScore]:
    drives: dict[str, set[str]] = defaultdict(set)
    for vehicle, labs in by_vehicle.items():
        if hard_negative[vehicle]:
            for label in labs:
                drives[label.kind].add(vehicle)
    counts: dict[str, int] = defaultdict(int)
    for f in false_alerts:
        for kind, vehicles in drives.items():
            if f.vehicle in vehicles:
                counts[kind] += 1
    return [
        KindScore(kind, False, len(vehicles), alerts=counts[kind])
        for kind, vehicles in sorted(drives.items())
    ]
