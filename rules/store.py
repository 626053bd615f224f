"""The alert store: alerts in PostgreSQL, their lifecycle, audit history and change feed.

::

    applied = apply_changes(conn, engine_changes)          # one transaction
    acknowledge(conn, alert_id, actor="ana")               # people's actions, validated
    assign(conn, alert_id, "ben", actor="ana"); add_note(conn, alert_id, "called", actor="ben")
    dispatch(conn, alert_id, {"tow": "ACME"}, actor="ben")
    resolve(conn, alert_id, "towed", actor="ben")
    escalate_due(conn, now, {"crash": 300.0})              # open, unacknowledged, too old: once
    get_alert(conn, alert_id); list_alerts(conn, status="open", cursor=page.next_cursor)
    alert_history(conn, alert_id); feed_since(conn, last_feed_id)

Every change, by the engine or a person, increments the alert's ``sequence`` and appends, in
the same transaction, an `alert_audit` row (who, what, when, from and to status), an
`alert_feed` row (the alert's new state; its id is the event id of a live stream), a
``NOTIFY alert_changes, '<feed id>'`` and the webhook deliveries of `rules.delivery`.

Writers take a transaction-level advisory lock first, so feed ids are committed in increasing
order and a reader that resumes after the last id it saw misses nothing. Alerts change far
less often than telemetry arrives; serialising their writers costs nothing that matters.

The functions own their transaction (a savepoint inside a caller's). Database errors propagate
as ``psycopg.Error`` after the rollback; the domain errors are in `rules.errors`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from types import MappingProxyType
from typing import Any, LiteralString, TypeAlias, TypedDict, Unpack, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .alerts import (
    Action,
    Alert,
    AlertJsonPage,
    AlertPage,
    AppliedChange,
    AuditEntry,
    FeedEntry,
    Outcome,
    Status,
    alert_json,
    next_status,
)
from .changes import AlertChange
from .delivery import enqueue
from .errors import AlertNotFound, InvalidCursor

__all__ = [
    "CHANNEL",
    "ListFilters",
    "acknowledge",
    "add_note",
    "alert_history",
    "apply_changes",
    "assign",
    "dispatch",
    "escalate_due",
    "feed_since",
    "get_alert",
    "list_alerts",
    "list_alerts_json",
    "resolve",
]

log = logging.getLogger(__name__)

Connection: TypeAlias = "psycopg.Connection[Any]"
Row: TypeAlias = dict[str, Any]
_Query: TypeAlias = "LiteralString | sql.SQL | sql.Composed"

CHANNEL = "alert_changes"
# Serialises the writers of alert_feed ("c2ca" in ASCII).
_FEED_LOCK = 0x63326361

_COLUMNS: tuple[LiteralString, ...] = (
    "alert_id", "key", "vehicle_id", "rule_id", "subkey", "status", "severity", "category",
    "title", "auto_resolve", "details", "raised_at", "created_at", "updated_at", "sequence",
    "acknowledged_at", "acknowledged_by", "assigned_to", "dispatched_at", "dispatch",
    "cleared_at", "renotified_at", "escalated_at", "resolved_at", "resolved_by", "resolution",
)  # fmt: skip
_ALERT_COLUMNS: LiteralString = ", ".join(_COLUMNS)
_A_COLUMNS: LiteralString = ", ".join("a." + c for c in _COLUMNS)
_RETURNING = sql.SQL(" RETURNING " + _ALERT_COLUMNS)
_BUMP: LiteralString = "sequence = sequence + 1, updated_at = now()"


# Engine changes -------------------------------------------------------------------------------


def apply_changes(
    conn: Connection, changes: Sequence[AlertChange], *, actor: str = "rules"
) -> list[AppliedChange]:
    """Applies the engine's changes in one transaction; one result per change, in order."""
    if not changes:
        return []
    with _writing(conn):
        results = [_apply(conn, change, actor) for change in changes]
    log.debug("applied %d alert changes", len(results))
    return results


def _apply(conn: Connection, change: AlertChange, actor: str) -> AppliedChange:
    details = {"time": change.time.isoformat(), "details": dict(change.details)}
    if change.kind == "raised":
        return _raise(conn, change, actor, details)
    if change.kind == "renotified":
        row = _fetch_one(
            conn,
            sql.SQL(
                "UPDATE alert SET renotified_at = %(time)s, "
                + _BUMP
                + " WHERE key = %(key)s AND status <> 'resolved'"
            )
            + _RETURNING,
            {"time": change.time, "key": change.key},
        )
        if row is None:  # resolved by a person while the condition held: a new alert
            return _raise(conn, change, actor, details)
        alert = _alert(row)
        feed_id = _record(conn, alert, actor, "renotified", alert.status, None, details)
        return AppliedChange(change, "renotified", alert.alert_id, feed_id)
    current = _fetch_one(
        conn,
        "SELECT alert_id, status FROM alert WHERE key = %(key)s AND status <> 'resolved'"
        " FOR UPDATE",
        {"key": change.key},
    )
    if current is None:
        return AppliedChange(change, "no_alert", None, None)
    if change.auto_resolve:
        query = sql.SQL(
            "UPDATE alert SET status = 'resolved', resolved_at = now(), resolved_by = %(actor)s,"
            " resolution = 'condition cleared', cleared_at = %(time)s, "
            + _BUMP
            + " WHERE alert_id = %(id)s"
        )
        outcome: Outcome = "resolved"
    else:
        query = sql.SQL(
            "UPDATE alert SET cleared_at = %(time)s, " + _BUMP + " WHERE alert_id = %(id)s"
        )
        outcome = "cleared"
    row = _fetch_one(
        conn, query + _RETURNING, {"actor": actor, "time": change.time, "id": current["alert_id"]}
    )
    assert row is not None  # locked above
    alert = _alert(row)
    action = "resolved" if change.auto_resolve else "cleared"
    feed_id = _record(conn, alert, actor, action, current["status"], "condition cleared", details)
    return AppliedChange(change, outcome, alert.alert_id, feed_id)


def _raise(
    conn: Connection, change: AlertChange, actor: str, details: Mapping[str, Any]
) -> AppliedChange:
    row = _fetch_one(
        conn,
        sql.SQL(
            "INSERT INTO alert (key, vehicle_id, rule_id, subkey, severity, category, title,"
            " auto_resolve, details, raised_at) VALUES (%(key)s, %(vehicle)s, %(rule)s,"
            " %(subkey)s, %(severity)s, %(category)s, %(title)s, %(auto)s, %(details)s,"
            " %(time)s) ON CONFLICT (key) WHERE status <> 'resolved' DO NOTHING"
        )
        + _RETURNING,
        {
            "key": change.key,
            "vehicle": change.vehicle_id,
            "rule": change.rule_id,
            "subkey": change.subkey,
            "severity": change.severity,
            "category": change.category,
            "title": change.title,
            "auto": change.auto_resolve,
            "details": Jsonb(dict(change.details)),
            "time": change.time,
        },
    )
    if row is None:
        existing = _fetch_one(
            conn,
            "SELECT alert_id FROM alert WHERE key = %(key)s AND status <> 'resolved'",
            {"key": change.key},
        )
        return AppliedChange(
            change, "duplicate", None if existing is None else existing["alert_id"], None
        )
    alert = _alert(row)
    feed_id = _record(conn, alert, actor, "raised", None, None, details)
    return AppliedChange(change, "raised", alert.alert_id, feed_id)


# People's actions -----------------------------------------------------------------------------


def acknowledge(conn: Connection, alert_id: int, *, actor: str, note: str | None = None) -> Alert:
    """open -> acknowledged."""
    return _act(
        conn, alert_id, "acknowledge", "acknowledged", actor,
        "acknowledged_at = now(), acknowledged_by = %(actor)s", {}, note, {},
    )  # fmt: skip


def assign(conn: Connection, alert_id: int, to: str | None, *, actor: str) -> Alert:
    """Assigns an unresolved alert to a person (None: unassigned); the status stays."""
    return _act(
        conn, alert_id, "assign", "assigned", actor,
        "assigned_to = %(assignee)s", {"assignee": to}, None, {"assigned_to": to},
    )  # fmt: skip


def add_note(conn: Connection, alert_id: int, text: str, *, actor: str) -> Alert:
    """A note in the alert's history, in any status (also after resolution)."""
    return _act(conn, alert_id, "note", "noted", actor, "", {}, text, {})


def dispatch(conn: Connection, alert_id: int, details: Mapping[str, Any], *, actor: str) -> Alert:
    """open or acknowledged -> dispatched; ``details`` say what was sent (JSON values)."""
    return _act(
        conn, alert_id, "dispatch", "dispatched", actor,
        "dispatched_at = now(), dispatch = %(dispatch)s",
        {"dispatch": Jsonb(dict(details))}, None, dict(details),
    )  # fmt: skip


def resolve(conn: Connection, alert_id: int, reason: str, *, actor: str) -> Alert:
    """Any unresolved status -> resolved, with the reason."""
    return _act(
        conn, alert_id, "resolve", "resolved", actor,
        "resolved_at = now(), resolved_by = %(actor)s, resolution = %(reason)s",
        {"reason": reason}, reason, {},
    )  # fmt: skip


def _act(
    conn: Connection,
    alert_id: int,
    action: Action,
    recorded_as: str,
    actor: str,
    assignments: LiteralString,
    params: Mapping[str, Any],
    note: str | None,
    details: Mapping[str, Any],
) -> Alert:
    if not actor:
        raise ValueError("an alert action needs an actor")
    with _writing(conn):
        current = _fetch_one(
            conn, "SELECT status FROM alert WHERE alert_id = %(id)s FOR UPDATE", {"id": alert_id}
        )
        if current is None:
            raise AlertNotFound(alert_id)
        from_status = cast(Status, current["status"])
        to_status = next_status(alert_id, action, from_status)
        sets = "status = %(new_status)s, " + _BUMP + (", " + assignments if assignments else "")
        row = _fetch_one(
            conn,
            sql.SQL("UPDATE alert SET " + sets + " WHERE alert_id = %(id)s") + _RETURNING,
            {**params, "new_status": to_status, "id": alert_id, "actor": actor},
        )
        assert row is not None  # locked above
        alert = _alert(row)
        _record(conn, alert, actor, recorded_as, from_status, note, details)
    log.info("alert %d %s by %s (%s -> %s)", alert_id, recorded_as, actor, from_status, to_status)
    return alert


# Escalation -----------------------------------------------------------------------------------


def escalate_due(
    conn: Connection,
    now: datetime,
    escalate_after: Mapping[str, float],
    *,
    actor: str = "rules",
) -> list[Alert]:
    """Escalates, once, each open alert not acknowledged within its rule's limit (seconds).

    The time counts from when the alert was stored (``created_at``). Returns the escalated
    alerts; each gets an audit entry, a feed entry and deliveries of kind ``escalated``.
    """
    if not escalate_after:
        return []
    rules = list(escalate_after)
    with _writing(conn):
        rows = _fetch_all(
            conn,
            sql.SQL(
                "UPDATE alert a SET escalated_at = now(), sequence = a.sequence + 1,"
                " updated_at = now() FROM unnest(%(rules)s::text[], %(limits)s::float8[])"
                " AS l (rule_id, seconds) WHERE a.rule_id = l.rule_id AND a.status = 'open'"
                " AND a.escalated_at IS NULL"
                " AND a.created_at + l.seconds * interval '1 second' <= %(now)s"
                " RETURNING l.seconds AS escalate_after_s, " + _A_COLUMNS
            ),
            {"rules": rules, "limits": [float(escalate_after[r]) for r in rules], "now": now},
        )
        alerts = []
        for row in sorted(rows, key=lambda r: int(r["alert_id"])):
            alert = _alert(row)
            seconds = float(row["escalate_after_s"])
            _record(
                conn, alert, actor, "escalated", alert.status,
                f"not acknowledged within {seconds:g} s", {"escalate_after_s": seconds},
            )  # fmt: skip
            alerts.append(alert)
    if alerts:
        log.info("escalated %d alerts", len(alerts))
    return alerts


# Queries --------------------------------------------------------------------------------------


def get_alert(conn: Connection, alert_id: int) -> Alert:
    """The alert with this id, or `AlertNotFound`."""
    with _reading(conn):
        row = _fetch_one(
            conn,
            sql.SQL("SELECT " + _ALERT_COLUMNS + " FROM alert WHERE alert_id = %(id)s"),
            {"id": alert_id},
        )
    if row is None:
        raise AlertNotFound(alert_id)
    return _alert(row)


class ListFilters(TypedDict, total=False):
    """The alert list's filters, each optional: ``since <= raised_at < until``; ``region`` is
    the vehicle's; one status or severity or several; ``cursor`` a page's ``next_cursor``
    (valid while alerts are added); ``limit`` 1 to 1000 alerts a page (50)."""

    status: str | Sequence[str] | None
    severity: str | Sequence[str] | None
    rule_id: str | None
    vehicle_id: str | None
    region: str | None
    since: datetime | None
    until: datetime | None
    cursor: str | None
    limit: int


def list_alerts(conn: Connection, **filters: Unpack[ListFilters]) -> AlertPage:
    """Alerts newest first (by ``raised_at``, then id), filtered (`ListFilters`), one page
    at a time. Pass the page's ``next_cursor`` as ``cursor`` for the next page."""
    query, params, limit = _page_query(_ALERT_SELECT, filters)
    with _reading(conn):
        rows = _fetch_all(conn, query, params)
    alerts = tuple(_alert(r) for r in rows[:limit])
    if len(rows) <= limit:
        return AlertPage(alerts, None)
    return AlertPage(alerts, _encode_cursor(alerts[-1].raised_at, alerts[-1].alert_id))


def list_alerts_json(conn: Connection, **filters: Unpack[ListFilters]) -> AlertJsonPage:
    """`list_alerts` with each alert as the JSON text of its `alert_json`, built by the
    database: a page without a Python object per alert (the care team's list, read often)."""
    query, params, limit = _page_query(_JSON_SELECT, filters)
    with _reading(conn), conn.cursor() as cur:
        rows = cur.execute(query, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertJsonPage(
        tuple(r[2] for r in rows), _encode_cursor(rows[-1][0], rows[-1][1]) if more else None
    )


# The alert's state as `alert_json` gives it, built by the database (the same values: the
# tests hold them equal); timestamps in the session's time zone, as the store reads them.
_ALERT_JSON: LiteralString = (
    "json_build_object('id', a.alert_id, 'key', a.key, 'vehicle_id', a.vehicle_id,"
    " 'rule_id', a.rule_id, 'subkey', a.subkey, 'status', a.status, 'severity', a.severity,"
    " 'category', a.category, 'title', a.title, 'auto_resolve', a.auto_resolve,"
    " 'details', a.details, 'raised_at', a.raised_at, 'created_at', a.created_at,"
    " 'updated_at', a.updated_at, 'sequence', a.sequence,"
    " 'acknowledged_at', a.acknowledged_at, 'acknowledged_by', a.acknowledged_by,"
    " 'assigned_to', a.assigned_to, 'dispatched_at', a.dispatched_at, 'dispatch', a.dispatch,"
    " 'cleared_at', a.cleared_at, 'renotified_at', a.renotified_at,"
    " 'escalated_at', a.escalated_at, 'resolved_at', a.resolved_at,"
    " 'resolved_by', a.resolved_by, 'resolution', a.resolution)::text"
)
_ALERT_SELECT: LiteralString = "SELECT " + _A_COLUMNS
_JSON_SELECT: LiteralString = "SELECT a.raised_at, a.alert_id, " + _ALERT_JSON


def _page_query(
    select: LiteralString, filters: ListFilters
) -> tuple[LiteralString, dict[str, Any], int]:
    """The statement, parameters and page size of one page of the alert list.

    One value of ``status`` or ``severity`` is compared with ``=``, not ``= ANY(...)``: then
    an index on (severity, raised_at) gives the rows in order (PostgreSQL 15 does not read an
    index in order for ``= ANY``).
    """
    limit = filters.get("limit", 50)
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be 1..1000, not {limit}")
    where: list[LiteralString] = []
    params: dict[str, Any] = {"limit": limit + 1}
    for name, value in (("status", filters.get("status")), ("severity", filters.get("severity"))):
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        if len(values) == 1:
            params[name] = values[0]
            where.append(_EQUALS[name])
        else:
            params[name] = values
            where.append(_ANY[name])
    simple: tuple[tuple[LiteralString, str, object], ...] = (
        ("a.rule_id = %(rule_id)s", "rule_id", filters.get("rule_id")),
        ("a.vehicle_id = %(vehicle_id)s", "vehicle_id", filters.get("vehicle_id")),
        ("v.region = %(region)s", "region", filters.get("region")),
        ("a.raised_at >= %(since)s", "since", filters.get("since")),
        ("a.raised_at < %(until)s", "until", filters.get("until")),
    )
    for clause, name, given in simple:
        if given is not None:
            where.append(clause)
            params[name] = given
    cursor = filters.get("cursor")
    if cursor is not None:
        params["c_time"], params["c_id"] = _decode_cursor(cursor)
        where.append("(a.raised_at, a.alert_id) < (%(c_time)s, %(c_id)s)")
    # The vehicle only for its region: every alert has one (a foreign key, not null).
    query = select + " FROM alert a"
    if filters.get("region") is not None:
        query += " JOIN vehicle v USING (vehicle_id)"
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %(limit)s"
    return query, params, limit


_EQUALS: dict[str, LiteralString] = {
    "status": "a.status = %(status)s",
    "severity": "a.severity = %(severity)s",
}
_ANY: dict[str, LiteralString] = {
    "status": "a.status = ANY(%(status)s)",
    "severity": "a.severity = ANY(%(severity)s)",
}


def alert_history(conn: Connection, alert_id: int) -> list[AuditEntry]:
    """The alert's audit entries, oldest first; `AlertNotFound` for an unknown id."""
    with conn.transaction():
        if (
            _fetch_one(conn, "SELECT 1 FROM alert WHERE alert_id = %(id)s", {"id": alert_id})
            is None
        ):
            raise AlertNotFound(alert_id)
        rows = _fetch_all(
            conn,
            "SELECT audit_id, alert_id, sequence, at, actor, action, from_status, to_status,"
            " note, details FROM alert_audit WHERE alert_id = %(id)s ORDER BY audit_id",
            {"id": alert_id},
        )
    return [AuditEntry(**{**r, "details": MappingProxyType(dict(r["details"]))}) for r in rows]


def feed_since(conn: Connection, last_id: int = 0, limit: int = 100) -> list[FeedEntry]:
    """Feed entries with an id above ``last_id`` (a live stream's Last-Event-ID), in order."""
    with _reading(conn):
        rows = _fetch_all(
            conn,
            "SELECT feed_id, at, alert_id, sequence, kind, alert FROM alert_feed"
            " WHERE feed_id > %(last)s ORDER BY feed_id LIMIT %(limit)s",
            {"last": last_id, "limit": limit},
        )
    return [FeedEntry(**{**r, "alert": MappingProxyType(dict(r["alert"]))}) for r in rows]


# Helpers --------------------------------------------------------------------------------------


def _reading(conn: Connection) -> AbstractContextManager[object]:
    """The transaction of one read statement: on an autocommit connection the statement is its
    own (no BEGIN and COMMIT round trips: more than half of an API list request's time waiting
    on the database); on another connection an explicit one, so that none is left open."""
    return nullcontext() if conn.autocommit else conn.transaction()


@contextmanager
def _writing(conn: Connection) -> Iterator[None]:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_FEED_LOCK,))
        yield


def _record(
    conn: Connection,
    alert: Alert,
    actor: str,
    action: str,
    from_status: Status | None,
    note: str | None,
    details: Mapping[str, Any],
) -> int:
    """Audit entry, feed entry, NOTIFY and deliveries of one change; returns the feed id."""
    conn.execute(
        "INSERT INTO alert_audit (alert_id, sequence, actor, action, from_status, to_status,"
        " note, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            alert.alert_id,
            alert.sequence,
            actor,
            action,
            from_status,
            alert.status,
            note,
            Jsonb(dict(details)),
        ),
    )
    state = alert_json(alert)
    row = _fetch_one(
        conn,
        "INSERT INTO alert_feed (alert_id, sequence, kind, alert) VALUES (%s, %s, %s, %s)"
        " RETURNING feed_id, at",
        (alert.alert_id, alert.sequence, action, Jsonb(state)),
    )
    assert row is not None
    feed = FeedEntry(row["feed_id"], row["at"], alert.alert_id, alert.sequence, action, state)
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(feed.feed_id)))
    enqueue(conn, feed, severity=alert.severity, category=alert.category)
    return feed.feed_id


def _fetch_one(conn: Connection, query: _Query, params: Any = None) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def _fetch_all(conn: Connection, query: _Query, params: Any = None) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _alert(row: Row) -> Alert:
    values = {c: row[c] for c in _COLUMNS}
    values["details"] = MappingProxyType(dict(values["details"]))
    if values["dispatch"] is not None:
        values["dispatch"] = MappingProxyType(dict(values["dispatch"]))
    return Alert(**values)


def _encode_cursor(raised_at: datetime, alert_id: int) -> str:
    raw = json.dumps([raised_at.isoformat(), alert_id]).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, alert_id = json.loads(raw)
        time = datetime.fromisoformat(time_text)
        if time.tzinfo is None or type(alert_id) is not int:
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor(cursor) from exc
    return time, alert_id
