"""The alert change stream, served by uvicorn on a loopback port: live changes, filters,
resuming with Last-Event-ID, refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import psycopg
import pytest
import uvicorn

from can2care.devservices._proc import free_port
from cloud_ingest.api import create_app
from rules.store import acknowledge, resolve

from ._support import Seeded, auth, settings


@pytest.fixture
def base_url(db_url: str, seeded: Seeded) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings(db_url, stream_keepalive_s=0.2)),
        host="127.0.0.1", port=port, log_config=None, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` events (id and data) of a stream, skipping comments."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
            if len(events) == count:
                return events
    raise AssertionError(f"the stream ended after {len(events)} events")


def test_live_changes_arrive_and_keepalives_flow(
    base_url: str, seeded: Seeded, db_conn: psycopg.Connection[Any]
) -> None:
    url = f"{base_url}/v1/alerts/stream"
    with (
        httpx2.Client(timeout=10) as http,
        http.stream("GET", url, headers=auth(seeded.tokens["agent"])) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "retry: 2000"
        assert next(lines) == ""
        assert next(lines) == ": keep-alive"  # nothing happened yet
        started = time.monotonic()
        acknowledge(db_conn, seeded.crash_alert, actor="ana")
        (event,) = _events(lines, 1)
        assert time.monotonic() - started < 2.0
    assert event["data"]["kind"] == "acknowledged"
    assert event["data"]["alert"]["status"] == "acknowledged"
    assert event["id"] == event["data"]["feed_id"]


def test_resume_with_last_event_id_and_filters(
    base_url: str, seeded: Seeded, db_conn: psycopg.Connection[Any]
) -> None:
    acknowledge(db_conn, seeded.crash_alert, actor="ana")
    url = f"{base_url}/v1/alerts/stream"
    headers = {**auth(seeded.tokens["agent"]), "Last-Event-ID": "0"}
    with httpx2.Client(timeout=10) as http:
        with http.stream("GET", url, headers=headers) as r:
            replayed = _events(r.iter_lines(), 3)
        assert [e["data"]["kind"] for e in replayed] == ["raised", "raised", "acknowledged"]
        ids = [e["id"] for e in replayed]
        assert ids == sorted(ids)
        # Resume after the second: the third, then a live change, nothing twice.
        headers["Last-Event-ID"] = str(ids[1])
        with http.stream("GET", url + "?severity=critical", headers=headers) as r:
            lines = r.iter_lines()
            (third,) = _events(lines, 1)
            resolve(db_conn, seeded.soc_alert, "fine", actor="ana")  # warning: filtered out
            resolve(db_conn, seeded.crash_alert, "towed", actor="ana")
            (live,) = _events(lines, 1)
    assert third["id"] == ids[2]
    assert live["data"]["kind"] == "resolved" and live["data"]["alert_id"] == seeded.crash_alert


def test_stream_refusals(base_url: str, seeded: Seeded) -> None:
    with httpx2.Client(timeout=10) as http:
        url = f"{base_url}/v1/alerts/stream"
        assert http.get(url).status_code == 401
        bad = http.get(url, headers={**auth(seeded.tokens["agent"]), "Last-Event-ID": "x"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "header.last-event-id"
        bad = http.get(url + "?status=lost", headers=auth(seeded.tokens["agent"]))
        assert bad.status_code == 422
