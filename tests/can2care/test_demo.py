"""``can2care demo`` end to end: private services, agents, ingest, rules and the API."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from can2care.cli import build_parser
from can2care.demo import DemoConfig, run_demo
from can2care.devservices import ServiceManager, Services
from rules.scoring import RESCUE_KINDS

# What earlier runs left retained: a fleet of another seed, a vehicle of this run's fleet
# (seed 3), and a vehicle that is not the demo's (an edge agent on the private broker).
EARLIER_DEMO = ("C2CDEMO0990000000", "C2CDEMO0990000001", "C2CDEMO0030000000")
NOT_DEMO = "veh-own-1"


@pytest.fixture
def services(service_dir: Path) -> Iterator[Services]:
    """The private services, started before the demo (which then leaves them running)."""
    manager = ServiceManager(service_dir)
    try:
        yield manager.start()
    finally:
        manager.stop()


def _retained_statuses(services: Services, publish: dict[str, bytes] | None = None) -> set[str]:
    """Publish ``publish`` (topic: payload) retained, then read the retained statuses."""
    got: set[str] = set()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.add(m.topic) if m.retain and m.payload else None
    client.connect(services.mqtt.host, services.mqtt.port)
    client.loop_start()
    try:
        for topic, payload in (publish or {}).items():
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
        client.subscribe("v1/+/status", 1)
        time.sleep(1.0)
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_small_demo_shows_each_rescue_event_once_and_none_on_hard_negatives(
    service_dir: Path, services: Services
) -> None:
    stale = {f"v1/{v}/status": b'{"state":"offline"}' for v in (*EARLIER_DEMO, NOT_DEMO)}
    assert _retained_statuses(services, stale) == set(stale)
    lines: list[str] = []
    seen: list[int] = []

    def serving(result: object) -> None:  # never called: the demo does not keep running
        seen.append(1)

    config = DemoConfig(
        vehicles=7, speed=600.0, seed=3, keep_running=False, run_dir=service_dir,
        api_port=0, progress_every_s=1.0, scale=2,  # two ingest processes, two rules workers
    )  # fmt: skip
    result = run_demo(config, lines.append, serving=serving)

    assert result.problems == ()
    assert not seen
    rescue_labels = [lab for lab in result.labels if lab.kind in RESCUE_KINDS]
    assert {lab.kind for lab in rescue_labels} == set(RESCUE_KINDS)
    matched = Counter(
        (e.label.vehicle, e.label.kind)
        for e in result.alerts
        if e.label is not None and e.primary and e.change.category == "rescue"
    )
    assert matched == Counter((lab.vehicle, lab.kind) for lab in rescue_labels)
    hard_negative = {
        v
        for v in {lab.vehicle for lab in result.labels}
        if all(lab.label == "negative" for lab in result.labels if lab.vehicle == v)
    }
    assert len(hard_negative) == 2
    assert not [
        e for e in result.alerts if e.change.vehicle_id in hard_negative
        and e.change.category == "rescue"
    ]  # fmt: skip
    # the table shows each rescue alert with its label, the summary the figures
    for lab in rescue_labels:
        row = next(line for line in result.table.splitlines() if lab.vehicle in line)
        assert lab.kind in row.split()[-3]
    text = "\n".join(lines)
    assert "rescue events    3 of 3" in text
    assert "samples/s" in text and "alert latency    median" in text
    # the API stops with the demo, so neither its URL nor a token is shown
    assert result.api_url not in text and "Bearer" not in text
    # the earlier demo fleets' statuses were cleared before the ingest service subscribed;
    # the other vehicle's reached it (Mosquitto sends a retained message to each member of
    # the group as it subscribes) and is this run's only dead letter, counted as such
    assert "cleared the retained statuses of 3 earlier demo vehicles" in text
    with psycopg.connect(services.postgres.dsn("can2care_demo")) as conn:
        dead = conn.execute("SELECT topic, reason FROM dead_letter").fetchall()
    assert set(dead) == {(f"v1/{NOT_DEMO}/status", "unknown_vehicle")}
    assert f", {len(dead)} dead letters" in text
    fleet = {f"v1/{lab.vehicle}/status" for lab in result.labels}
    assert _retained_statuses(services) == {*fleet, f"v1/{NOT_DEMO}/status"}
    # both ingest processes and both rules workers ran (each says so when it listens)
    for name in ("ingest-1", "ingest-2", "rules-1", "rules-2"):
        assert "Ctrl-C stops" in (service_dir / "demo" / f"{name}.log").read_text()
    # everything the demo started is stopped: its API no longer answers
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{result.api_url}/health", timeout=2)


def test_demo_options_are_checked() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--vehicles", "500", "--duration", "2h", "--speed", "30"])
    assert (args.vehicles, args.duration, args.speed, args.keep_running) == (500, 7200.0, 30, True)
    assert parser.parse_args(["demo", "--no-keep-running"]).keep_running is False
    for bad in (["--duration", "30m"], ["--vehicles", "0"], ["--duration", "soon"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["demo", *bad])
