"""Campaigns through HTTP: create for a segment, progress, outreach, close."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ._support import Seeded, auth

WINTER = {
    "name": "winter-tyres",
    "title": "Winter tyre check",
    "segment": {"regions": ["north"], "tags_any": ["fleet-a"]},
}


def test_create_track_and_close(api: TestClient, seeded: Seeded) -> None:
    sup, agent = auth(seeded.tokens["supervisor"]), auth(seeded.tokens["agent"])
    assert api.post("/v1/campaigns", headers=agent, json=WINTER).status_code == 403
    r = api.post("/v1/campaigns", headers=sup, json=WINTER)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["progress"]["pending"] == 2 and campaign["created_by"] == "supervisor-1"
    cid = campaign["campaign_id"]
    outreach = api.get(f"/v1/campaigns/{cid}/outreach", headers=agent).json()
    assert [o["vehicle_id"] for o in outreach] == ["veh-1", "veh-2"]
    r = api.put(f"/v1/campaigns/{cid}/outreach/veh-1", headers=sup,
                json={"status": "contacted", "note": "emailed"})  # fmt: skip
    assert r.status_code == 200 and r.json()["note"] == "emailed"
    back = api.put(f"/v1/campaigns/{cid}/outreach/veh-1", headers=sup, json={"status": "pending"})
    assert back.status_code == 422 and "cannot go from contacted" in back.json()["detail"]
    outside = api.put(f"/v1/campaigns/{cid}/outreach/veh-3", headers=sup,
                      json={"status": "contacted"})  # fmt: skip
    assert outside.status_code == 422
    detail = api.get(f"/v1/campaigns/{cid}", headers=agent).json()
    assert detail["progress"] == {
        "pending": 1, "contacted": 1, "responded": 0, "declined": 0, "completed": 0,
    }  # fmt: skip
    contacted = api.get(f"/v1/campaigns/{cid}/outreach?status=contacted", headers=agent).json()
    assert [o["vehicle_id"] for o in contacted] == ["veh-1"]
    assert [c["name"] for c in api.get("/v1/campaigns", headers=agent).json()] == ["winter-tyres"]
    closed = api.post(f"/v1/campaigns/{cid}/close", headers=sup)
    assert closed.json()["status"] == "closed"
    assert api.post(f"/v1/campaigns/{cid}/close", headers=sup).status_code == 422
    assert api.get("/v1/campaigns?status=active", headers=agent).json() == []


def test_campaign_refusals(api: TestClient, seeded: Seeded) -> None:
    sup = auth(seeded.tokens["supervisor"])
    assert api.post("/v1/campaigns", headers=sup, json=WINTER).status_code == 201
    taken = api.post("/v1/campaigns", headers=sup, json=WINTER)
    assert taken.status_code == 422 and "exists" in taken.json()["detail"]
    for body, field in (
        ({**WINTER, "name": "Bad Name"}, "body.name"),
        ({**WINTER, "name": "x", "segment": {}}, "body"),
        ({**WINTER, "name": "y", "segment": {"colour": ["red"]}}, "body.segment.colour"),
        ({**WINTER, "name": "z", "segment": {"delivered_from": "soon"}},
         "body.segment.delivered_from"),
    ):  # fmt: skip
        r = api.post("/v1/campaigns", headers=sup, json=body)
        assert r.status_code == 422, body
        assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert api.get("/v1/campaigns/999", headers=sup).status_code == 404
    assert api.get("/v1/campaigns/999/outreach", headers=sup).status_code == 404
