"""What a rules worker reads of a vehicle and keeps for it, in the database (docs/schema.md).

::

    vehicles = due_vehicles(conn, worker=0, workers=2)   # new data, this worker's share
    with conn.transaction():
        cursor = lock_state(conn, "veh-1")               # FOR UPDATE: one worker at a time
        new = read_new(conn, cursor, paths, settle_s=1.0)  # batches in order, and events
        ...                                               # evaluate, apply the changes
        save_state(conn, cursor, seen_version=version, new=new)

Telemetry batches are read in sequence order, only those received at least ``settle_s`` ago:
two ingest processes may commit a vehicle's consecutive batches out of order, and the wait
lets the earlier one land first (a batch that lands later than that is older than what the
rules have seen, and the engine ignores its samples). Events are read at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeAlias

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from .engine import Observations, VehicleEvent, VehicleState

__all__ = [
    "Cursor",
    "NewData",
    "due_vehicles",
    "lock_state",
    "read_context",
    "read_new",
    "save_state",
]

Connection: TypeAlias = "psycopg.Connection[Any]"


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a vehicle's rules have read, and their states."""

    vehicle_id: str
    seen_version: int
    telemetry_sequence: int
    event_sequence: int
    data_state: VehicleState
    clock_state: VehicleState
    ticked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewData:
    """A vehicle's data the rules have not evaluated yet."""

    observations: Observations
    last_sequence: int | None  # the newest telemetry batch read, None without
    last_event: int | None
    held_back: bool  # batches too recent to read yet (settle time)
    samples: int


def due_vehicles(
    conn: Connection, *, worker: int = 0, workers: int = 1, limit: int = 500
) -> list[tuple[str, int]]:
    """Vehicles of this worker's share with data newer than their rules have seen."""
    rows = conn.execute(
        "SELECT p.vehicle_id, p.version FROM vehicle_progress p"
        " LEFT JOIN rule_state s USING (vehicle_id)"
        " WHERE p.version > coalesce(s.seen_version, 0)"
        "   AND mod(abs(hashtext(p.vehicle_id)::bigint), %s) = %s"
        " ORDER BY p.updated_at LIMIT %s",
        (workers, worker, limit),
    ).fetchall()
    return [(str(v), int(version)) for v, version in rows]


def lock_state(conn: Connection, vehicle_id: str) -> Cursor:
    """The vehicle's cursor, locked for this transaction (created on first use)."""
    conn.execute(
        "INSERT INTO rule_state (vehicle_id) VALUES (%s) ON CONFLICT DO NOTHING", (vehicle_id,)
    )
    row = conn.execute(
        "SELECT seen_version, telemetry_sequence, event_sequence, data_state, clock_state,"
        " ticked_at FROM rule_state WHERE vehicle_id = %s FOR UPDATE",
        (vehicle_id,),
    ).fetchone()
    assert row is not None
    seen, telemetry, event, data, clock, ticked = row
    return Cursor(
        vehicle_id, int(seen), int(telemetry), int(event),
        VehicleState.from_json(data) if data else VehicleState(),
        VehicleState.from_json(clock) if clock else VehicleState(),
        ticked,
    )  # fmt: skip


def read_new(conn: Connection, cursor: Cursor, paths: Iterable[str], *, settle_s: float) -> NewData:
    """The telemetry (only ``paths``) and events of the vehicle after its cursor."""
    vehicle = cursor.vehicle_id
    batches = conn.execute(
        "SELECT sequence, first_time, last_time, received_at <= now() - make_interval(secs => %s)"
        " FROM telemetry_batch WHERE vehicle_id = %s AND sequence > %s ORDER BY sequence",
        (settle_s, vehicle, cursor.telemetry_sequence),
    ).fetchall()
    settled = []
    for sequence, first, last, ready in batches:
        if not ready:
            break
        settled.append((int(sequence), first, last))
    held_back = len(settled) < len(batches)
    signals: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    samples = 0
    timed = [(s, f, t) for s, f, t in settled if f is not None]
    if timed:
        rows = conn.execute(
            "SELECT g.path, (extract(epoch FROM s.start_time) * 1000)::int8, s.times, s.physical"
            " FROM telemetry_series s JOIN signal g USING (signal_id)"
            " WHERE s.vehicle_id = %s AND s.sequence = ANY(%s) AND g.path = ANY(%s)"
            "   AND s.start_time >= %s AND s.start_time <= %s",
            (vehicle, [s for s, _f, _t in timed], list(paths),
             min(f for _s, f, _t in timed), max(t for _s, _f, t in timed)),
        ).fetchall()  # fmt: skip
        for path, start_ms, times, physical in rows:
            t = np.asarray(times, np.int64) + int(start_ms)
            v = np.asarray(physical, np.float64)
            entry = signals.setdefault(str(path), ([], []))
            entry[0].append(t)
            entry[1].append(v)
            samples += len(t)
    merged = {}
    for path, (times, values) in signals.items():
        t = np.concatenate(times)
        v = np.concatenate(values)
        order = np.argsort(t, kind="stable")
        merged[path] = (t[order], v[order])
    events = conn.execute(
        "SELECT sequence, (extract(epoch FROM time) * 1000)::int8, kind, payload FROM event"
        " WHERE vehicle_id = %s AND sequence > %s ORDER BY sequence",
        (vehicle, cursor.event_sequence),
    ).fetchall()
    return NewData(
        Observations(merged, [VehicleEvent(int(t), str(k), p) for _s, t, k, p in events]),
        settled[-1][0] if settled else None,
        int(events[-1][0]) if events else None,
        held_back,
        samples,
    )


def save_state(
    conn: Connection,
    cursor: Cursor,
    *,
    seen_version: int | None = None,
    new: NewData | None = None,
    ticked_at: datetime | None = None,
) -> None:
    """Store the cursor advanced past ``new`` and the states (inside the caller's transaction)."""
    telemetry = cursor.telemetry_sequence
    event = cursor.event_sequence
    if new is not None:
        telemetry = new.last_sequence if new.last_sequence is not None else telemetry
        event = new.last_event if new.last_event is not None else event
    conn.execute(
        "UPDATE rule_state SET seen_version = %s, telemetry_sequence = %s, event_sequence = %s,"
        " data_state = %s::jsonb, clock_state = %s::jsonb, ticked_at = %s, updated_at = now()"
        " WHERE vehicle_id = %s",
        (
            cursor.seen_version if seen_version is None else seen_version,
            telemetry, event,
            Jsonb(cursor.data_state.to_json()),
            Jsonb(cursor.clock_state.to_json()),
            ticked_at or cursor.ticked_at, cursor.vehicle_id,
        ),
    )  # fmt: skip


def read_context(
    conn: Connection, vehicle_ids: Sequence[str], today: date
) -> dict[str, dict[str, float]]:
    """The ``vehicle.*`` and ``service.*`` context numbers of each vehicle (docs/rules.md)."""
    rows = conn.execute(
        """
        SELECT v.vehicle_id, v.delivery_date, m.interval_km, m.interval_days, m.warranty_days,
               r.time, r.odometer_km
        FROM vehicle v
        LEFT JOIN model_service m ON m.model = v.model
        LEFT JOIN LATERAL (
            SELECT time, odometer_km FROM service_record s
            WHERE s.vehicle_id = v.vehicle_id ORDER BY time DESC LIMIT 1
        ) r ON true
        WHERE v.vehicle_id = ANY(%s)
        """,
        (list(vehicle_ids),),
    ).fetchall()
    contexts: dict[str, dict[str, float]] = {}
    for vehicle, delivered, interval_km, interval_days, warranty_days, serviced, odometer in rows:
        context: dict[str, float] = {}
        if delivered is not None:
            context["vehicle.days_since_delivery"] = float((today - delivered).days)
            if warranty_days is not None:
                context["vehicle.days_to_warranty_end"] = float(
                    warranty_days - (today - delivered).days
                )
        if interval_km is not None:
            context["service.interval_km"] = float(interval_km)
        if interval_days is not None:
            context["service.interval_days"] = float(interval_days)
        since = serviced.date() if serviced is not None else delivered
        if since is not None:
            context["service.days_since"] = float((today - since).days)
        context["service.odometer_km"] = float(odometer) if odometer is not None else 0.0
        contexts[str(vehicle)] = context
    return contexts
