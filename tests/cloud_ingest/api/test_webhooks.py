"""Webhooks through HTTP (admin): register, list, pause, test delivery, delete."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rules.webhook import verify
from tests.rules._support import Receiver, serve

from ._support import Seeded, auth


def test_register_test_and_delete(api: TestClient, seeded: Seeded) -> None:
    admin = auth(seeded.tokens["admin"])
    secret = "a-long-enough-signing-secret"
    with serve(Receiver(secret)) as rx:
        r = api.post("/v1/webhooks", headers=admin, json={
            "name": "desk", "url": rx.url, "min_severity": "warning", "secret": secret,
        })  # fmt: skip
        assert r.status_code == 201, r.text
        hook = r.json()
        assert hook["secret"] is None and hook["min_severity"] == "warning"
        made = api.post("/v1/webhooks", headers=admin, json={"name": "x", "url": rx.url}).json()
        assert len(made["secret"]) >= 32
        assert api.post("/v1/webhooks", headers=admin,
                        json={"name": "desk", "url": rx.url}).status_code == 409  # fmt: skip
        listed = api.get("/v1/webhooks", headers=admin).json()
        assert [h["name"] for h in listed] == ["desk", "x"] and "secret" not in listed[0]
        hid = hook["webhook_id"]
        test = api.post(f"/v1/webhooks/{hid}/test", headers=admin).json()
        assert test["ok"] and test["status"] == 200
        (request,) = rx.requests
        assert verify(request.body, secret, request.headers["x-can2care-signature"])
    assert api.post(f"/v1/webhooks/{hid}/pause", headers=admin).json()["active"] is False
    assert api.post(f"/v1/webhooks/{hid}/resume", headers=admin).json()["active"] is True
    assert api.get(f"/v1/webhooks/{hid}", headers=admin).json()["name"] == "desk"
    assert api.delete(f"/v1/webhooks/{hid}", headers=admin).status_code == 204
    assert api.get(f"/v1/webhooks/{hid}", headers=admin).status_code == 404
    assert api.delete(f"/v1/webhooks/{hid}", headers=admin).status_code == 404


def test_webhook_refusals(api: TestClient, seeded: Seeded) -> None:
    admin = auth(seeded.tokens["admin"])
    for body, field in (
        ({"name": "a", "url": "ftp://x"}, "body"),
        ({"name": "a", "url": "https://x", "timezone": "Mars/Olympus"}, "body"),
        ({"name": "a", "url": "https://x", "quiet_start": "22:00:00"}, "body"),
        ({"name": "a", "url": "https://x", "rate_per_minute": 0}, "body.rate_per_minute"),
        ({"name": "a", "url": "https://x", "secret": "short"}, "body.secret"),
    ):
        r = api.post("/v1/webhooks", headers=admin, json=body)
        assert r.status_code == 422, body
        assert field in [e["field"] for e in r.json()["errors"]], r.json()
