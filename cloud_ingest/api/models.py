"""The API's request and response bodies (pydantic, frozen): the OpenAPI schemas."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from .tokens import Role

Status = Literal["open", "acknowledged", "dispatched", "resolved"]
Severity = Literal["info", "warning", "critical"]
Category = Literal["rescue", "care", "service", "owner"]
OutreachStatus = Literal["pending", "contacted", "responded", "declined", "completed"]

_VIN = "WVWZZZ1JZXW000001"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelIn(Model):
    """A request body: a value of another JSON type than the schema's is refused (no `false`
    read as 0, no `"5"` read as 5, no number read as a time)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _text_like(pattern: str, what: str) -> BeforeValidator:
    """Only text of the schema's format (pydantic would also read a number as a time)."""
    shape = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, date | time):
            return value
        if not isinstance(value, str) or shape.match(value) is None:
            raise ValueError(f"expected {what}")
        return value

    return BeforeValidator(check)


# Times of requests (bodies and query parameters): RFC 3339 text only.
Timestamp = Annotated[
    AwareDatetime,
    Strict(False),
    _text_like(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}",
        "an RFC 3339 date-time with a time zone, e.g. 2026-03-01T12:00:00Z",
    ),
]
Day = Annotated[date, Strict(False), _text_like(r"\d{4}-\d{2}-\d{2}$", "a date, e.g. 2026-03-01")]
ClockTime = Annotated[
    time, Strict(False), _text_like(r"\d{2}:\d{2}", "a time of day, e.g. 22:00:00")
]


# Health -----------------------------------------------------------------------------------------


class Health(Model):
    status: Literal["ok", "degraded"]
    database: bool
    version: str


# Vehicles ---------------------------------------------------------------------------------------


class Vehicle(Model):
    vehicle_id: str = Field(examples=["veh-1"])
    vin: str | None = Field(default=None, examples=[_VIN])
    model: str | None = Field(default=None, examples=["e-Up"])
    propulsion: str | None = Field(default=None, examples=["BEV"])
    delivery_date: date | None = None
    owner_ref: str | None = None
    region: str | None = Field(default=None, examples=["north"])
    tags: list[str] = Field(default_factory=list, examples=[["lease"]])
    created_at: datetime | None = None


class VehicleIn(ModelIn):
    """A vehicle to register or update (admin)."""

    vin: str | None = Field(default=None, max_length=64, examples=[_VIN])
    model: str | None = Field(default=None, max_length=200, examples=["e-Up"])
    propulsion: str | None = Field(default=None, max_length=64, examples=["BEV"])
    delivery_date: Day | None = None
    owner_ref: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=200, examples=["north"])
    tags: list[str] = Field(default_factory=list, max_length=100, examples=[["lease"]])
    catalogues: list[Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]] = Field(
        default_factory=list, max_length=100, description="catalogue ids it may send (16 hex)"
    )


class VehiclePage(Model):
    vehicles: list[Vehicle]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


class SignalValue(Model):
    time: datetime
    value: float | None = Field(description="null for NaN")


class VehicleStatus(Model):
    state: Literal["online", "offline"]
    time: datetime
    document: dict[str, Any]


class ServiceRecord(Model):
    service_id: int
    vehicle_id: str
    time: datetime
    odometer_km: float | None
    note: str | None
    recorded_by: str
    recorded_at: datetime


class ServiceRecordIn(ModelIn):
    time: Timestamp = Field(description="when the service was done")
    odometer_km: float | None = Field(default=None, ge=0, le=10_000_000, examples=[30125.0])
    note: str | None = Field(default=None, max_length=2000, examples=["annual service"])


class VehicleDetail(Vehicle):
    status: VehicleStatus | None = None
    latest: dict[str, SignalValue] = Field(
        default_factory=dict, description="the newest value of each signal, by VSS path"
    )
    last_service: ServiceRecord | None = None
    open_alerts: int = 0


# Time series --------------------------------------------------------------------------------------


class Sample(Model):
    time: datetime
    value: float | None = Field(description="physical value (null for NaN)")
    raw: int


class Bucket(Model):
    bucket: datetime
    mean: float | None
    min: float | None
    max: float | None
    samples: int


class SignalSeries(Model):
    path: str = Field(examples=["Vehicle.Speed"])
    samples: list[Sample] | None = None
    buckets: list[Bucket] | None = None


class Series(Model):
    vehicle_id: str
    start: datetime
    end: datetime
    bucket_s: float | None
    signals: list[SignalSeries]


# Alerts -------------------------------------------------------------------------------------------


class Alert(Model):
    id: int
    key: str = Field(examples=["veh-1/low_soc"])
    vehicle_id: str
    rule_id: str = Field(examples=["low_soc"])
    subkey: str | None
    status: Status
    severity: Severity
    category: Category
    title: str
    auto_resolve: bool
    details: dict[str, Any]
    raised_at: datetime
    created_at: datetime
    updated_at: datetime
    sequence: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assigned_to: str | None
    dispatched_at: datetime | None
    dispatch: dict[str, Any] | None
    cleared_at: datetime | None
    renotified_at: datetime | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class AlertChange(Model):
    """One change of an alert: the `data` of an event of the stream (and of the feed)."""

    feed_id: int
    at: datetime
    alert_id: int
    sequence: int
    kind: str = Field(examples=["raised"])
    alert: Alert = Field(description="the alert's state after the change")


class AlertPage(Model):
    alerts: list[Alert]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


class Event(Model):
    time: datetime
    kind: str
    payload: dict[str, Any]


class AlertDetail(Model):
    alert: Alert
    vehicle: Vehicle
    rescue: dict[str, Any] | None = Field(
        None, description="for rescue alerts: the event that raised it and the last position"
    )
    window_from: datetime
    window_to: datetime
    context: list[SignalSeries] = Field(description="the signals' samples around the trigger")
    events: list[Event] = Field(description="the vehicle's events around the trigger")


class AuditEntry(Model):
    audit_id: int
    alert_id: int
    sequence: int
    at: datetime
    actor: str
    action: str
    from_status: Status | None
    to_status: Status
    note: str | None
    details: dict[str, Any]


class AcknowledgeIn(ModelIn):
    note: str | None = Field(default=None, max_length=2000, examples=["calling the driver"])


class AssignIn(ModelIn):
    assignee: str | None = Field(max_length=200, examples=["ben"], description="null: unassign")


class NoteIn(ModelIn):
    text: str = Field(min_length=1, max_length=10_000, examples=["driver is safe, waiting"])


class DispatchIn(ModelIn):
    details: dict[str, Any] = Field(examples=[{"tow": "ACME Towing", "eta_min": 25}])


class ResolveIn(ModelIn):
    reason: str = Field(min_length=1, max_length=2000, examples=["vehicle towed"])


# Rules --------------------------------------------------------------------------------------------


class RuleInfo(Model):
    id: str
    title: str
    category: Category
    severity: Severity
    trigger: str = Field(description="the event, or the condition")
    source: str = Field(description="file:line of its table")


class RuleList(Model):
    generation: int = Field(description="bumped by every reload request")
    rules: list[RuleInfo]
    problems: list[str] = Field(
        default_factory=list, description="problems of the stored files (none when they load)"
    )


class RuleText(ModelIn):
    text: str = Field(max_length=1_000_000, examples=['version = 1\n[[rule]]\nid = "x"\n'])


class RuleValidation(Model):
    valid: bool
    rules: list[RuleInfo]
    problems: list[str] = Field(description="each `file:line: rule 'id': field: reason`")


class RuleFile(Model):
    name: str
    text: str
    updated_by: str
    updated_at: datetime


class Reload(Model):
    generation: int
    rules: int


# Campaigns --------------------------------------------------------------------------------------


class SegmentIn(ModelIn):
    regions: list[str] = Field(default_factory=list, max_length=100, examples=[["north"]])
    models: list[str] = Field(default_factory=list, max_length=100)
    propulsion: list[str] = Field(default_factory=list, max_length=20, examples=[["BEV"]])
    tags_all: list[str] = Field(default_factory=list, max_length=100)
    tags_any: list[str] = Field(default_factory=list, max_length=100)
    delivered_from: Day | None = None
    delivered_until: Day | None = None


class CampaignIn(ModelIn):
    name: str = Field(pattern=_NAME, examples=["winter-tyres"])
    title: str = Field(min_length=1, max_length=200, examples=["Winter tyre check"])
    message: str | None = Field(default=None, max_length=10_000)
    segment: SegmentIn


class Campaign(Model):
    campaign_id: int
    name: str
    title: str
    message: str | None
    segment: dict[str, Any]
    status: Literal["active", "closed"]
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    progress: dict[OutreachStatus, int]


class Outreach(Model):
    campaign_id: int
    vehicle_id: str
    status: OutreachStatus
    updated_at: datetime
    updated_by: str | None
    note: str | None


class OutreachIn(ModelIn):
    status: OutreachStatus
    note: str | None = Field(default=None, max_length=2000, examples=["emailed the owner"])


# Webhooks -----------------------------------------------------------------------------------------


class WebhookIn(ModelIn):
    name: str = Field(min_length=1, max_length=200, examples=["care-desk"])
    url: str = Field(max_length=2000, examples=["https://desk.example/hooks/can2care"])
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="signing secret; one is made (and shown once) when absent",
    )
    min_severity: Severity = "info"
    categories: list[Category] | None = None
    rate_per_minute: int = Field(default=60, ge=1, le=10_000)
    quiet_start: ClockTime | None = None
    quiet_end: ClockTime | None = None
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])


class Webhook(Model):
    webhook_id: int
    name: str
    url: str
    active: bool
    min_severity: Severity
    categories: list[str] | None
    rate_per_minute: int
    quiet_start: time | None
    quiet_end: time | None
    timezone: str


class WebhookCreated(Webhook):
    secret: str | None = Field(description="the generated secret, shown only now")


class WebhookTest(Model):
    ok: bool
    status: int | None
    error: str | None
    idempotency_key: str


# Broker logins ----------------------------------------------------------------------------------


class BrokerLogin(Model):
    """Whether a vehicle has an MQTT broker login (never its password or hash)."""

    vehicle_id: str = Field(examples=["veh-1"])
    has_login: bool = Field(examples=[True])


class BrokerLoginCreated(Model):
    """A vehicle's new MQTT broker login: not an API token, and never valid as one."""

    vehicle_id: str = Field(examples=["veh-1"])
    username: str = Field(description="the MQTT user name: the vehicle id", examples=["veh-1"])
    password: str = Field(
        description="the MQTT password, shown only now",
        examples=["q3N9cY0m4XbT1sVvZ2kLr8GhWfJd6aEuPo5iRnBy7Cw"],
    )
    broker_reloaded: bool = Field(
        description="whether the broker was sent SIGHUP to load it; if false, the old password "
        "works until the broker reloads its files",
        examples=[True],
    )


# Tokens -----------------------------------------------------------------------------------------


class TokenIn(ModelIn):
    name: str = Field(min_length=1, max_length=200, examples=["ana"])
    role: Role


class Token(Model):
    token_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(Token):
    token: str = Field(description="the bearer token, shown only now")
