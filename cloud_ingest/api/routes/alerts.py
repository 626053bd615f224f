"""Alerts: list with filters and a cursor, detail with the data around the trigger, the
lifecycle actions, the audit history and the live stream of changes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from psycopg_pool import ConnectionPool

from rules import store
from rules.alerts import Alert

from .. import models, queries
from ..deps import Agent, Conn, StreamAgent, Supervisor, get_pool, get_settings
from ..errors import ApiError, InvalidRequest
from ..problems import problem_responses
from ..settings import Settings
from ..stream import Broadcaster, StreamFilter, Subscription, format_event

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[42])]
_ACTION_ERRORS = problem_responses(401, 403, 404, 409, 422)


_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))


def _values(alert: Alert) -> dict[str, Any]:
    """The stored alert's values under the API model's names, as they are (typed by the
    database): not through text and back, as `alert_json` would (twice the time of a page)."""
    values = {name: getattr(alert, name) for name in _ALERT_FIELDS}
    values["id"] = values.pop("alert_id")
    values["details"] = dict(alert.details)
    values["dispatch"] = None if alert.dispatch is None else dict(alert.dispatch)
    return values


def _out(alert: Alert) -> models.Alert:
    return models.Alert.model_validate(_values(alert))


class _Unavailable(ApiError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


# Each event of the stream (OpenAPI 3.1 describes an event stream's events with `schema`):
# `id` the feed id, `data` an `AlertChange` as JSON.
_EVENT = {
    "type": "object",
    "required": ["id", "data"],
    "properties": {
        "id": {"type": "string", "description": "the feed id: send it as Last-Event-ID"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                k: v
                for k, v in models.AlertChange.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ).items()
                if k != "$defs"  # Alert: in the document's components already
            },
        },
    },
}

# The stream first: its path must not be read as an alert id.


@router.get(
    "/stream",
    operation_id="streamAlerts",
    summary="Server-sent events of alert changes (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": _EVENT}},
            "description": "`id:` the feed id, `data:` the change (`AlertChange`) as JSON",
        },
        **problem_responses(401, 422, 503),
    },
)
async def stream_alerts(
    request: Request,
    _caller: StreamAgent,
    settings: Annotated[Settings, Depends(get_settings)],
    pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
    status: Annotated[list[models.Status], Query()] = [],  # noqa: B006
    severity: Annotated[list[models.Severity], Query()] = [],  # noqa: B006
    category: Annotated[list[models.Category], Query()] = [],  # noqa: B006
    rule_id: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    vehicle_id: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    last_event_id: Annotated[
        str | None, Header(max_length=20, description="resume after this feed id")
    ] = None,
) -> StreamingResponse:
    resume: int | None = None
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise InvalidRequest("Last-Event-ID must be a feed id", field="header.last-event-id")
        resume = int(last_event_id.strip())
    broadcaster: Broadcaster = request.app.state.broadcaster
    sub = broadcaster.subscribe()
    if sub is None:
        raise _Unavailable("too many open streams; retry later")
    wanted = StreamFilter(
        *(frozenset(v) for v in (status, severity, category, rule_id, vehicle_id))
    )
    events = _events(broadcaster, sub, pool, settings, wanted, resume, request)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    broadcaster: Broadcaster,
    sub: Subscription,
    pool: ConnectionPool[Any],
    settings: Settings,
    wanted: StreamFilter,
    resume: int | None,
    request: Request,
) -> AsyncIterator[str]:
    metrics = request.app.state.metrics
    try:
        yield "retry: 2000\n\n"
        last = sub.start if resume is None else resume
        while resume is not None:  # replay what the client missed, from the database
            entries = await anyio.to_thread.run_sync(_feed, pool, last)
            for old in entries:
                last = old["feed_id"]
                if wanted.accepts(old["alert"]):
                    metrics.stream_events.inc()
                    yield format_event(old)
            if len(entries) < 500:
                break
        while not sub.closed:
            try:
                entry = await asyncio.wait_for(_next(sub), settings.stream_keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if entry is None:
                break
            if entry["feed_id"] <= last:
                continue
            last = entry["feed_id"]
            if wanted.accepts(entry["alert"]):
                metrics.stream_events.inc()
                yield format_event(entry)
    finally:
        broadcaster.unsubscribe(sub)


async def _next(sub: Subscription) -> dict[str, Any] | None:
    return await sub.queue.get()


def _feed(pool: ConnectionPool[Any], last: int) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return [
            {
                "feed_id": e.feed_id,
                "at": e.at,
                "alert_id": e.alert_id,
                "sequence": e.sequence,
                "kind": e.kind,
                "alert": dict(e.alert),
            }
            for e in store.feed_since(conn, last, 500)
        ]


@router.get(
    "",
    operation_id="listAlerts",
    response_model=models.AlertPage,
    summary="Alerts newest first, filtered, one page at a time",
    responses=problem_responses(401, 422),
)
def list_alerts(
    conn: Conn,
    _caller: Agent,
    status: Annotated[list[models.Status], Query()] = [],  # noqa: B006
    severity: Annotated[list[models.Severity], Query()] = [],  # noqa: B006
    rule_id: Annotated[str | None, Query(max_length=200)] = None,
    vehicle_id: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[models.Timestamp | None, Query(description="raised at or after")] = None,
    until: Annotated[models.Timestamp | None, Query(description="raised before")] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    # The care desk's most frequent request: each alert's JSON comes from the database as
    # text (the same values as `models.Alert`, held equal by the tests), so a page costs no
    # Python object per alert.
    page = store.list_alerts_json(
        conn,
        status=status or None,
        severity=severity or None,
        rule_id=rule_id,
        vehicle_id=vehicle_id,
        region=region,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    alerts, cursor_json = ",".join(page.alerts), json.dumps(page.next_cursor)
    body = f'{{"alerts":[{alerts}],"next_cursor":{cursor_json}}}'
    return Response(body, media_type="application/json")


@router.get(
    "/{alert_id}",
    operation_id="getAlert",
    response_model=models.AlertDetail,
    summary="An alert with the rescue payload and the data around its trigger",
    responses=problem_responses(401, 404, 422),
)
def get_alert(
    conn: Conn,
    _caller: Agent,
    settings: Annotated[Settings, Depends(get_settings)],
    alert_id: AlertId,
) -> models.AlertDetail:
    alert = store.get_alert(conn, alert_id)
    start = alert.raised_at - timedelta(seconds=settings.context_before_s)
    end = alert.raised_at + timedelta(seconds=settings.context_after_s)
    values = alert.details.get("values")
    paths = list(values) if isinstance(values, dict) and values else settings.context_signals
    context = [
        models.SignalSeries(
            path=path,
            samples=[
                models.Sample(**r)
                for r in queries.signal_samples(conn, alert.vehicle_id, path, start, end, 2000)[
                    :2000
                ]
            ],
        )
        for path in paths
    ]
    vehicle = queries.get_vehicle(conn, alert.vehicle_id)
    return models.AlertDetail(
        alert=_out(alert),
        vehicle=models.Vehicle(**vehicle),
        rescue=_rescue(conn, alert) if alert.category == "rescue" else None,
        window_from=start,
        window_to=end,
        context=context,
        events=[
            models.Event(**e) for e in queries.events_between(conn, alert.vehicle_id, start, end)
        ],
    )


def _rescue(conn: Conn, alert: Alert) -> dict[str, Any]:
    """What a rescue service needs: the event, the vehicle's last position, its owner."""
    latest = queries.latest_state(conn, alert.vehicle_id)
    position = {
        name: latest[path]["value"]
        for name, path in (
            ("latitude", "Vehicle.CurrentLocation.Latitude"),
            ("longitude", "Vehicle.CurrentLocation.Longitude"),
        )
        if path in latest
    }
    if position:
        times = [latest[p]["time"] for p in latest if p.startswith("Vehicle.CurrentLocation.")]
        position["time"] = max(times).isoformat()
    return {
        "event": alert.details.get("event"),
        "event_time": _ms_time(alert.details.get("event_time_ms")),
        "raised_at": alert.raised_at.isoformat(),
        "position": position or None,
    }


def _ms_time(value: object) -> str | None:
    if not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value / 1000, UTC).isoformat()


@router.get(
    "/{alert_id}/history",
    operation_id="getAlertHistory",
    response_model=list[models.AuditEntry],
    summary="Who changed the alert, what and when",
    responses=problem_responses(401, 404, 422),
)
def get_history(conn: Conn, _caller: Agent, alert_id: AlertId) -> list[models.AuditEntry]:
    return [
        models.AuditEntry(
            audit_id=e.audit_id,
            alert_id=e.alert_id,
            sequence=e.sequence,
            at=e.at,
            actor=e.actor,
            action=e.action,
            from_status=e.from_status,
            to_status=e.to_status,
            note=e.note,
            details=dict(e.details),
        )
        for e in store.alert_history(conn, alert_id)
    ]


@router.post(
    "/{alert_id}/acknowledge",
    operation_id="acknowledgeAlert",
    response_model=models.Alert,
    summary="open -> acknowledged",
    responses=_ACTION_ERRORS,
)
def acknowledge(
    conn: Conn, caller: Agent, alert_id: AlertId, body: models.AcknowledgeIn | None = None
) -> models.Alert:
    note = None if body is None else body.note
    return _out(store.acknowledge(conn, alert_id, actor=caller.name, note=note))


@router.post(
    "/{alert_id}/assign",
    operation_id="assignAlert",
    response_model=models.Alert,
    summary="Assign an unresolved alert to a person (null: unassign)",
    responses=_ACTION_ERRORS,
)
def assign(conn: Conn, caller: Agent, alert_id: AlertId, body: models.AssignIn) -> models.Alert:
    return _out(store.assign(conn, alert_id, body.assignee, actor=caller.name))


@router.post(
    "/{alert_id}/notes",
    operation_id="addAlertNote",
    response_model=models.Alert,
    summary="Add a note to the alert's history",
    responses=_ACTION_ERRORS,
)
def add_note(conn: Conn, caller: Agent, alert_id: AlertId, body: models.NoteIn) -> models.Alert:
    return _out(store.add_note(conn, alert_id, body.text, actor=caller.name))


@router.post(
    "/{alert_id}/dispatch",
    operation_id="dispatchAlert",
    response_model=models.Alert,
    summary="Dispatch help (supervisor): open or acknowledged -> dispatched",
    responses=_ACTION_ERRORS,
)
def dispatch(
    conn: Conn, caller: Supervisor, alert_id: AlertId, body: models.DispatchIn
) -> models.Alert:
    return _out(store.dispatch(conn, alert_id, body.details, actor=caller.name))


@router.post(
    "/{alert_id}/resolve",
    operation_id="resolveAlert",
    response_model=models.Alert,
    summary="Resolve (supervisor), with the reason",
    responses=_ACTION_ERRORS,
)
def resolve(
    conn: Conn, caller: Supervisor, alert_id: AlertId, body: models.ResolveIn
) -> models.Alert:
    return _out(store.resolve(conn, alert_id, body.reason, actor=caller.name))
