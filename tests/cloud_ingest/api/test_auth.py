"""Every endpoint, every role: 401 without a valid token, 403 below the endpoint's role, and
through to the handler at or above it. Ids that do not exist keep the calls free of effects."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cloud_ingest.api.tokens import ROLES, Role, allows

from ._support import T0, Seeded, auth

_RULES = 'version = 1\n[[rule]]\nid = "x"\n'
# operation id -> (method, path, JSON body, the least role allowed)
CALLS: dict[str, tuple[str, str, Any, Role]] = {
    "getMetrics": ("GET", "/metrics", None, "agent"),
    "listVehicles": ("GET", "/v1/vehicles", None, "agent"),
    "getVehicle": ("GET", "/v1/vehicles/nope", None, "agent"),
    "putVehicle": ("PUT", "/v1/vehicles/veh-1", {"catalogues": ["bad"]}, "admin"),
    "getVehicleSeries": ("GET", "/v1/vehicles/nope/series?signal=a&from=x&to=y", None, "agent"),
    "listServiceRecords": ("GET", "/v1/vehicles/nope/service-records", None, "agent"),
    "recordService": (
        "POST", "/v1/vehicles/nope/service-records", {"time": T0.isoformat()}, "supervisor",
    ),
    "rotateBrokerLogin": ("POST", "/v1/vehicles/nope/broker-login", None, "admin"),
    "getBrokerLogin": ("GET", "/v1/vehicles/nope/broker-login", None, "admin"),
    "deleteBrokerLogin": ("DELETE", "/v1/vehicles/nope/broker-login", None, "admin"),
    "streamAlerts": ("GET", "/v1/alerts/stream", None, "agent"),
    "listAlerts": ("GET", "/v1/alerts?limit=1", None, "agent"),
    "getAlert": ("GET", "/v1/alerts/999999", None, "agent"),
    "getAlertHistory": ("GET", "/v1/alerts/999999/history", None, "agent"),
    "acknowledgeAlert": ("POST", "/v1/alerts/999999/acknowledge", {}, "agent"),
    "assignAlert": ("POST", "/v1/alerts/999999/assign", {"assignee": "x"}, "agent"),
    "addAlertNote": ("POST", "/v1/alerts/999999/notes", {"text": "x"}, "agent"),
    "dispatchAlert": ("POST", "/v1/alerts/999999/dispatch", {"details": {}}, "supervisor"),
    "resolveAlert": ("POST", "/v1/alerts/999999/resolve", {"reason": "x"}, "supervisor"),
    "createCampaign": ("POST", "/v1/campaigns", {"name": "BAD"}, "supervisor"),
    "listCampaigns": ("GET", "/v1/campaigns", None, "agent"),
    "getCampaign": ("GET", "/v1/campaigns/999999", None, "agent"),
    "closeCampaign": ("POST", "/v1/campaigns/999999/close", None, "supervisor"),
    "listOutreach": ("GET", "/v1/campaigns/999999/outreach", None, "agent"),
    "recordOutreach": (
        "PUT", "/v1/campaigns/999999/outreach/veh-1", {"status": "contacted"}, "supervisor",
    ),
    "listRules": ("GET", "/v1/rules", None, "agent"),
    "validateRules": ("POST", "/v1/rules/validate", {"text": _RULES}, "agent"),
    "listRuleFiles": ("GET", "/v1/rules/files", None, "agent"),
    "getRuleFile": ("GET", "/v1/rules/files/nope", None, "agent"),
    "putRuleFile": ("PUT", "/v1/rules/files/nope", {"text": _RULES}, "supervisor"),
    "deleteRuleFile": ("DELETE", "/v1/rules/files/nope", None, "supervisor"),
    "reloadRules": ("POST", "/v1/rules/reload", None, "supervisor"),
    "createWebhook": ("POST", "/v1/webhooks", {"name": "x"}, "admin"),
    "listWebhooks": ("GET", "/v1/webhooks", None, "admin"),
    "getWebhook": ("GET", "/v1/webhooks/999999", None, "admin"),
    "deleteWebhook": ("DELETE", "/v1/webhooks/999999", None, "admin"),
    "pauseWebhook": ("POST", "/v1/webhooks/999999/pause", None, "admin"),
    "resumeWebhook": ("POST", "/v1/webhooks/999999/resume", None, "admin"),
    "testWebhook": ("POST", "/v1/webhooks/999999/test", None, "admin"),
    "createToken": ("POST", "/v1/tokens", {"name": "x", "role": "boss"}, "admin"),
    "listTokens": ("GET", "/v1/tokens", None, "admin"),
    "revokeToken": ("DELETE", "/v1/tokens/0000000000000000", None, "admin"),
}  # fmt: skip


def test_the_table_covers_every_operation(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert operations - {"getHealth"} == set(CALLS)


def test_health_needs_no_token(api: TestClient) -> None:
    r = api.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["database"]


def test_every_endpoint_refuses_a_missing_or_bad_token(api: TestClient, seeded: Seeded) -> None:
    bad_tokens: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        auth("c2c_0000000000000000_" + "A" * 43),
        auth(seeded.tokens["admin"][:-1] + ("B" if seeded.tokens["admin"][-1] != "B" else "C")),
    ]
    wrong: list[tuple[str, object, int]] = []
    for op, (method, path, body, _role) in CALLS.items():
        for headers in bad_tokens:
            r = api.request(method, path, json=body, headers=headers)
            if r.status_code != 401 or r.headers["content-type"] != "application/problem+json":
                wrong.append((op, headers, r.status_code))
            elif r.headers.get("www-authenticate") != "Bearer":
                wrong.append((op, "no WWW-Authenticate", r.status_code))
    assert wrong == []


def test_each_role_is_refused_or_let_through(api: TestClient, seeded: Seeded) -> None:
    wrong = []
    for role in ROLES:
        for op, (method, path, body, needed) in CALLS.items():
            if op == "streamAlerts" and allows(role, needed):
                continue  # an open stream: tests/cloud_ingest/api/test_stream.py
            r = api.request(method, path, json=body, headers=auth(seeded.tokens[role]))
            if allows(role, needed):
                ok = r.status_code not in (401, 403, 500)
            else:
                ok = r.status_code == 403 and r.json()["type"] == "urn:can2care:problem:forbidden"
            if not ok:
                wrong.append((role, op, r.status_code, r.text[:200]))
    assert wrong == []


def test_a_revoked_token_is_refused_at_once(api: TestClient, seeded: Seeded) -> None:
    admin = auth(seeded.tokens["admin"])
    made = api.post("/v1/tokens", headers=admin, json={"name": "temp", "role": "agent"}).json()
    token = made["token"]
    assert api.get("/v1/alerts", headers=auth(token)).status_code == 200
    r = api.delete(f"/v1/tokens/{made['token_id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert api.get("/v1/alerts", headers=auth(token)).status_code == 401
