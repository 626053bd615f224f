"""The crash chain end to end: the ACU's airbag frame on the simulated bus, the edge agent,
Mosquitto, the ingest service, TimescaleDB, the rules worker and webhook delivery.

Each crash must raise exactly one alert and exactly one ``raised`` webhook that carries the
rescue payload. Latency is the benchmark's (``benchmarks/bench_crash_alert.py``), not a test.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._crash_chain import CrashChain
from can2care.devservices import MqttEndpoint

CRASHES = 6


def test_each_crash_raises_one_alert_and_one_webhook(
    db_url: str, mqtt_broker: MqttEndpoint, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:8]
    names = (f"crash-{token}-a", f"crash-{token}-b")
    with CrashChain(db_url, mqtt_broker.port, tmp_path, vehicles=names, token=token) as chain:
        assert chain.warm(60), "no telemetry stored: the chain does not carry data"
        for n in range(CRASHES):
            name = names[n % len(names)]
            assert chain.wait_resolved(name, 30), f"{name}'s last crash alert never came"
            crash = chain.crash(name)
            assert chain.wait_webhook(crash, 30) is not None, f"crash {n} raised no webhook"
        for name in names:
            assert chain.wait_resolved(name, 30)
        hooks = list(chain.receiver.raised)
        assert chain.receiver.bad == 0
    timings = chain.timings(commit_times=False)

    assert len(timings) == CRASHES
    assert all(t.webhook is not None for t in timings)
    assert all(t.at_broker is not None and t.stored is not None for t in timings)
    assert all(t.committed is not None for t in timings)
    # One webhook per crash, each for an alert of its own, each crash's event once.
    assert len(hooks) == CRASHES
    assert len({h.alert_id for h in hooks}) == CRASHES
    assert len({(t.crash.vehicle, t.sequence) for t in timings}) == CRASHES
    with psycopg.connect(db_url) as conn:
        alerts = Counter(
            vehicle
            for (vehicle,) in conn.execute(
                "SELECT vehicle_id FROM alert WHERE rule_id = 'crash'"
            ).fetchall()
        )
        events = conn.execute("SELECT count(*) FROM event").fetchone()
        deliveries = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'delivered') FROM delivery d"
            " JOIN alert_feed f USING (feed_id) WHERE f.kind = 'raised'"
        ).fetchone()
    assert alerts == {name: CRASHES // len(names) for name in names}
    assert events == (CRASHES,)
    assert deliveries == (CRASHES, CRASHES)
    for hook in hooks:
        _check_rescue_payload(hook.body, hook.vehicle)


def _check_rescue_payload(body: dict[str, Any], vehicle: str) -> None:
    """The alert names the crash and carries what a rescue service needs."""
    alert = body["alert"]
    assert body["event"] == "raised"
    assert body["idempotency_key"] == f"alert-{alert['id']}-1"
    assert (alert["rule_id"], alert["vehicle_id"]) == ("crash", vehicle)
    assert (alert["severity"], alert["category"], alert["status"]) == ("critical", "rescue", "open")
    event = alert["details"]["event"]
    assert event["vehicle_id"] == vehicle
    assert event["vin"] == "WDD2120341A123456"  # the example configuration's
    assert event["trigger"] == "airbag"
    assert event["time_ms"] == alert["details"]["event_time_ms"]
    assert event["propulsion"] == "electric"
    assert event["severity"]
    assert {"position", "heading_deg", "previous_positions", "occupants"} <= event.keys()
