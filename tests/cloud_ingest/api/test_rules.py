"""Rules through HTTP: list, validate with line numbers, store, delete, reload."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ._support import Seeded, auth

GOOD = """version = 1

[[rule]]
id = "fleet_low_soc"
title = "Battery low"
category = "care"
severity = "warning"
when = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current < 8"
"""
BAD = GOOD.replace('severity = "warning"', 'severity = "loud"')


def test_list_has_the_builtin_catalogue(api: TestClient, seeded: Seeded) -> None:
    body = api.get("/v1/rules", headers=auth(seeded.tokens["agent"])).json()
    assert body["generation"] == 0 and body["problems"] == []
    assert "crash" in {r["id"] for r in body["rules"]}


def test_validate_names_the_line(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    ok = api.post("/v1/rules/validate", headers=h, json={"text": GOOD}).json()
    assert ok["valid"] and [r["id"] for r in ok["rules"]] == ["fleet_low_soc"]
    assert ok["rules"][0]["source"] == "api:draft:3"
    bad = api.post("/v1/rules/validate?name=mine", headers=h, json={"text": BAD}).json()
    assert not bad["valid"]
    assert bad["problems"][0].startswith("api:mine:3: rule 'fleet_low_soc': severity")
    clash = GOOD.replace("fleet_low_soc", "crash")
    assert not api.post("/v1/rules/validate", headers=h, json={"text": clash}).json()["valid"]


def test_store_list_delete_and_reload(api: TestClient, seeded: Seeded, db_url: str) -> None:
    sup, agent = auth(seeded.tokens["supervisor"]), auth(seeded.tokens["agent"])
    refused = api.put("/v1/rules/files/fleet", headers=sup, json={"text": BAD})
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:can2care:problem:invalid-rules"
    assert refused.json()["errors"][0]["field"] == "body.text"
    assert "api:fleet:3" in refused.json()["errors"][0]["message"]
    assert api.put("/v1/rules/files/fleet", headers=agent, json={"text": GOOD}).status_code == 403
    stored = api.put("/v1/rules/files/fleet", headers=sup, json={"text": GOOD})
    assert stored.status_code == 200 and stored.json()["updated_by"] == "supervisor-1"
    assert [f["name"] for f in api.get("/v1/rules/files", headers=agent).json()] == ["fleet"]
    assert api.get("/v1/rules/files/fleet", headers=agent).json()["text"] == GOOD
    listed = api.get("/v1/rules", headers=agent).json()
    assert "fleet_low_soc" in {r["id"] for r in listed["rules"]}
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN can2care_rules")
        r = api.post("/v1/rules/reload", headers=sup)
        assert r.status_code == 200 and r.json()["generation"] == 1
        (note,) = list(listener.notifies(timeout=5, stop_after=1))
        assert note.payload == "1"
    assert api.get("/v1/rules", headers=agent).json()["generation"] == 1
    assert api.delete("/v1/rules/files/fleet", headers=sup).status_code == 204
    assert api.delete("/v1/rules/files/fleet", headers=sup).status_code == 404
    assert api.get("/v1/rules/files/fleet", headers=agent).status_code == 404
    assert api.put("/v1/rules/files/Bad!", headers=sup, json={"text": GOOD}).status_code == 422
