"""Alerts as values and their lifecycle (pure: no database here).

::

    open ──acknowledge──> acknowledged ──dispatch──> dispatched ──resolve──> resolved
     │ └────────────dispatch──────────────────────────^                        ^
     └──────────────────────────────resolve (any unresolved status)────────────┘

`next_status` says what a person's action does to a status, or raises `InvalidTransition`
naming both ends. `alert_json` is the alert's state as the change feed and the webhooks carry
it. The database adapter is `rules.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .changes import AlertChange, Category, Severity
from .errors import InvalidTransition

__all__ = [
    "ACTIONS",
    "SEVERITIES",
    "Action",
    "Alert",
    "AlertJsonPage",
    "AlertPage",
    "AppliedChange",
    "AuditEntry",
    "FeedEntry",
    "Outcome",
    "Status",
    "alert_json",
    "is_urgent",
    "next_status",
]

Status = Literal["open", "acknowledged", "dispatched", "resolved"]
Action = Literal["acknowledge", "assign", "note", "dispatch", "resolve"]
Outcome = Literal["raised", "duplicate", "resolved", "cleared", "renotified", "no_alert"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

# The statuses each person's action is allowed from, and the status it leads to (None: the
# status does not change).
ACTIONS: Mapping[Action, tuple[frozenset[Status], Status | None]] = {
    "acknowledge": (frozenset({"open"}), "acknowledged"),
    "assign": (frozenset({"open", "acknowledged", "dispatched"}), None),
    "note": (frozenset({"open", "acknowledged", "dispatched", "resolved"}), None),
    "dispatch": (frozenset({"open", "acknowledged"}), "dispatched"),
    "resolve": (frozenset({"open", "acknowledged", "dispatched"}), "resolved"),
}


def next_status(alert_id: int, action: Action, current: Status) -> Status:
    """The status after ``action``; `InvalidTransition` when ``current`` does not allow it."""
    allowed, target = ACTIONS[action]
    to_status = current if target is None else target
    if current not in allowed:
        raise InvalidTransition(alert_id, action, current, to_status)
    return to_status


def is_urgent(severity: str, category: str) -> bool:
    """Critical and rescue alerts: delivered at once, never held by quiet hours."""
    return severity == "critical" or category == "rescue"


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored (`rules.store.get_alert`); ``sequence`` counts its changes."""

    alert_id: int
    key: str
    vehicle_id: str
    rule_id: str
    subkey: str | None
    status: Status
    severity: Severity
    category: Category
    title: str
    auto_resolve: bool
    details: Mapping[str, Any]
    raised_at: datetime
    created_at: datetime
    updated_at: datetime
    sequence: int
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assigned_to: str | None = None
    dispatched_at: datetime | None = None
    dispatch: Mapping[str, Any] | None = None
    cleared_at: datetime | None = None
    renotified_at: datetime | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of an alert's history: who (``actor``) did what (``action``) and when."""

    audit_id: int
    alert_id: int
    sequence: int
    at: datetime
    actor: str
    action: str
    from_status: Status | None
    to_status: Status
    note: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the change feed; ``feed_id`` orders the feed (an SSE event id)."""

    feed_id: int
    at: datetime
    alert_id: int
    sequence: int
    kind: str
    alert: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """What the store did with one engine change.

    ``raised``: a new alert; ``duplicate``: an alert with the key was already open (nothing
    recorded); ``resolved``: cleared and resolved automatically; ``cleared``: the condition
    cleared, the alert stays open for a person; ``renotified``: recorded and delivered again;
    ``no_alert``: a ``cleared`` change with no unresolved alert for its key (nothing recorded).
    """

    change: AlertChange
    outcome: Outcome
    alert_id: int | None
    feed_id: int | None


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of `rules.store.list_alerts`; ``next_cursor`` is None on the last page."""

    alerts: tuple[Alert, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AlertJsonPage:
    """One page of `rules.store.list_alerts_json`: each alert's `alert_json` as JSON text."""

    alerts: tuple[str, ...]
    next_cursor: str | None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def alert_json(alert: Alert) -> dict[str, Any]:
    """The alert's state as JSON values (the change feed's ``alert``, a webhook's ``alert``)."""
    return {
        "id": alert.alert_id,
        "key": alert.key,
        "vehicle_id": alert.vehicle_id,
        "rule_id": alert.rule_id,
        "subkey": alert.subkey,
        "status": alert.status,
        "severity": alert.severity,
        "category": alert.category,
        "title": alert.title,
        "auto_resolve": alert.auto_resolve,
        "details": dict(alert.details),
        "raised_at": _time(alert.raised_at),
        "created_at": _time(alert.created_at),
        "updated_at": _time(alert.updated_at),
        "sequence": alert.sequence,
        "acknowledged_at": _time(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "assigned_to": alert.assigned_to,
        "dispatched_at": _time(alert.dispatched_at),
        "dispatch": None if alert.dispatch is None else dict(alert.dispatch),
        "cleared_at": _time(alert.cleared_at),
        "renotified_at": _time(alert.renotified_at),
        "escalated_at": _time(alert.escalated_at),
        "resolved_at": _time(alert.resolved_at),
        "resolved_by": alert.resolved_by,
        "resolution": alert.resolution,
    }
