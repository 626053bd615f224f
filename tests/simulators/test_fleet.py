"""The fleet load generator against a real Mosquitto with a password file and an ACL: every
vehicle logs in as itself and its batches decode, in order, with every sample counted; a
refused vehicle does not stop the others; after a broker restart no batch is missing."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from can2care.devservices import _proc
from can2care.devservices._proc import free_port
from cloud_ingest.provisioning import VehicleCredential
from dbc import demo_catalogue
from edge_agent.wire import WireSchema, decode_telemetry
from simulators import FleetError
from simulators.fleet import (
    Fleet,
    FleetConfig,
    FleetStats,
    MixEntry,
    fleet_credentials,
    parse_mix,
    provision,
    read_credentials,
    write_credentials,
)
from simulators.fleet._playback import build_playbacks
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

INGEST = "can2care-ingest"
NOT_AUTHORIZED = 135
SCHEMA = WireSchema.from_catalogue(demo_catalogue())


@dataclass
class Broker:
    root: Path
    port: int
    credentials: list[VehicleCredential]
    ingest_password: str

    def settings(self, persistent: bool = False) -> list[str]:
        lines = [
            "allow_anonymous false",
            f"password_file {self.root / 'passwords'}",
            f"acl_file {self.root / 'acl'}",
        ]
        if persistent:
            lines += ["persistence true", f"persistence_location {self.root}/"]
        return lines

    @contextlib.contextmanager
    def running(self, persistent: bool = False) -> Iterator[None]:
        with configured_broker(self.root, self.port, self.settings(persistent)):
            yield

    def clients_seen(self) -> dict[str, str]:
        """Client id by user name, from the broker's log of new connections."""
        text = (self.root / "mosquitto.log").read_text()
        pattern = r"New client connected from \S+ as (\S+) \(.*?u'([^']+)'\)"
        return {user: client for client, user in re.findall(pattern, text)}


@pytest.fixture
def broker() -> Iterator[Broker]:
    root = make_service_dir("can2care-fleet-")
    try:
        credentials = fleet_credentials("car-", 20, seed="fleet-test")
        provisioned = provision(root, credentials)
        ingest_password = provisioned.ingest_password_file.read_text().strip()
        yield Broker(root, free_port(), credentials, ingest_password)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Ingest:
    """The ingest user subscribed to every vehicle's telemetry and status, with a session
    that outlives a broker restart (on a persistent broker)."""

    client: mqtt.Client
    telemetry: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.telemetry.values())


@contextlib.contextmanager
def ingest(broker: Broker) -> Iterator[Ingest]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    sub = Ingest(client)

    def on_connect(c: mqtt.Client, *args: object) -> None:
        c.subscribe([("v1/+/telemetry", 1), ("v1/+/status", 1)])

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        _prefix, vehicle, kind = message.topic.split("/")
        with sub.lock:
            (sub.telemetry if kind == "telemetry" else sub.status)[vehicle].append(
                bytes(message.payload)
            )

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda *a: sub.subscribed.set()
    client.username_pw_set(INGEST, broker.ingest_password)
    client.reconnect_delay_set(1, 1)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        assert sub.subscribed.wait(10)
        yield sub
    finally:
        client.loop_stop()
        client.disconnect()


def _config(broker: Broker, **overrides: object) -> FleetConfig:
    settings: dict[str, object] = {
        "vehicles": len(broker.credentials),
        "port": broker.port,
        "credentials": tuple(broker.credentials),
        "samples_per_s": 200.0,
        "batch_interval_s": 0.5,
        "connect_rate": 500.0,
        "trace_s": 60.0,
        "mix": (MixEntry("urban", 2.0), MixEntry("parking"), MixEntry("crash")),
    }
    settings.update(overrides)
    return FleetConfig(**settings)  # type: ignore[arg-type]


def _sequences(sub: Ingest) -> dict[str, list[int]]:
    with sub.lock:
        return {
            vehicle: [decode_telemetry(p, SCHEMA).sequence for p in payloads]
            for vehicle, payloads in sub.telemetry.items()
        }


def _offline(sub: Ingest) -> int:
    with sub.lock:
        return sum(b'"state":"offline"' in p[-1] for p in sub.status.values())


def _wait_published(fleet: Fleet, batches: int) -> FleetStats:
    assert _proc.wait_until(lambda: fleet.stats().acked >= batches, 60)
    return fleet.stats()


# -- against the broker ------------------------------------------------------------------


def test_every_vehicle_logs_in_as_itself_and_its_batches_decode_in_order(broker: Broker) -> None:
    with broker.running(), ingest(broker) as sub:
        fleet = Fleet(_config(broker))
        fleet.start()
        _wait_published(fleet, 3 * 20)
        stats = fleet.stop()
        assert _proc.wait_until(lambda: sub.count() >= stats.published, 30)
        assert _proc.wait_until(lambda: _offline(sub) == 20, 30)
    assert stats.connected == stats.connects == 20
    assert (stats.connection_losses, stats.refused, stats.dropped) == (0, 0, 0)
    assert stats.published == stats.acked and stats.unacked == 0
    assert stats.samples_published == stats.samples_acked > 0
    seen = broker.clients_seen()
    del seen[INGEST]
    assert seen == {c.vehicle_id: f"can2care-{c.vehicle_id}" for c in broker.credentials}
    samples = 0
    with sub.lock:
        payloads = {v: list(p) for v, p in sub.telemetry.items()}
        status = {v: list(p) for v, p in sub.status.items()}
    assert sorted(payloads) == sorted(c.vehicle_id for c in broker.credentials)
    for vehicle, items in payloads.items():
        batches = [decode_telemetry(p, SCHEMA) for p in items]
        sequences = [b.sequence for b in batches]
        assert sequences == sorted(set(sequences)), vehicle  # strictly increasing
        samples += sum(b.samples for b in batches)
        times = [int(s.times_ms[0]) for b in batches for s in b.series[:1]]
        assert times == sorted(times)
        assert b'"state":"online"' in status[vehicle][0]
        assert b'"state":"offline"' in status[vehicle][-1]
    assert samples == stats.samples_acked


def test_a_refused_vehicle_is_reported_and_the_others_publish(broker: Broker) -> None:
    credentials = list(broker.credentials)
    credentials[3] = VehicleCredential(credentials[3].vehicle_id, "wrong")
    with broker.running():
        fleet = Fleet(_config(broker, credentials=tuple(credentials)))
        fleet.start()
        assert _proc.wait_until(lambda: fleet.stats().refused >= 1, 30)
        _wait_published(fleet, 2 * 19)
        stats = fleet.stop()
    assert stats.refused_vehicles == (credentials[3].vehicle_id,)
    assert [int(key.split()[0]) for key in stats.refusals] == [NOT_AUTHORIZED]
    assert stats.connected == stats.connects == 19
    assert stats.published == stats.acked > 0


def test_after_a_broker_restart_vehicles_reconnect_and_no_batch_is_missing(
    broker: Broker,
) -> None:
    config = _config(broker, vehicles=10, reconnect_min_s=0.2, reconnect_max_s=1.0)
    with ingest_on_restarting_broker(broker) as (sub, restart):
        fleet = Fleet(config)
        fleet.start()
        _wait_published(fleet, 2 * 10)
        restart()
        assert _proc.wait_until(lambda: fleet.stats().reconnects >= 10, 60)
        before = fleet.stats().published
        _wait_published(fleet, before + 10)
        stats = fleet.stop()
        assert _proc.wait_until(lambda: sub.count() >= stats.published, 30)
    assert stats.connection_losses >= 10
    assert stats.published == stats.acked and stats.dropped == 0
    unique = 0
    for vehicle, sequences in _sequences(sub).items():
        got = sorted(set(sequences))
        assert got == list(range(got[0], got[0] + len(got))), vehicle  # none missing
        unique += len(got)
    assert unique == stats.published


@contextlib.contextmanager
def ingest_on_restarting_broker(
    broker: Broker,
) -> Iterator[tuple[Ingest, Callable[[], None]]]:
    """The ingest subscriber on a persistent broker, and a function that restarts it."""
    with contextlib.ExitStack() as server:
        server.enter_context(broker.running(persistent=True))

        def restart() -> None:
            server.close()  # stops the broker, which saves the ingest session
            server.enter_context(broker.running(persistent=True))

        with ingest(broker) as sub:
            yield sub, restart


def test_a_broker_that_does_not_answer_is_an_error(broker: Broker) -> None:
    with pytest.raises(FleetError, match="cannot reach the broker"):
        Fleet(_config(broker)).start()


# -- pure parts ----------------------------------------------------------------------------


def test_the_mix_is_parsed_and_checked() -> None:
    assert parse_mix("urban=4, highway, crash@combustion=0.5") == (
        MixEntry("urban", 4.0),
        MixEntry("highway", 1.0),
        MixEntry("crash", 0.5, "combustion"),
    )
    for bad, match in [
        ("flying=1", "unknown drive"),
        ("urban=x", "not a number"),
        ("urban=0", "positive"),
        ("urban,urban", "twice"),
        ("urban;highway", "cannot read"),
    ]:
        with pytest.raises(FleetError, match=match):
            parse_mix(bad)


def test_bad_options_are_fleet_errors() -> None:
    with pytest.raises(FleetError, match="vehicles"):
        FleetConfig(vehicles=0)
    with pytest.raises(FleetError, match="credentials for only 1"):
        FleetConfig(vehicles=2, credentials=(VehicleCredential("a", "b"),))
    with pytest.raises(FleetError, match="id prefix"):
        FleetConfig(id_prefix="a/b")
    with pytest.raises(FleetError, match="trace_s"):
        FleetConfig(batch_interval_s=30, trace_s=10)


def test_credentials_round_trip_and_seeded_passwords_repeat(tmp_path: Path) -> None:
    seeded = fleet_credentials("car-", 3, seed="s")
    assert seeded == fleet_credentials("car-", 3, seed="s")
    assert [c.vehicle_id for c in seeded] == ["car-00001", "car-00002", "car-00003"]
    assert len({c.password for c in fleet_credentials("car-", 3)}) == 3
    path = tmp_path / "fleet.json"
    write_credentials(path, seeded)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_credentials(path) == seeded
    path.write_text('{"version": 1, "vehicles": [{"vehicle_id": 1}]}')
    with pytest.raises(FleetError, match=r"vehicles\[0\]"):
        read_credentials(path)
    with pytest.raises(FleetError, match="cannot read"):
        read_credentials(tmp_path / "missing.json")


def test_playback_batches_hold_real_samples_at_the_asked_rate() -> None:
    mix = (MixEntry("highway"), MixEntry("overheating"), MixEntry("cold_morning"))
    playbacks = build_playbacks(
        mix, SCHEMA, samples_per_s=300.0, slot_ms=2000, trace_s=120.0, seed=1
    )
    for playback in playbacks:
        assert playback.slots == 60
        assert playback.samples_per_s == pytest.approx(300.0, rel=0.02)
        batch = playback.batch(61, 1_700_000_000_000, 7)  # wraps to slot 1
        assert batch.sequence == 7
        for series in batch.series:
            assert 1_700_000_000_000 <= series.times_ms[0] <= series.times_ms[-1]
            assert series.times_ms[-1] < 1_700_000_002_000
    with pytest.raises(FleetError, match=r"overheating.*combustion"):
        build_playbacks(
            (MixEntry("lv_drain", variant="ev"), MixEntry("overheating", variant="ev")),
            SCHEMA,
            samples_per_s=10.0,
            slot_ms=1000,
            trace_s=60.0,
            seed=1,
        )


# -- the command ---------------------------------------------------------------------------


def test_the_command_provisions_then_runs_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    from can2care.cli import main

    root = make_service_dir("can2care-fleet-cli-")
    try:
        seed = ["--vehicles", "5", "--id-prefix", "cli-", "--password-seed", "s"]
        assert main(["sim", "fleet", *seed, "--provision", str(root)]) == 0
        assert "provisioned 5 vehicles" in capsys.readouterr().out
        assert len(read_credentials(root / "fleet.json")) == 5
        port = free_port()
        run = ["sim", "fleet", "--port", str(port), "--duration", "3", "--batch-interval", "0.5"]
        run += ["--progress-every", "1", "--mix", "urban,parking"]
        settings = [
            "allow_anonymous false",
            f"password_file {root / 'passwords'}",
            f"acl_file {root / 'acl'}",
        ]
        with configured_broker(root, port, settings):
            assert main([*run, "--credentials", str(root / "fleet.json")]) == 0
            out = capsys.readouterr().out
            assert "connected 5/5" in out
            assert "vehicles 5: 5 connected at the end, 0 connections lost" in out
            assert "samples/s" in out and "CPU" in out
            wrong = ["--vehicles", "5", "--id-prefix", "cli-", "--password-seed", "other"]
            assert main([*run, *wrong]) == 1
            err = capsys.readouterr().err
            assert "no vehicle could connect" in err and "135" in err
        assert main([*run, "--credentials", str(root / "fleet.json")]) == 1
        assert "cannot reach the broker" in capsys.readouterr().err
        assert main([*run, "--mix", "urban=fast"]) == 1
        assert "not a number" in capsys.readouterr().err
    finally:
        shutil.rmtree(root, ignore_errors=True)
