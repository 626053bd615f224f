"""Alerts through HTTP: list, filters and cursor, detail, lifecycle by role, history."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from ._support import SPEED, T0, Seeded, auth


def _ids(api: TestClient, seeded: Seeded, query: str = "") -> list[int]:
    r = api.get(f"/v1/alerts?{query}", headers=auth(seeded.tokens["agent"]))
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["alerts"]]


def test_list_filters(api: TestClient, seeded: Seeded) -> None:
    crash, soc = seeded.crash_alert, seeded.soc_alert
    since = (T0 + timedelta(seconds=30)).isoformat().replace("+", "%2B")
    cases = {
        "": [soc, crash],
        "status=open": [soc, crash],
        "status=resolved": [],
        "severity=critical": [crash],
        "severity=critical&severity=warning": [soc, crash],
        "rule_id=low_soc": [soc],
        "vehicle_id=veh-1": [crash],
        "region=north": [soc, crash],
        "region=south": [],
        f"since={since}": [soc],
        f"until={since}": [crash],
    }
    for query, expected in cases.items():
        assert _ids(api, seeded, query) == expected, query


def test_cursor_pagination(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    first = api.get("/v1/alerts?limit=1", headers=h).json()
    assert [a["id"] for a in first["alerts"]] == [seeded.soc_alert]
    second = api.get(f"/v1/alerts?limit=1&cursor={first['next_cursor']}", headers=h).json()
    assert [a["id"] for a in second["alerts"]] == [seeded.crash_alert]
    assert second["next_cursor"] is None
    bad = api.get("/v1/alerts?cursor=garbage", headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


def test_list_refuses_bad_filters_naming_them(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    for query, field in (
        ("status=lost", "query.status.0"),
        ("limit=0", "query.limit"),
        ("limit=1001", "query.limit"),
        ("since=yesterday", "query.since"),
    ):
        r = api.get(f"/v1/alerts?{query}", headers=h)
        assert r.status_code == 422, query
        body = r.json()
        assert body["type"] == "urn:can2care:problem:invalid-request"
        assert [e["field"] for e in body["errors"]] == [field]


def test_detail_has_rescue_payload_and_data_around_the_trigger(
    api: TestClient, seeded: Seeded
) -> None:
    r = api.get(f"/v1/alerts/{seeded.crash_alert}", headers=auth(seeded.tokens["agent"]))
    assert r.status_code == 200
    body = r.json()
    assert body["alert"]["rule_id"] == "crash" and body["vehicle"]["vin"] == "WVWZZZ1JZXW000001"
    rescue = body["rescue"]
    assert rescue["event"] == {"airbag": True}
    assert rescue["position"]["latitude"] == 52.52 and rescue["position"]["longitude"] == 13.4
    speed = next(s for s in body["context"] if s["path"] == SPEED)
    assert len(speed["samples"]) == 180  # 120 s before and 60 s after, at 1 Hz
    assert [e["kind"] for e in body["events"]] == ["crash"]
    # A care alert: no rescue payload; the context is the signals of its values.
    r = api.get(f"/v1/alerts/{seeded.soc_alert}", headers=auth(seeded.tokens["agent"]))
    assert r.json()["rescue"] is None
    assert [s["path"] for s in r.json()["context"]] == [SPEED]


def test_unknown_alert_is_404(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["supervisor"])
    for method, path, body in (
        ("GET", "/v1/alerts/999999", None),
        ("GET", "/v1/alerts/999999/history", None),
        ("POST", "/v1/alerts/999999/acknowledge", {}),
        ("POST", "/v1/alerts/999999/resolve", {"reason": "x"}),
    ):
        r = api.request(method, path, headers=h, json=body)
        assert r.status_code == 404, path
        assert r.json()["detail"] == "no alert with id 999999"
    assert api.get("/v1/alerts/abc", headers=h).status_code == 422


def test_lifecycle_by_role_and_history(api: TestClient, seeded: Seeded) -> None:
    alert = seeded.crash_alert
    agent, supervisor = auth(seeded.tokens["agent"]), auth(seeded.tokens["supervisor"])
    r = api.post(f"/v1/alerts/{alert}/acknowledge", headers=agent, json={"note": "calling"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "agent-1"
    again = api.post(f"/v1/alerts/{alert}/acknowledge", headers=agent)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:can2care:problem:invalid-transition"
    r = api.post(f"/v1/alerts/{alert}/assign", headers=agent, json={"assignee": "ben"})
    assert r.json()["assigned_to"] == "ben"
    r = api.post(f"/v1/alerts/{alert}/notes", headers=agent, json={"text": "driver is safe"})
    assert r.status_code == 200
    assert (
        api.post(f"/v1/alerts/{alert}/notes", headers=agent, json={"text": ""}).status_code == 422
    )
    tow = {"details": {"tow": "ACME"}}
    assert api.post(f"/v1/alerts/{alert}/dispatch", headers=agent, json=tow).status_code == 403
    r = api.post(f"/v1/alerts/{alert}/dispatch", headers=supervisor, json=tow)
    assert r.json()["status"] == "dispatched" and r.json()["dispatch"] == {"tow": "ACME"}
    done = {"reason": "towed"}
    assert api.post(f"/v1/alerts/{alert}/resolve", headers=agent, json=done).status_code == 403
    r = api.post(f"/v1/alerts/{alert}/resolve", headers=supervisor, json=done)
    assert r.json()["status"] == "resolved" and r.json()["resolution"] == "towed"
    history = api.get(f"/v1/alerts/{alert}/history", headers=agent).json()
    assert [(e["action"], e["actor"]) for e in history] == [
        ("raised", "rules"),
        ("acknowledged", "agent-1"),
        ("assigned", "agent-1"),
        ("noted", "agent-1"),
        ("dispatched", "supervisor-1"),
        ("resolved", "supervisor-1"),
    ]
    assert history[1]["note"] == "calling"
    resolved = api.get("/v1/alerts?status=resolved", headers=agent).json()["alerts"]
    assert [a["id"] for a in resolved] == [alert]


def test_action_bodies_are_validated(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["supervisor"])
    alert = seeded.soc_alert
    for action, body, field in (
        ("assign", {}, "body.assignee"),
        ("notes", {"txt": "x"}, "body.text"),
        ("dispatch", {"details": "tow"}, "body.details"),
        ("resolve", {}, "body.reason"),
    ):
        r = api.post(f"/v1/alerts/{alert}/{action}", headers=h, json=body)
        assert r.status_code == 422, action
        assert field in [e["field"] for e in r.json()["errors"]], (action, r.json())
