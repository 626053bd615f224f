"""What the demo reads back from the database, and the care team's table (pure formatting)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rules.changes import AlertChange
from rules.scoring import RESCUE_KINDS, Explained, Score

if TYPE_CHECKING:
    import psycopg

__all__ = ["Progress", "StoredAlert", "alert_table", "read_alerts", "read_progress", "summary"]

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
_CATEGORY = {"rescue": 0, "care": 1, "service": 2, "owner": 3}


@dataclass(frozen=True, slots=True)
class Progress:
    batches: int
    events: int
    samples: int
    dead_letters: int
    alerts: int
    rescue_alerts: int
    vehicles_pending: int  # vehicles with stored data the rules have not evaluated yet
    ingest_span_s: float  # first to last telemetry arrival


def read_progress(conn: psycopg.Connection[Any]) -> Progress:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM telemetry_batch),"
        " (SELECT count(*) FROM event),"
        " (SELECT coalesce(sum(samples), 0) FROM telemetry_batch),"
        " (SELECT count(*) FROM dead_letter),"
        " (SELECT count(*) FROM alert),"
        " (SELECT count(*) FROM alert WHERE category = 'rescue'),"
        " (SELECT count(*) FROM vehicle_progress p LEFT JOIN rule_state s USING (vehicle_id)"
        "   WHERE p.version > coalesce(s.seen_version, 0)),"
        " (SELECT coalesce(extract(epoch FROM max(received_at) - min(received_at)), 0)::float8"
        "   FROM telemetry_batch)"
    ).fetchone()
    assert row is not None
    batches, events, samples, dead, alerts, rescue, pending, span = row
    return Progress(
        int(batches), int(events), int(samples), int(dead), int(alerts), int(rescue),
        int(pending), float(span),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored, with the seconds from the arrival of the data that raised it (the
    vehicle's first event or telemetry batch reaching the alert's time) to its storage."""

    alert_id: int
    change: AlertChange
    latency_s: float | None


def read_alerts(conn: psycopg.Connection[Any]) -> list[StoredAlert]:
    rows = conn.execute(
        "SELECT a.alert_id, a.vehicle_id, a.rule_id, a.subkey, a.raised_at, a.severity,"
        " a.category, a.title, a.auto_resolve,"
        " extract(epoch FROM a.created_at - least("
        "   (SELECT min(t.received_at) FROM telemetry_batch t"
        "     WHERE t.vehicle_id = a.vehicle_id AND t.last_time >= a.raised_at),"
        "   (SELECT min(e.received_at) FROM event e"
        "     WHERE e.vehicle_id = a.vehicle_id AND e.time >= a.raised_at)))::float8"
        " FROM alert a ORDER BY a.created_at, a.alert_id"
    ).fetchall()
    out = []
    for alert_id, vehicle, rule, subkey, raised, severity, category, title, auto, lat in rows:
        change = AlertChange(
            "raised", vehicle, rule, subkey, raised, severity, category, title, auto_resolve=auto
        )
        out.append(StoredAlert(int(alert_id), change, None if lat is None else float(lat)))
    return out


def alert_table(explained: Sequence[Explained], ids: dict[int, int]) -> str:
    """The care team's alerts, rescue first: id, rule, severity, vehicle, detection delay and
    the label each matched (``unexpected``: none). ``ids`` maps ``id(change)`` to alert ids."""
    rows = sorted(
        explained,
        key=lambda e: (
            _CATEGORY.get(e.change.category, 9),
            _SEVERITY.get(e.change.severity, 9),
            e.change.time,
        ),
    )
    header = ("alert", "rule", "category", "severity", "vehicle", "delay", "label matched")
    lines = [header]
    for e in rows:
        c = e.change
        rule = c.rule_id if c.subkey is None else f"{c.rule_id}/{c.subkey}"
        if e.label is None:
            label = "unexpected"
        else:
            label = f"{e.label.kind} at {_clock(e.label.time)}" + (
                "" if e.primary else " (related)"
            )
        lines.append(
            (f"#{ids[id(c)]}", rule, c.category, c.severity, c.vehicle_id, _delay(e.delay_s), label)
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    out = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def summary(
    score: Score, alerts: Sequence[StoredAlert], progress: Progress, *, vehicles: int
) -> list[str]:
    """The run's figures: ingest rate, alert latency, recall on rescue events, hard negatives."""
    rate = progress.samples / progress.ingest_span_s if progress.ingest_span_s > 0 else math.nan
    msg_rate = progress.batches / progress.ingest_span_s if progress.ingest_span_s > 0 else math.nan
    latencies = sorted(a.latency_s for a in alerts if a.latency_s is not None)
    rescue = [k for k in score.positives if k.kind in RESCUE_KINDS]
    episodes = sum(k.episodes for k in rescue)
    detected = sum(k.detected for k in rescue)
    per_kind = ", ".join(f"{k.kind} {k.detected}/{k.episodes}" for k in score.positives)
    unexpected = len(score.false_alerts)
    lines = [
        f"vehicles         {vehicles}, {progress.batches:,} telemetry batches and "
        f"{progress.events:,} events stored, {progress.dead_letters} dead letters",
        f"ingest           {progress.samples:,} samples in {progress.ingest_span_s:,.1f} s: "
        f"{rate:,.0f} samples/s, {msg_rate:,.1f} batches/s",
        f"alert latency    {_quantiles(latencies)} (from the arrival of the data that "
        "raised it to the alert stored)",
        f"rescue events    {detected} of {episodes} raised a rescue alert "
        f"(recall {detected / episodes if episodes else math.nan:.3f})",
        f"all episodes     {per_kind}",
        f"hard negatives   {score.rescue_on_hard_negatives} rescue alerts on hard-negative "
        f"vehicles; {unexpected} alerts no label explains",
    ]
    return lines


def _quantiles(values: Sequence[float]) -> str:
    if not values:
        return "-"

    def q(p: float) -> float:
        return values[min(len(values) - 1, max(0, math.ceil(p * len(values)) - 1))]

    return f"median {q(0.5):.2f} s, p95 {q(0.95):.2f} s, max {values[-1]:.2f} s"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S")
