"""The application: settings validated at start, metrics, problem documents, OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud_ingest.api import Settings, SettingsError, create_app

from ._support import Seeded, auth, client

DOCUMENT = Path(__file__).parents[3] / "docs" / "api.openapi.json"


def test_settings_precedence_and_validation() -> None:
    env = {"CAN2CARE_DATABASE_URL": "postgresql://env", "CAN2CARE_POOL_MAX": "7"}
    s = Settings.from_env(env)
    assert (s.database_url, s.pool_max, s.pool_min) == ("postgresql://env", 7, 2)
    assert Settings.from_env(env, database_url="postgresql://arg").database_url.endswith("arg")
    with pytest.raises(SettingsError, match="pool_max"):
        Settings.from_env({"CAN2CARE_DATABASE_URL": "x", "CAN2CARE_POOL_MAX": "many"})
    with pytest.raises(SettingsError, match="pool_min must not be above pool_max"):
        Settings.from_env({}, database_url="x", pool_min=9, pool_max=3)
    with pytest.raises(SettingsError, match="database_url"):
        Settings.from_env({})


def test_metrics_count_requests_by_route(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    api.get("/v1/alerts/1", headers=h)
    api.get("/v1/alerts/2", headers=h)
    r = api.get("/metrics", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert (
        'can2care_api_requests_total{method="GET",route="/v1/alerts/{alert_id}",status="200"} 2.0'
        in r.text
    )


def test_unknown_path_and_method_are_problems(api: TestClient, seeded: Seeded) -> None:
    r = api.get("/v1/nothing", headers=auth(seeded.tokens["agent"]))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = api.delete("/v1/alerts", headers=auth(seeded.tokens["agent"]))
    assert r.status_code == 405 and r.json()["type"] == "urn:can2care:problem:method-not-allowed"


def test_malformed_json_names_the_body(api: TestClient, seeded: Seeded) -> None:
    r = api.post("/v1/alerts/1/notes", headers={**auth(seeded.tokens["agent"]),
                 "Content-Type": "application/json"}, content=b"{nope")  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("body")


def test_operation_ids_are_unique_and_documented() -> None:
    document = create_app(Settings(database_url="postgresql://unused")).openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(op.get("tags") for item in document["paths"].values() for op in item.values())


def test_the_committed_openapi_document_is_current() -> None:
    """docs/api.openapi.json is the app's; `python -m cloud_ingest.api.openapi` writes it."""
    from cloud_ingest.api.openapi import document

    assert DOCUMENT.exists(), "run: python -m cloud_ingest.api.openapi"
    assert json.loads(DOCUMENT.read_text("utf-8")) == document(), (
        "docs/api.openapi.json is stale: run python -m cloud_ingest.api.openapi"
    )


def test_values_of_another_type_or_unstorable_are_422s(api: TestClient, seeded: Seeded) -> None:
    """What Schemathesis found: each was accepted, a 400 or a 500."""
    admin = auth(seeded.tokens["admin"])
    for method, path, body, field in (
        ("PUT", "/v1/vehicles/veh-9", {"model": "e-\u0000Up"}, "request"),
        ("PUT", "/v1/vehicles/veh-9", {"delivery_date": 0}, "body.delivery_date"),
        ("POST", "/v1/vehicles/veh-1/service-records",
         {"time": "2026-03-01T09:00:00Z", "odometer_km": False}, "body.odometer_km"),
        ("POST", "/v1/webhooks", {"name": "x", "url": "https://x", "rate_per_minute": "60"},
         "body.rate_per_minute"),
    ):  # fmt: skip
        r = api.request(method, path, headers=admin, json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], r.json()
    r = api.get("/v1/alerts?until=0.5", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.until"
    r = api.post("/v1/alerts/1/acknowledge", headers={**admin, "Content-Type": "application/json"},
                 content=b"\xff\xfe{")  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body", r.text


def test_more_requests_than_connections_do_not_wait_for_a_second_one(
    db_url: str, seeded: Seeded
) -> None:
    """A request checks its token on its own connection: with one connection in the pool, a
    request that asked for a second waited `pool_timeout_s` and was a 503."""
    with client(db_url, pool_max=1, pool_timeout_s=1.0) as c:
        for _ in range(3):
            assert c.get("/v1/alerts", headers=auth(seeded.tokens["agent"])).status_code == 200
