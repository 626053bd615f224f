"""The API's own reads and writes (vehicles, series, service records, campaigns, rule files).

Alerts, webhooks and campaign changes go through their packages (`rules.store`,
`rules.delivery`, `rules.campaigns`); what is here has no home there. Every function takes an
autocommit connection and owns its transaction.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, LiteralString, TypeAlias

import psycopg
from psycopg.rows import dict_row

from .errors import Conflict, InvalidRequest, NotFound

__all__ = [
    "bump_rule_generation",
    "delete_rule_file",
    "delete_webhook",
    "events_between",
    "get_rule_file",
    "get_vehicle",
    "latest_state",
    "list_campaigns",
    "list_rule_files",
    "list_service_records",
    "list_vehicles",
    "one_statement",
    "open_alert_count",
    "put_rule_file",
    "record_service",
    "rule_generation",
    "signal_buckets",
    "signal_samples",
    "vehicle_status",
]

Connection: TypeAlias = "psycopg.Connection[Any]"
Row: TypeAlias = dict[str, Any]

_VEHICLE: LiteralString = (
    "SELECT vehicle_id, vin, model, propulsion, delivery_date, owner_ref, region, tags,"
    " created_at FROM vehicle"
)


def one_statement(conn: Connection) -> AbstractContextManager[object]:
    """The transaction of one statement: on an autocommit connection (the API's) the statement
    is its own, without the two round trips of BEGIN and COMMIT (measured: they were half of a
    list request's time waiting on the database under load); on another, an explicit one."""
    return nullcontext() if conn.autocommit else conn.transaction()


def _rows(conn: Connection, query: LiteralString, params: Any = None) -> list[Row]:
    with one_statement(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _one(conn: Connection, query: LiteralString, params: Any = None) -> Row | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


# Vehicles -------------------------------------------------------------------------------------


def _cursor(vehicle_id: str) -> str:
    return base64.urlsafe_b64encode(vehicle_id.encode()).decode("ascii").rstrip("=")


def _after(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(f"invalid cursor {cursor!r}", field="query.cursor") from None


def list_vehicles(
    conn: Connection,
    *,
    q: str | None = None,
    vin: str | None = None,
    model: str | None = None,
    region: str | None = None,
    tags: Sequence[str] = (),
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Row], str | None]:
    """Vehicles by id, filtered; ``q`` matches the start of the id or the VIN."""
    rows = _rows(
        conn,
        _VEHICLE + " WHERE (%(q)s::text IS NULL OR vehicle_id LIKE %(qp)s OR vin LIKE %(qp)s)"
        " AND (%(vin)s::text IS NULL OR vin = %(vin)s)"
        " AND (%(model)s::text IS NULL OR model = %(model)s)"
        " AND (%(region)s::text IS NULL OR region = %(region)s)"
        " AND tags @> %(tags)s::text[]"
        " AND (%(after)s::text IS NULL OR vehicle_id > %(after)s)"
        " ORDER BY vehicle_id LIMIT %(limit)s",
        {
            "q": q,
            "qp": None if q is None else _like_prefix(q),
            "vin": vin,
            "model": model,
            "region": region,
            "tags": list(tags),
            "after": None if cursor is None else _after(cursor),
            "limit": limit + 1,
        },
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _cursor(rows[-1]["vehicle_id"]) if more else None


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def get_vehicle(conn: Connection, vehicle_id: str) -> Row:
    row = _one(conn, _VEHICLE + " WHERE vehicle_id = %s", (vehicle_id,))
    if row is None:
        raise NotFound(f"no vehicle {vehicle_id!r}")
    return row


def latest_state(conn: Connection, vehicle_id: str) -> dict[str, dict[str, Any]]:
    rows = _rows(
        conn,
        "SELECT s.path, l.time, l.value FROM latest_state l JOIN signal s USING (signal_id)"
        " WHERE l.vehicle_id = %s ORDER BY s.path",
        (vehicle_id,),
    )
    return {r["path"]: {"time": r["time"], "value": _finite(r["value"])} for r in rows}


def vehicle_status(conn: Connection, vehicle_id: str) -> Row | None:
    return _one(
        conn,
        "SELECT state, time, document FROM vehicle_status WHERE vehicle_id = %s",
        (vehicle_id,),
    )


def open_alert_count(conn: Connection, vehicle_id: str) -> int:
    row = _one(
        conn,
        "SELECT count(*) AS n FROM alert WHERE vehicle_id = %s AND status <> 'resolved'",
        (vehicle_id,),
    )
    return 0 if row is None else int(row["n"])


# Time series ----------------------------------------------------------------------------------


def signal_samples(
    conn: Connection, vehicle_id: str, path: str, start: datetime, end: datetime, limit: int
) -> list[Row]:
    """Up to ``limit`` samples (``limit + 1`` rows tell the caller there are more)."""
    rows = _rows(
        conn,
        "SELECT time, value, raw FROM signal_samples(%s, %s, %s, %s) LIMIT %s",
        (vehicle_id, path, start, end, limit + 1),
    )
    return [{**r, "value": _finite(r["value"])} for r in rows]


def signal_buckets(
    conn: Connection,
    vehicle_id: str,
    path: str,
    start: datetime,
    end: datetime,
    width: timedelta,
) -> list[Row]:
    rows = _rows(
        conn,
        "SELECT bucket, mean, min, max, samples FROM signal_buckets(%s, %s, %s, %s, %s)",
        (vehicle_id, path, start, end, width),
    )
    return [
        {**r, "mean": _finite(r["mean"]), "min": _finite(r["min"]), "max": _finite(r["max"])}
        for r in rows
    ]


def events_between(conn: Connection, vehicle_id: str, start: datetime, end: datetime) -> list[Row]:
    return _rows(
        conn,
        "SELECT time, kind, payload FROM event WHERE vehicle_id = %s AND time >= %s"
        " AND time < %s ORDER BY time LIMIT 1000",
        (vehicle_id, start, end),
    )


# Service records ------------------------------------------------------------------------------

_SERVICE: LiteralString = (
    "service_id, vehicle_id, time, odometer_km, note, recorded_by, recorded_at"
)


def record_service(
    conn: Connection,
    vehicle_id: str,
    time: datetime,
    odometer_km: float | None,
    note: str | None,
    *,
    actor: str,
) -> Row:
    """Stores a service done; the rules worker's next evaluation resets the reminder."""
    get_vehicle(conn, vehicle_id)
    row = _one(
        conn,
        "INSERT INTO service_record (vehicle_id, time, odometer_km, note, recorded_by)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING " + _SERVICE,
        (vehicle_id, time, odometer_km, note, actor),
    )
    assert row is not None
    return row


def list_service_records(conn: Connection, vehicle_id: str, limit: int = 100) -> list[Row]:
    get_vehicle(conn, vehicle_id)
    return _rows(
        conn,
        "SELECT " + _SERVICE + " FROM service_record WHERE vehicle_id = %s"
        " ORDER BY time DESC, service_id DESC LIMIT %s",
        (vehicle_id, limit),
    )


# Campaigns ------------------------------------------------------------------------------------


def list_campaigns(conn: Connection, status: str | None = None) -> list[int]:
    rows = _rows(
        conn,
        "SELECT campaign_id FROM campaign WHERE %(s)s::text IS NULL OR status = %(s)s"
        " ORDER BY campaign_id DESC LIMIT 1000",
        {"s": status},
    )
    return [int(r["campaign_id"]) for r in rows]


# Webhooks -------------------------------------------------------------------------------------


def delete_webhook(conn: Connection, webhook_id: int) -> bool:
    """Deletes a webhook and its deliveries; False when there was none."""
    return (
        _one(conn, "DELETE FROM webhook WHERE webhook_id = %s RETURNING webhook_id", (webhook_id,))
        is not None
    )


# Rule files -----------------------------------------------------------------------------------

_RULE_FILE: LiteralString = "SELECT name, text, updated_by, updated_at FROM rule_file"


def list_rule_files(conn: Connection) -> list[Row]:
    return _rows(conn, _RULE_FILE + " ORDER BY name")


def get_rule_file(conn: Connection, name: str) -> Row:
    row = _one(conn, _RULE_FILE + " WHERE name = %s", (name,))
    if row is None:
        raise NotFound(f"no rule file {name!r}")
    return row


def put_rule_file(conn: Connection, name: str, text: str, *, actor: str) -> Row:
    row = _one(
        conn,
        "INSERT INTO rule_file (name, text, updated_by) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET text = excluded.text,"
        " updated_by = excluded.updated_by, updated_at = now()"
        " RETURNING name, text, updated_by, updated_at",
        (name, text, actor),
    )
    assert row is not None
    return row


def delete_rule_file(conn: Connection, name: str) -> None:
    if _one(conn, "DELETE FROM rule_file WHERE name = %s RETURNING name", (name,)) is None:
        raise NotFound(f"no rule file {name!r}")


def rule_generation(conn: Connection) -> int:
    row = _one(conn, "SELECT generation FROM rule_generation")
    return 0 if row is None else int(row["generation"])


def bump_rule_generation(conn: Connection, *, actor: str) -> int:
    """A reload request: the generation goes up and the workers are told (NOTIFY)."""
    row = _one(
        conn,
        "WITH bumped AS (UPDATE rule_generation SET generation = generation + 1,"
        " requested_by = %s, requested_at = now() RETURNING generation)"
        " SELECT generation, pg_notify('can2care_rules', generation::text) FROM bumped",
        (actor,),
    )
    if row is None:
        raise Conflict("the rule_generation row is missing; migrate the database")
    return int(row["generation"])
