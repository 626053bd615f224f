"""The alert store against the private TimescaleDB: lifecycle, audit, feed, escalation, lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from rules.alerts import alert_json
from rules.errors import AlertNotFound, InvalidCursor, InvalidTransition
from rules.store import (
    acknowledge,
    add_note,
    alert_history,
    apply_changes,
    assign,
    dispatch,
    escalate_due,
    feed_since,
    get_alert,
    list_alerts,
    list_alerts_json,
    resolve,
)

from ._support import T0, Conn, change, prepare


@pytest.fixture
def conn(db_conn: Conn) -> Conn:
    return prepare(db_conn)


def _raise(conn: Conn, **kwargs: Any) -> int:
    (applied,) = apply_changes(conn, [change("raised", **kwargs)])
    assert applied.alert_id is not None
    return applied.alert_id


def _count(conn: Conn, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


# Engine changes -------------------------------------------------------------------------------


def test_raised_opens_an_alert_and_a_repeat_is_a_duplicate(conn: Conn) -> None:
    first, again = apply_changes(conn, [change(), change(time=T0 + timedelta(minutes=1))])
    assert (first.outcome, again.outcome) == ("raised", "duplicate")
    assert again.alert_id == first.alert_id and again.feed_id is None
    assert first.alert_id is not None
    alert = get_alert(conn, first.alert_id)
    assert (alert.status, alert.key, alert.raised_at, alert.sequence) == (
        "open",
        "veh-1/low_soc",
        T0,
        1,
    )
    assert dict(alert.details) == {"soc": 9.5}
    history = alert_history(conn, first.alert_id)
    assert [(h.actor, h.action, h.from_status, h.to_status) for h in history] == [
        ("rules", "raised", None, "open")
    ]
    assert _count(conn, "alert") == 1 and _count(conn, "alert_feed") == 1


def test_subkeys_and_vehicles_are_separate_alerts(conn: Conn) -> None:
    applied = apply_changes(
        conn,
        [
            change(rule="tyre", subkey="front_left"),
            change(rule="tyre", subkey="front_right"),
            change(rule="tyre", subkey="front_left", vehicle="veh-2"),
        ],
    )
    assert [a.outcome for a in applied] == ["raised"] * 3
    assert len({a.alert_id for a in applied}) == 3
    assert get_alert(conn, applied[0].alert_id or 0).key == "veh-1/tyre/front_left"


def test_the_database_allows_one_unresolved_alert_per_key(conn: Conn) -> None:
    _raise(conn)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO alert (key, vehicle_id, rule_id, severity, category, title,"
            " auto_resolve, raised_at) VALUES ('veh-1/low_soc', 'veh-1', 'low_soc', 'info',"
            " 'care', 't', true, now())"
        )


def test_cleared_resolves_automatically_and_a_new_raise_opens_a_new_alert(conn: Conn) -> None:
    first = _raise(conn)
    (cleared,) = apply_changes(conn, [change("cleared", time=T0 + timedelta(hours=1))])
    assert (cleared.outcome, cleared.alert_id) == ("resolved", first)
    alert = get_alert(conn, first)
    assert (alert.status, alert.resolved_by, alert.resolution) == (
        "resolved",
        "rules",
        "condition cleared",
    )
    assert alert.cleared_at == T0 + timedelta(hours=1) and alert.resolved_at is not None
    second = _raise(conn, time=T0 + timedelta(hours=2))
    assert second != first and get_alert(conn, second).status == "open"


def test_cleared_without_auto_resolve_waits_for_a_person(conn: Conn) -> None:
    alert_id = _raise(
        conn, rule="crash", severity="critical", category="rescue", auto_resolve=False
    )
    (cleared,) = apply_changes(
        conn, [change("cleared", rule="crash", severity="critical", auto_resolve=False)]
    )
    assert cleared.outcome == "cleared"
    assert get_alert(conn, alert_id).status == "open"
    last = alert_history(conn, alert_id)[-1]
    assert (last.action, last.note, last.from_status, last.to_status) == (
        "cleared",
        "condition cleared",
        "open",
        "open",
    )
    resolve(conn, alert_id, "driver unhurt, car towed", actor="ana")
    assert get_alert(conn, alert_id).status == "resolved"


def test_cleared_without_an_alert_records_nothing(conn: Conn) -> None:
    (applied,) = apply_changes(conn, [change("cleared")])
    assert (applied.outcome, applied.alert_id, applied.feed_id) == ("no_alert", None, None)
    assert _count(conn, "alert_audit") == 0


def test_renotified_records_and_reopens_after_a_manual_resolve(conn: Conn) -> None:
    alert_id = _raise(conn)
    (again,) = apply_changes(conn, [change("renotified", time=T0 + timedelta(hours=4))])
    assert (again.outcome, again.alert_id) == ("renotified", alert_id)
    alert = get_alert(conn, alert_id)
    assert alert.sequence == 2 and alert.renotified_at == T0 + timedelta(hours=4)
    resolve(conn, alert_id, "owner informed", actor="ana")
    (reopened,) = apply_changes(conn, [change("renotified", time=T0 + timedelta(hours=8))])
    assert reopened.outcome == "raised" and reopened.alert_id != alert_id


def test_a_failing_batch_leaves_nothing(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        apply_changes(conn, [change(), change(vehicle="unknown")])
    assert _count(conn, "alert") == 0 and _count(conn, "alert_feed") == 0


# People's actions -----------------------------------------------------------------------------


def test_every_lifecycle_action_is_in_the_history(conn: Conn) -> None:
    alert_id = _raise(conn)
    before = conn.execute("SELECT now()").fetchone()
    assert before is not None
    acknowledge(conn, alert_id, actor="ana", note="looking")
    assign(conn, alert_id, "ben", actor="ana")
    add_note(conn, alert_id, "called the owner", actor="ben")
    dispatch(conn, alert_id, {"service": "mobile charger", "eta_min": 40}, actor="ben")
    resolved = resolve(conn, alert_id, "charged on site", actor="ben")
    add_note(conn, alert_id, "owner thanked us", actor="ana")

    assert resolved.status == "resolved" and resolved.resolved_by == "ben"
    alert = get_alert(conn, alert_id)
    assert alert.acknowledged_by == "ana" and alert.assigned_to == "ben"
    assert alert.dispatch == {"service": "mobile charger", "eta_min": 40}
    assert alert.resolution == "charged on site" and alert.sequence == 7
    history = alert_history(conn, alert_id)
    assert [(h.sequence, h.actor, h.action, h.from_status, h.to_status) for h in history] == [
        (1, "rules", "raised", None, "open"),
        (2, "ana", "acknowledged", "open", "acknowledged"),
        (3, "ana", "assigned", "acknowledged", "acknowledged"),
        (4, "ben", "noted", "acknowledged", "acknowledged"),
        (5, "ben", "dispatched", "acknowledged", "dispatched"),
        (6, "ben", "resolved", "dispatched", "resolved"),
        (7, "ana", "noted", "resolved", "resolved"),
    ]
    assert [h.note for h in history][1:] == [
        "looking",
        None,
        "called the owner",
        None,
        "charged on site",
        "owner thanked us",
    ]
    assert history[2].details == {"assigned_to": "ben"}
    assert history[4].details == {"service": "mobile charger", "eta_min": 40}
    assert history[0].details == {"time": T0.isoformat(), "details": {"soc": 9.5}}
    times = [h.at for h in history]
    assert times == sorted(times) and times[1] >= before[0]
    assert times[-1] - times[1] < timedelta(minutes=1)


def test_dispatch_straight_from_open(conn: Conn) -> None:
    alert_id = _raise(conn)
    assert dispatch(conn, alert_id, {"tow": "ACME"}, actor="ana").status == "dispatched"


@pytest.mark.parametrize(
    ("setup", "action", "from_status", "to_status"),
    [
        (["acknowledge"], "acknowledge", "acknowledged", "acknowledged"),
        (["dispatch"], "acknowledge", "dispatched", "acknowledged"),
        (["resolve"], "acknowledge", "resolved", "acknowledged"),
        (["dispatch"], "dispatch", "dispatched", "dispatched"),
        (["resolve"], "dispatch", "resolved", "dispatched"),
        (["resolve"], "resolve", "resolved", "resolved"),
        (["resolve"], "assign", "resolved", "resolved"),
    ],
)
def test_refused_transitions_name_both_statuses(
    conn: Conn, setup: list[str], action: str, from_status: str, to_status: str
) -> None:
    alert_id = _raise(conn)
    for step in setup:
        _do(conn, step, alert_id)
    sequence = get_alert(conn, alert_id).sequence
    with pytest.raises(InvalidTransition) as caught:
        _do(conn, action, alert_id)
    error = caught.value
    assert (error.alert_id, error.action, error.from_status, error.to_status) == (
        alert_id,
        action,
        from_status,
        to_status,
    )
    assert f"{from_status} -> {to_status}" in str(error)
    assert get_alert(conn, alert_id).sequence == sequence  # nothing recorded


def _do(conn: Conn, action: str, alert_id: int) -> None:
    if action == "acknowledge":
        acknowledge(conn, alert_id, actor="ana")
    elif action == "dispatch":
        dispatch(conn, alert_id, {}, actor="ana")
    elif action == "resolve":
        resolve(conn, alert_id, "done", actor="ana")
    elif action == "assign":
        assign(conn, alert_id, "ben", actor="ana")


@pytest.mark.parametrize("action", ["acknowledge", "dispatch", "resolve", "assign", "get"])
def test_unknown_alerts_are_not_found(conn: Conn, action: str) -> None:
    with pytest.raises(AlertNotFound, match="no alert with id 999"):
        if action == "get":
            get_alert(conn, 999)
        else:
            _do(conn, action, 999)
    with pytest.raises(AlertNotFound):
        alert_history(conn, 999)
    with pytest.raises(AlertNotFound):
        add_note(conn, 999, "x", actor="ana")


# Change feed ----------------------------------------------------------------------------------


def test_feed_is_in_order_and_each_entry_is_notified(conn: Conn, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN alert_changes")
        alert_id = _raise(conn)
        acknowledge(conn, alert_id, actor="ana")
        apply_changes(conn, [change(vehicle="veh-2"), change("cleared")])
        notified = [int(n.payload) for n in listener.notifies(timeout=10, stop_after=4)]
    feed = feed_since(conn, 0)
    assert [f.feed_id for f in feed] == notified == sorted(notified)
    assert [(f.kind, f.alert["key"], f.alert["status"]) for f in feed] == [
        ("raised", "veh-1/low_soc", "open"),
        ("acknowledged", "veh-1/low_soc", "acknowledged"),
        ("raised", "veh-2/low_soc", "open"),
        ("resolved", "veh-1/low_soc", "resolved"),
    ]
    assert [f.sequence for f in feed] == [1, 2, 1, 3]
    assert feed_since(conn, feed[1].feed_id) == feed[2:]
    assert feed_since(conn, 0, limit=2) == feed[:2]
    assert feed_since(conn, feed[-1].feed_id) == []


def test_a_rolled_back_change_is_neither_in_the_feed_nor_notified(conn: Conn, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN alert_changes")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            apply_changes(conn, [change(), change(vehicle="unknown")])
        assert list(listener.notifies(timeout=0.5)) == []
    assert feed_since(conn) == []


# Escalation -----------------------------------------------------------------------------------


def test_escalation_happens_once_for_open_unacknowledged_alerts(conn: Conn) -> None:
    late = _raise(conn, rule="crash", severity="critical", category="rescue", auto_resolve=False)
    seen = _raise(conn, rule="crash", vehicle="veh-2", severity="critical", category="rescue")
    other = _raise(conn, rule="low_soc", vehicle="veh-3")
    acknowledge(conn, seen, actor="ana")
    created = get_alert(conn, late).created_at
    limits = {"crash": 300.0}

    assert escalate_due(conn, created + timedelta(seconds=299), limits) == []
    escalated = escalate_due(conn, created + timedelta(seconds=301), limits)
    assert [a.alert_id for a in escalated] == [late]
    assert escalated[0].escalated_at is not None and escalated[0].status == "open"
    assert escalate_due(conn, created + timedelta(hours=1), limits) == []
    assert get_alert(conn, other).escalated_at is None

    last = alert_history(conn, late)[-1]
    assert (last.actor, last.action, last.from_status, last.to_status) == (
        "rules",
        "escalated",
        "open",
        "open",
    )
    assert last.note == "not acknowledged within 300 s"
    assert [f.kind for f in feed_since(conn) if f.alert_id == late] == ["raised", "escalated"]


# Listing --------------------------------------------------------------------------------------


def _fleet(conn: Conn) -> dict[str, int]:
    """Six alerts an hour apart, newest last, in several statuses, severities and regions."""
    specs: list[tuple[str, str, str, Any]] = [
        ("a", "veh-1", "low_soc", "warning"),
        ("b", "veh-2", "low_soc", "warning"),
        ("c", "veh-3", "low_soc", "info"),
        ("d", "veh-1", "crash", "critical"),
        ("e", "veh-2", "tyre", "warning"),
        ("f", "veh-3", "tyre", "critical"),
    ]
    ids = {}
    for hour, (name, vehicle, rule, severity) in enumerate(specs):
        ids[name] = _raise(
            conn, vehicle=vehicle, rule=rule, severity=severity, time=T0 + timedelta(hours=hour)
        )
    acknowledge(conn, ids["b"], actor="ana")
    resolve(conn, ids["c"], "fine", actor="ana")
    return ids


def _names(ids: dict[str, int], alerts: Any) -> list[str]:
    names = {v: k for k, v in ids.items()}
    return [names[a.alert_id] for a in alerts]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "fedcba"),
        ({"status": "open"}, "feda"),
        ({"status": ["acknowledged", "resolved"]}, "cb"),
        ({"severity": "critical"}, "fd"),
        ({"rule_id": "low_soc"}, "cba"),
        ({"vehicle_id": "veh-2"}, "eb"),
        ({"region": "north"}, "edba"),
        ({"since": T0 + timedelta(hours=2)}, "fedc"),
        ({"until": T0 + timedelta(hours=2)}, "ba"),
        ({"region": "south", "severity": ["critical"], "status": "open"}, "f"),
    ],
)
def test_list_filters(conn: Conn, filters: dict[str, Any], expected: str) -> None:
    ids = _fleet(conn)
    page = list_alerts(conn, **filters)
    assert "".join(_names(ids, page.alerts)) == expected and page.next_cursor is None
    as_json = list_alerts_json(conn, **filters)
    assert [json.loads(a)["id"] for a in as_json.alerts] == [a.alert_id for a in page.alerts]
    assert as_json.next_cursor is None


def _timed(state: dict[str, Any]) -> dict[str, Any]:
    """An alert's JSON state with its times as datetimes (the text of one instant varies)."""
    return {
        k: datetime.fromisoformat(v) if k.endswith("_at") and v is not None else v
        for k, v in state.items()
    }


def test_the_json_list_is_alert_json_built_by_the_database(conn: Conn) -> None:
    ids = _fleet(conn)
    assign(conn, ids["a"], "ben", actor="ana")
    dispatch(conn, ids["d"], {"tow": "ACME", "eta_min": 25, "crew": ["x", "y"]}, actor="ben")
    assert escalate_due(conn, datetime.now(UTC) + timedelta(days=1), {"tyre": 60.0})
    apply_changes(conn, [change("cleared", vehicle="veh-1", rule="low_soc")])
    page = list_alerts(conn, limit=3)
    every = list_alerts(conn).alerts
    assert any(a.dispatch for a in every) and any(a.escalated_at for a in every)
    assert any(a.resolved_at for a in every) and any(a.assigned_to for a in every)
    for cursor in (None, page.next_cursor):
        ours = list_alerts(conn, limit=3, cursor=cursor)
        theirs = list_alerts_json(conn, limit=3, cursor=cursor)
        assert [_timed(json.loads(a)) for a in theirs.alerts] == [
            _timed(alert_json(a)) for a in ours.alerts
        ]
        assert [list(json.loads(a)) for a in theirs.alerts] == [
            list(alert_json(a)) for a in ours.alerts
        ]
        assert theirs.next_cursor == ours.next_cursor


def test_list_pages_with_a_cursor_that_survives_new_alerts(conn: Conn) -> None:
    ids = _fleet(conn)
    first = list_alerts(conn, limit=4)
    assert "".join(_names(ids, first.alerts)) == "fedc" and first.next_cursor is not None
    ids["g"] = _raise(conn, vehicle="veh-1", rule="new", time=T0 + timedelta(days=1))
    second = list_alerts(conn, limit=4, cursor=first.next_cursor)
    assert "".join(_names(ids, second.alerts)) == "ba" and second.next_cursor is None
    pages, cursor = [], None
    while True:
        page = list_alerts(conn, limit=2, cursor=cursor, status="open")
        pages.append("".join(_names(ids, page.alerts)))
        if (cursor := page.next_cursor) is None:
            break
    assert pages == ["gf", "ed", "a"]


def test_equal_times_page_by_id(conn: Conn) -> None:
    same = [_raise(conn, vehicle=v, rule="r") for v in ("veh-1", "veh-2", "veh-3")]
    first = list_alerts(conn, limit=2)
    second = list_alerts(conn, limit=2, cursor=first.next_cursor)
    assert [a.alert_id for a in first.alerts + second.alerts] == sorted(same, reverse=True)


@pytest.mark.parametrize("cursor", ["", "nonsense", "W10", "WyIyMDI2LTAzLTAxIiwgMV0"])
def test_bad_cursors_are_refused(conn: Conn, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        list_alerts(conn, cursor=cursor)


def test_limit_is_bounded(conn: Conn) -> None:
    with pytest.raises(ValueError, match="limit"):
        list_alerts(conn, limit=0)


def test_times_are_aware(conn: Conn) -> None:
    alert = get_alert(conn, _raise(conn))
    assert alert.created_at.tzinfo is not None
    assert abs(alert.created_at - datetime.now(UTC)) < timedelta(minutes=5)
