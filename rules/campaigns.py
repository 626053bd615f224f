"""Care campaigns: reach a segment of the fleet, and track the outreach to each vehicle.

::

    segment = Segment(regions=("north",), tags_all=("lease",), propulsion=("BEV",))
    campaign = create_campaign(conn, "winter-tyres", "Winter tyre check", segment, actor="ana")
    record_outreach(conn, campaign.campaign_id, "veh-1", "contacted", actor="ben", note="email")
    progress(conn, campaign.campaign_id)      # {"pending": 41, "contacted": 1, ...}
    refresh(conn, campaign.campaign_id)       # add vehicles registered since that match

A segment matches registry fields (docs/ingest.md: region, model, propulsion, delivery date)
and tags; every given criterion must hold, each listing one or more accepted values. An
outreach moves ``pending -> contacted -> responded | declined -> completed`` (a step may be
skipped, never undone; ``completed`` is final), every move recorded with who, when and a note.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeAlias, get_args

import psycopg
from psycopg.types.json import Jsonb

from .errors import CampaignNotFound, InvalidCampaign

__all__ = [
    "Campaign",
    "Outreach",
    "OutreachStatus",
    "Segment",
    "close_campaign",
    "create_campaign",
    "get_campaign",
    "list_outreach",
    "progress",
    "record_outreach",
    "refresh",
]

log = logging.getLogger(__name__)

Connection: TypeAlias = "psycopg.Connection[Any]"
OutreachStatus = Literal["pending", "contacted", "responded", "declined", "completed"]
_ORDER: dict[str, int] = {
    "pending": 0,
    "contacted": 1,
    "responded": 2,
    "declined": 2,
    "completed": 3,
}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True, slots=True)
class Segment:
    """Which vehicles: every non-empty criterion must hold (values within one are alternatives)."""

    regions: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    propulsion: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()  # the vehicle has every one of these tags
    tags_any: tuple[str, ...] = ()  # the vehicle has at least one of these
    delivered_from: date | None = None
    delivered_until: date | None = None

    def __post_init__(self) -> None:
        for name in ("regions", "models", "propulsion", "tags_all", "tags_any"):
            values = getattr(self, name)
            if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
                raise InvalidCampaign(f"segment {name}: a list of non-empty texts, not {values!r}")
            object.__setattr__(self, name, tuple(values))
        if (
            self.delivered_from is not None
            and self.delivered_until is not None
            and self.delivered_from > self.delivered_until
        ):
            raise InvalidCampaign("segment: delivered_from is after delivered_until")
        if not any(getattr(self, name) for name in self.__dataclass_fields__):
            raise InvalidCampaign(
                "segment: give at least one criterion (a whole fleet is a choice too: tags_any)"
            )

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition on ``vehicle v`` and its parameters."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        for name, column in (
            ("regions", "region"),
            ("models", "model"),
            ("propulsion", "propulsion"),
        ):
            values = getattr(self, name)
            if values:
                parts.append(f"v.{column} = ANY(%({name})s)")
                params[name] = list(values)
        if self.tags_all:
            parts.append("v.tags @> %(tags_all)s::text[]")
            params["tags_all"] = list(self.tags_all)
        if self.tags_any:
            parts.append("v.tags && %(tags_any)s::text[]")
            params["tags_any"] = list(self.tags_any)
        if self.delivered_from is not None:
            parts.append("v.delivery_date >= %(delivered_from)s")
            params["delivered_from"] = self.delivered_from
        if self.delivered_until is not None:
            parts.append("v.delivery_date <= %(delivered_until)s")
            params["delivered_until"] = self.delivered_until
        return " AND ".join(parts), params

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("delivered_from", "delivered_until"):
            data[key] = None if data[key] is None else data[key].isoformat()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidCampaign(f"segment: unknown criteria {', '.join(unknown)}")
        fields: dict[str, Any] = {}
        for key, value in data.items():
            if key.startswith("delivered_"):
                try:
                    fields[key] = None if value is None else date.fromisoformat(str(value))
                except ValueError:
                    raise InvalidCampaign(f"segment {key}: {value!r} is not a date") from None
            elif isinstance(value, list):
                fields[key] = tuple(value)
            else:
                raise InvalidCampaign(f"segment {key}: a list of texts, not {value!r}")
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: int
    name: str
    title: str
    message: str | None
    segment: Segment
    status: Literal["active", "closed"]
    created_by: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outreach:
    campaign_id: int
    vehicle_id: str
    status: OutreachStatus
    updated_at: datetime
    updated_by: str | None
    note: str | None


_CAMPAIGN = (
    "SELECT campaign_id, name, title, message, segment, status, created_by, created_at,"
    " closed_at FROM campaign"
)


def _campaign(row: Sequence[Any]) -> Campaign:
    cid, name, title, message, segment, status, by, at, closed = row
    return Campaign(
        int(cid), name, title, message, Segment.from_json(segment), status, by, at, closed
    )


def create_campaign(
    conn: Connection,
    name: str,
    title: str,
    segment: Segment,
    *,
    actor: str,
    message: str | None = None,
) -> Campaign:
    """Create a campaign and a pending outreach for every vehicle of its segment, at once."""
    if not _NAME.fullmatch(name):
        raise InvalidCampaign(f"campaign name {name!r}: 1-63 of a-z 0-9 _ - (starting a-z or 0-9)")
    if not title.strip() or not actor.strip():
        raise InvalidCampaign("a campaign needs a title and an actor")
    with conn.transaction():
        try:
            row = conn.execute(
                "INSERT INTO campaign (name, title, message, segment, created_by)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING campaign_id",
                (name, title.strip(), message, Jsonb(segment.to_json()), actor),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise InvalidCampaign(f"a campaign named {name!r} exists") from None
        assert row is not None
        _add_vehicles(conn, int(row[0]), segment, actor)
    return get_campaign(conn, int(row[0]))


def _add_vehicles(conn: Connection, campaign_id: int, segment: Segment, actor: str) -> int:
    where, params = segment.where()
    params |= {"campaign": campaign_id, "actor": actor}
    cur = conn.execute(
        "WITH added AS ("
        " INSERT INTO campaign_outreach (campaign_id, vehicle_id, updated_by)"
        f" SELECT %(campaign)s, v.vehicle_id, %(actor)s FROM vehicle v WHERE {where}"
        " ON CONFLICT DO NOTHING RETURNING vehicle_id)"
        " INSERT INTO campaign_outreach_audit (campaign_id, vehicle_id, actor, to_status, note)"
        " SELECT %(campaign)s, vehicle_id, %(actor)s, 'pending', 'in the segment' FROM added",
        params,
    )
    return cur.rowcount


def refresh(conn: Connection, campaign_id: int, *, actor: str = "rules") -> int:
    """Add vehicles registered since that now match the segment; how many were added."""
    campaign = get_campaign(conn, campaign_id)
    if campaign.status == "closed":
        raise InvalidCampaign(f"campaign {campaign.name!r} is closed")
    with conn.transaction():
        return _add_vehicles(conn, campaign_id, campaign.segment, actor)


def get_campaign(conn: Connection, campaign: int | str) -> Campaign:
    column = "campaign_id" if isinstance(campaign, int) else "name"
    row = conn.execute(f"{_CAMPAIGN} WHERE {column} = %s", (campaign,)).fetchone()
    if row is None:
        raise CampaignNotFound(campaign)
    return _campaign(row)


def close_campaign(conn: Connection, campaign_id: int, *, actor: str) -> Campaign:
    with conn.transaction():
        row = conn.execute(
            "UPDATE campaign SET status = 'closed', closed_at = now()"
            " WHERE campaign_id = %s AND status = 'active' RETURNING campaign_id",
            (campaign_id,),
        ).fetchone()
    if row is None:
        get_campaign(conn, campaign_id)  # CampaignNotFound if there is none
        raise InvalidCampaign(f"campaign {campaign_id} is already closed")
    log.info("campaign %d closed by %s", campaign_id, actor)
    return get_campaign(conn, campaign_id)


def record_outreach(
    conn: Connection,
    campaign_id: int,
    vehicle_id: str,
    status: OutreachStatus,
    *,
    actor: str,
    note: str | None = None,
) -> Outreach:
    """Move a vehicle's outreach forward (never back); `InvalidCampaign` names from and to."""
    if status not in get_args(OutreachStatus):
        raise InvalidCampaign(
            f"outreach status {status!r}: one of {', '.join(get_args(OutreachStatus))}"
        )
    with conn.transaction():
        row = conn.execute(
            "SELECT o.status, c.status FROM campaign_outreach o JOIN campaign c USING (campaign_id)"
            " WHERE o.campaign_id = %s AND o.vehicle_id = %s FOR UPDATE OF o",
            (campaign_id, vehicle_id),
        ).fetchone()
        if row is None:
            get_campaign(conn, campaign_id)
            raise InvalidCampaign(f"vehicle {vehicle_id!r} is not in campaign {campaign_id}")
        current, campaign_status = row
        if campaign_status == "closed":
            raise InvalidCampaign(f"campaign {campaign_id} is closed")
        if current == "completed" or (_ORDER[status] <= _ORDER[current] and status != current):
            raise InvalidCampaign(
                f"outreach of {vehicle_id!r} cannot go from {current} to {status}"
            )
        conn.execute(
            "UPDATE campaign_outreach SET status = %s, updated_at = now(), updated_by = %s,"
            " note = coalesce(%s, note) WHERE campaign_id = %s AND vehicle_id = %s",
            (status, actor, note, campaign_id, vehicle_id),
        )
        conn.execute(
            "INSERT INTO campaign_outreach_audit (campaign_id, vehicle_id, actor, from_status,"
            " to_status, note) VALUES (%s, %s, %s, %s, %s, %s)",
            (campaign_id, vehicle_id, actor, current, status, note),
        )
    (outreach,) = list_outreach(conn, campaign_id, vehicle_id=vehicle_id)
    return outreach


def list_outreach(
    conn: Connection,
    campaign_id: int,
    *,
    status: OutreachStatus | None = None,
    vehicle_id: str | None = None,
) -> list[Outreach]:
    rows = conn.execute(
        "SELECT campaign_id, vehicle_id, status, updated_at, updated_by, note"
        " FROM campaign_outreach WHERE campaign_id = %s"
        " AND (%s::text IS NULL OR status = %s) AND (%s::text IS NULL OR vehicle_id = %s)"
        " ORDER BY vehicle_id",
        (campaign_id, status, status, vehicle_id, vehicle_id),
    ).fetchall()
    return [Outreach(int(c), v, s, at, by, note) for c, v, s, at, by, note in rows]


def progress(conn: Connection, campaign_id: int) -> dict[str, int]:
    """Vehicles per outreach status (every status, zero included)."""
    get_campaign(conn, campaign_id)
    counts = dict.fromkeys(get_args(OutreachStatus), 0)
    for status, n in conn.execute(
        "SELECT status, count(*) FROM campaign_outreach WHERE campaign_id = %s GROUP BY status",
        (campaign_id,),
    ).fetchall():
        counts[status] = int(n)
    return counts
