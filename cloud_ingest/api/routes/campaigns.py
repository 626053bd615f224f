"""Campaigns: create one for a segment of the fleet, follow its progress, track outreach."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from rules import campaigns as store
from rules.campaigns import Segment

from .. import models, queries
from ..deps import Agent, Conn, Supervisor
from ..problems import problem_responses

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[1])]


def _out(conn: Conn, campaign: store.Campaign) -> models.Campaign:
    return models.Campaign(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        title=campaign.title,
        message=campaign.message,
        segment=campaign.segment.to_json(),
        status=campaign.status,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        closed_at=campaign.closed_at,
        progress=store.progress(conn, campaign.campaign_id),  # type: ignore[arg-type]
    )


def _outreach(o: store.Outreach) -> models.Outreach:
    return models.Outreach(
        campaign_id=o.campaign_id,
        vehicle_id=o.vehicle_id,
        status=o.status,
        updated_at=o.updated_at,
        updated_by=o.updated_by,
        note=o.note,
    )


@router.post(
    "",
    operation_id="createCampaign",
    response_model=models.Campaign,
    status_code=status.HTTP_201_CREATED,
    summary="Create a campaign for a segment (supervisor): a pending outreach per vehicle",
    responses=problem_responses(401, 403, 422),
)
def create_campaign(conn: Conn, caller: Supervisor, body: models.CampaignIn) -> models.Campaign:
    segment = Segment.from_json(body.segment.model_dump(mode="json", exclude_defaults=True))
    campaign = store.create_campaign(
        conn, body.name, body.title, segment, actor=caller.name, message=body.message
    )
    return _out(conn, campaign)


@router.get(
    "",
    operation_id="listCampaigns",
    response_model=list[models.Campaign],
    summary="Campaigns, newest first",
    responses=problem_responses(401, 422),
)
def list_campaigns(
    conn: Conn,
    _caller: Agent,
    status: Annotated[str | None, Query(pattern="^(active|closed)$")] = None,
) -> list[models.Campaign]:
    return [
        _out(conn, store.get_campaign(conn, cid)) for cid in queries.list_campaigns(conn, status)
    ]


@router.get(
    "/{campaign_id}",
    operation_id="getCampaign",
    response_model=models.Campaign,
    summary="A campaign with its progress",
    responses=problem_responses(401, 404, 422),
)
def get_campaign(conn: Conn, _caller: Agent, campaign_id: CampaignId) -> models.Campaign:
    return _out(conn, store.get_campaign(conn, campaign_id))


@router.post(
    "/{campaign_id}/close",
    operation_id="closeCampaign",
    response_model=models.Campaign,
    summary="Close a campaign (supervisor)",
    responses=problem_responses(401, 403, 404, 422),
)
def close_campaign(conn: Conn, caller: Supervisor, campaign_id: CampaignId) -> models.Campaign:
    return _out(conn, store.close_campaign(conn, campaign_id, actor=caller.name))


@router.get(
    "/{campaign_id}/outreach",
    operation_id="listOutreach",
    response_model=list[models.Outreach],
    summary="The outreach to each vehicle of the campaign",
    responses=problem_responses(401, 404, 422),
)
def list_outreach(
    conn: Conn,
    _caller: Agent,
    campaign_id: CampaignId,
    status: Annotated[models.OutreachStatus | None, Query()] = None,
) -> list[models.Outreach]:
    store.get_campaign(conn, campaign_id)
    return [_outreach(o) for o in store.list_outreach(conn, campaign_id, status=status)]


@router.put(
    "/{campaign_id}/outreach/{vehicle_id}",
    operation_id="recordOutreach",
    response_model=models.Outreach,
    summary="Move a vehicle's outreach forward (supervisor)",
    responses=problem_responses(401, 403, 404, 422),
)
def record_outreach(
    conn: Conn,
    caller: Supervisor,
    campaign_id: CampaignId,
    vehicle_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: models.OutreachIn,
) -> models.Outreach:
    return _outreach(
        store.record_outreach(
            conn, campaign_id, vehicle_id, body.status, actor=caller.name, note=body.note
        )
    )
