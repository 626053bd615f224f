"""Campaigns against the private TimescaleDB: segments, outreach tracking, refusals."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest

from cloud_ingest.storage import Vehicle, migrate, register_vehicles
from rules.campaigns import (
    Segment,
    close_campaign,
    create_campaign,
    get_campaign,
    list_outreach,
    progress,
    record_outreach,
    refresh,
)
from rules.errors import CampaignNotFound, InvalidCampaign

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def db(db_conn: Conn) -> Conn:
    migrate(db_conn)
    register_vehicles(db_conn, [
        Vehicle("n-ev-1", region="north", propulsion="BEV", tags=("lease", "fleet"),
                delivery_date=date(2026, 1, 10)),
        Vehicle("n-ev-2", region="north", propulsion="BEV", tags=("private",),
                delivery_date=date(2025, 6, 1)),
        Vehicle("n-ice", region="north", propulsion="ICE", tags=("lease",)),
        Vehicle("s-ev", region="south", propulsion="BEV", tags=("lease",)),
    ])  # fmt: skip
    return db_conn


def _vehicles(conn: Conn, campaign_id: int) -> list[str]:
    return [o.vehicle_id for o in list_outreach(conn, campaign_id)]


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        (Segment(regions=("north",)), ["n-ev-1", "n-ev-2", "n-ice"]),
        (Segment(regions=("north",), propulsion=("BEV",)), ["n-ev-1", "n-ev-2"]),
        (Segment(tags_all=("lease",)), ["n-ev-1", "n-ice", "s-ev"]),
        (Segment(tags_any=("private", "fleet")), ["n-ev-1", "n-ev-2"]),
        (Segment(tags_all=("lease", "fleet")), ["n-ev-1"]),
        (Segment(delivered_from=date(2026, 1, 1)), ["n-ev-1"]),
        (Segment(regions=("east",)), []),
    ],
)
def test_a_segment_selects_by_registry_fields_and_tags(
    db: Conn, segment: Segment, expected: list[str]
) -> None:
    campaign = create_campaign(db, "c1", "Check-up", segment, actor="ana")
    assert _vehicles(db, campaign.campaign_id) == expected
    assert get_campaign(db, "c1").segment == segment


def test_outreach_moves_forward_with_an_audit_and_progress(db: Conn) -> None:
    campaign = create_campaign(db, "winter", "Winter tyres", Segment(regions=("north",)),
                               actor="ana")  # fmt: skip
    cid = campaign.campaign_id
    record_outreach(db, cid, "n-ev-1", "contacted", actor="ben", note="email sent")
    done = record_outreach(db, cid, "n-ev-1", "completed", actor="ben")
    assert (done.status, done.updated_by, done.note) == ("completed", "ben", "email sent")
    record_outreach(db, cid, "n-ice", "declined", actor="ben", note="sold the car")
    assert progress(db, cid) == {
        "pending": 1, "contacted": 0, "responded": 0, "declined": 1, "completed": 1,
    }  # fmt: skip
    history = db.execute(
        "SELECT actor, from_status, to_status, note FROM campaign_outreach_audit"
        " WHERE vehicle_id = 'n-ev-1' ORDER BY audit_id"
    ).fetchall()
    assert history == [
        ("ana", None, "pending", "in the segment"),
        ("ben", "pending", "contacted", "email sent"),
        ("ben", "contacted", "completed", None),
    ]


def test_refusals_name_what_and_why(db: Conn) -> None:
    cid = create_campaign(db, "c", "C", Segment(regions=("north",)), actor="ana").campaign_id
    record_outreach(db, cid, "n-ev-1", "responded", actor="ben")
    with pytest.raises(InvalidCampaign, match="from responded to contacted"):
        record_outreach(db, cid, "n-ev-1", "contacted", actor="ben")
    with pytest.raises(InvalidCampaign, match="'s-ev' is not in campaign"):
        record_outreach(db, cid, "s-ev", "contacted", actor="ben")
    with pytest.raises(InvalidCampaign, match="exists"):
        create_campaign(db, "c", "C", Segment(regions=("north",)), actor="ana")
    with pytest.raises(InvalidCampaign, match="campaign name"):
        create_campaign(db, "Bad Name", "C", Segment(regions=("north",)), actor="ana")
    with pytest.raises(InvalidCampaign, match="at least one criterion"):
        Segment()
    with pytest.raises(CampaignNotFound):
        progress(db, 999)
    close_campaign(db, cid, actor="ana")
    with pytest.raises(InvalidCampaign, match="closed"):
        record_outreach(db, cid, "n-ev-2", "contacted", actor="ben")


def test_refresh_adds_vehicles_registered_since(db: Conn) -> None:
    cid = create_campaign(db, "c", "C", Segment(regions=("south",)), actor="ana").campaign_id
    register_vehicles(db, [Vehicle("s-new", region="south")])
    assert refresh(db, cid) == 1
    assert refresh(db, cid) == 0
    assert _vehicles(db, cid) == ["s-ev", "s-new"]


def test_a_segment_round_trips_as_json() -> None:
    segment = Segment(regions=("north",), tags_any=("a",), delivered_until=date(2026, 5, 1))
    assert Segment.from_json(segment.to_json()) == segment
    with pytest.raises(InvalidCampaign, match="unknown criteria colour"):
        Segment.from_json({"colour": ["red"]})
