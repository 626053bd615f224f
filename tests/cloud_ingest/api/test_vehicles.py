"""Vehicles, time series and service records through HTTP against the real database."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from ._support import LAT, SPEED, T0, Seeded, auth


def test_list_and_search(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    page = api.get("/v1/vehicles", headers=h).json()
    assert [v["vehicle_id"] for v in page["vehicles"]] == ["veh-1", "veh-2", "veh-3"]
    assert page["next_cursor"] is None
    by = {
        "region=north": ["veh-1", "veh-2"],
        "model=i3": ["veh-3"],
        "tag=lease": ["veh-1"],
        "tag=fleet-a&tag=lease": ["veh-1"],
        "vin=WVWZZZ1JZXW000002": ["veh-2"],
        "q=WBA": ["veh-3"],
        "q=veh-": ["veh-1", "veh-2", "veh-3"],
        "q=%25": [],
    }
    for query, expected in by.items():
        got = api.get(f"/v1/vehicles?{query}", headers=h).json()["vehicles"]
        assert [v["vehicle_id"] for v in got] == expected, query


def test_list_pages_with_a_cursor(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agent"])
    first = api.get("/v1/vehicles?limit=2", headers=h).json()
    assert [v["vehicle_id"] for v in first["vehicles"]] == ["veh-1", "veh-2"]
    second = api.get(f"/v1/vehicles?limit=2&cursor={first['next_cursor']}", headers=h).json()
    assert [v["vehicle_id"] for v in second["vehicles"]] == ["veh-3"]
    assert second["next_cursor"] is None


def test_detail_has_latest_state_status_and_open_alerts(api: TestClient, seeded: Seeded) -> None:
    body = api.get("/v1/vehicles/veh-1", headers=auth(seeded.tokens["agent"])).json()
    assert body["vin"] == "WVWZZZ1JZXW000001" and body["tags"] == ["lease", "fleet-a"]
    assert body["latest"][LAT]["value"] == 52.52
    assert body["status"]["state"] == "online"
    assert body["open_alerts"] == 1 and body["last_service"] is None


def test_unknown_vehicle_is_404_problem(api: TestClient, seeded: Seeded) -> None:
    for path in ("/v1/vehicles/nope", "/v1/vehicles/nope/service-records"):
        r = api.get(path, headers=auth(seeded.tokens["agent"]))
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:can2care:problem:not-found"


def test_put_vehicle_registers_and_updates(api: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["admin"])
    r = api.put("/v1/vehicles/veh-9", headers=h, json={"vin": "X9", "region": "east",
                                                        "tags": ["new"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["region"] == "east"
    r = api.put("/v1/vehicles/veh-9", headers=h, json={"region": "west"})
    assert r.json()["region"] == "west" and r.json()["vin"] is None
    bad = api.put("/v1/vehicles/veh-9", headers=h, json={"catalogues": ["xyz"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("body.catalogues")
    taken = api.put("/v1/vehicles/veh-8", headers=h, json={"vin": "WVWZZZ1JZXW000001"})
    assert taken.status_code == 422


# Time series ----------------------------------------------------------------------------------


def _series(api: TestClient, seeded: Seeded, query: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = api.get(f"/v1/vehicles/veh-1/series?{query}", headers=auth(seeded.tokens["agent"]))
    return r.status_code, r.json()


def _t(offset_s: float) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat().replace("+", "%2B")


def test_raw_samples_between_two_times(api: TestClient, seeded: Seeded) -> None:
    status, body = _series(api, seeded, f"signal={SPEED}&from={_t(0)}&to={_t(10)}")
    assert status == 200 and body["bucket_s"] is None
    (speed,) = body["signals"]
    assert len(speed["samples"]) == 10
    assert speed["samples"][0]["value"] == 0.0  # 300 s after the series start: 300 % 100


def test_bucketed_series(api: TestClient, seeded: Seeded) -> None:
    status, body = _series(
        api, seeded, f"signal={SPEED}&signal={LAT}&from={_t(-300)}&to={_t(300)}&bucket=1m"
    )
    assert status == 200 and body["bucket_s"] == 60
    speed, lat = body["signals"]
    assert len(speed["buckets"]) == 10 and speed["buckets"][0]["samples"] == 60
    assert lat["buckets"] == []


def test_series_limits_are_422_naming_the_field(api: TestClient, seeded: Seeded) -> None:
    cases = {
        f"signal={SPEED}&from={_t(10)}&to={_t(0)}": "query.to",
        f"signal={SPEED}&from={_t(0)}&to={_t(2 * 86400)}": "query.to",
        f"signal={SPEED}&from={_t(0)}&to={_t(600)}&bucket=never": "query.bucket",
        f"signal={SPEED}&from={_t(0)}&to={_t(86400 * 300)}&bucket=1s": "query.bucket",
        f"from={_t(0)}&to={_t(10)}": "query.signal",
        f"signal={SPEED}&from=2026-03-01T12:00:00&to={_t(10)}": "query.from",
    }
    for query, field in cases.items():
        status, body = _series(api, seeded, query)
        assert status == 422, query
        assert field in [e["field"] for e in body["errors"]], (query, body)


def test_too_many_raw_points_is_422(db_url: str, seeded: Seeded) -> None:
    from ._support import client

    with client(db_url, series_max_points=100) as api:
        status, body = _series(api, seeded, f"signal={SPEED}&from={_t(-300)}&to={_t(300)}")
    assert status == 422 and body["errors"][0]["field"] == "query.bucket"


# Service records ------------------------------------------------------------------------------


def test_recording_a_service(api: TestClient, seeded: Seeded) -> None:
    body = {"time": T0.isoformat(), "odometer_km": 30125.5, "note": "annual"}
    r = api.post("/v1/vehicles/veh-1/service-records", headers=auth(seeded.tokens["supervisor"]),
                 json=body)  # fmt: skip
    assert r.status_code == 201 and r.json()["recorded_by"] == "supervisor-1"
    h = auth(seeded.tokens["agent"])
    (record,) = api.get("/v1/vehicles/veh-1/service-records", headers=h).json()
    assert record["odometer_km"] == 30125.5
    assert api.get("/v1/vehicles/veh-1", headers=h).json()["last_service"] == record
    refused = api.post("/v1/vehicles/veh-1/service-records", headers=h, json=body)
    assert refused.status_code == 403
    bad = api.post("/v1/vehicles/veh-1/service-records", headers=auth(seeded.tokens["admin"]),
                   json={"time": "yesterday", "odometer_km": -1})  # fmt: skip
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.time", "body.odometer_km"}
