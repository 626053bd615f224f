"""The crash chain end to end, with a clock at every hop (issue 7).

::

    with CrashChain(db_url, mqtt_port, workdir, vehicles=("crash-1",)) as chain:
        crash = chain.crash("crash-1")        # the ACU's airbag frame onto the vehicle's bus
        hook = chain.wait_webhook(crash, 10)  # the webhook of the alert it raised
    timings = chain.timings()                 # each crash's hops, from the database too

Each vehicle has a python-can ``virtual`` bus of its own with the demo EV's traffic replayed in
real time, and an edge agent in this process reading it (virtual buses connect only within a
process) and publishing to Mosquitto. The ingest service stores the event in TimescaleDB, the
rules worker raises the ``crash`` alert and the delivery worker POSTs it to a receiver here,
which records when it arrived; a resolver then resolves the alert (``crash`` keeps one open
alert per vehicle), so the vehicle's next crash raises a new one. The services run as threads
of this process, or as the deployed commands (``can2care ingest``, ``can2care rules run``,
which delivers webhooks too) in processes of their own.

Each crash is paired with its alert by the event's time: the agent stamps the event with the
crash frame's time, and the alert's details carry it (``event_time_ms``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from can2care.devservices._proc import free_port

__all__ = ["Crash", "CrashChain", "CrashTiming", "Webhook"]

log = logging.getLogger(__name__)

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "agent.example.toml"
SECRET = "crash-chain-secret"
_BURST_S = 0.01  # the traffic is sent in bursts of this much bus time
# An alert's event time (the frame's bus timestamp, taken in the send) is this close after
# the crash frame's send time; a vehicle's crashes are further apart (`CrashChain.crash`).
_MATCH_MS = (-2, 50)
# A vehicle's next crash waits this long after the cooldown: the ACU's 50 ms frames must show
# the airbag at rest again, or the next one is no rising edge.
_REARM_S = 0.15


@dataclass(frozen=True, slots=True)
class Crash:
    """A crash frame sent: which vehicle, when (``time.time()`` just before the send)."""

    vehicle: str
    sent: float
    counter: int


@dataclass(frozen=True, slots=True)
class Webhook:
    """A ``raised`` delivery of a crash alert as the receiver got it."""

    arrived: float  # time.time() when the request reached the receiver
    alert_id: int
    vehicle: str
    event_time_ms: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CrashTiming:
    """One crash's hops in seconds since the epoch (None: it did not get there)."""

    crash: Crash
    at_broker: float | None  # the event at an MQTT subscriber of the agent's topic
    stored: float | None  # the event row committed by the ingest service
    committed: float | None  # the alert committed by the rules worker
    webhook: Webhook | None
    sequence: int | None  # the event's sequence number

    @property
    def total_ms(self) -> float | None:
        if self.webhook is None:
            return None
        return (self.webhook.arrived - self.crash.sent) * 1000


class _Receiver:
    """A webhook receiver on a loopback port: records each request with its arrival time."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.raised: list[Webhook] = []
        self.requests = 0
        self.bad = 0
        self.resolve: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.record(arrived, body, self.headers.get("X-Can2care-Signature", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def record(self, arrived: float, body: bytes, signed: str) -> None:
        from rules.webhook import verify

        document = json.loads(body)
        alert = document.get("alert", {})
        with self.lock:
            self.requests += 1
            if not verify(body, SECRET, signed):
                self.bad += 1
                return
            if document.get("event") != "raised" or alert.get("rule_id") != "crash":
                return
            hook = Webhook(
                arrived,
                int(alert["id"]),
                str(alert["vehicle_id"]),
                int(alert["details"]["event_time_ms"]),
                document,
            )
            self.raised.append(hook)
            self.lock.notify_all()
        self.resolve.put(hook.alert_id)


class _Traffic(threading.Thread):
    """The demo EV's bus traffic onto a virtual channel in real time, over and over."""

    def __init__(self, channel: str, seed: int, stop: threading.Event) -> None:
        super().__init__(name=f"traffic-{channel}", daemon=True)
        from dbc import demo_catalogue
        from simulators import TrafficGenerator, VehicleConfig, simulate

        drive = simulate(VehicleConfig(cycle="urban", duration=120.0, seed=seed))
        frames = TrafficGenerator(drive.trace, demo_catalogue().database).all_frames()
        self.frames = frames
        self.offsets = frames.timestamps - frames.timestamps[0]
        self.channel = channel
        self.stop = stop
        self.sent = 0

    def run(self) -> None:
        import can

        f, offsets = self.frames, self.offsets.tolist()
        bus = can.Bus(interface="virtual", channel=self.channel)
        span = offsets[-1] + _BURST_S
        start = time.monotonic()
        i, lap = 0, 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic() - start
                while offsets[i] + lap <= now:
                    n = int(f.lengths[i])
                    bus.send(
                        can.Message(
                            arbitration_id=int(f.ids[i]),
                            is_extended_id=bool(f.flags[i] & 1),
                            is_fd=bool(f.flags[i] & 2),
                            dlc=n,
                            data=f.data[i, :n].tobytes(),
                            check=False,
                        )
                    )
                    self.sent += 1
                    i += 1
                    if i == len(offsets):
                        i, lap = 0, lap + span
                self.stop.wait(_BURST_S)
        finally:
            bus.shutdown()


@dataclass
class _Vehicle:
    name: str
    agent: Any
    source: Any
    bus: Any  # the crash sender's handle on the vehicle's channel
    thread: threading.Thread
    traffic: _Traffic
    crashes: int = 0
    last_sent: float = 0.0
    open_alert: threading.Event = field(default_factory=threading.Event)


class CrashChain:
    """The agents, their buses, the services and the receiver; a context manager."""

    def __init__(
        self,
        db_url: str,
        mqtt_port: int,
        workdir: Path,
        *,
        vehicles: tuple[str, ...] = ("crash-1",),
        processes: bool = False,
        cooldown_s: float = 0.2,
        agent_latency_ms: int = 50,
        token: str = "bench",
    ) -> None:
        self.db_url = db_url
        self.mqtt_port = mqtt_port
        self.workdir = workdir
        self.names = vehicles
        self.processes = processes
        self.cooldown_s = cooldown_s
        self.agent_latency_ms = agent_latency_ms
        self.token = token  # names the MQTT clients and group, apart from others on the broker
        self.receiver = _Receiver()
        self.crashes: list[Crash] = []
        self.vehicles: dict[str, _Vehicle] = {}
        self._stop = threading.Event()
        self._children: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        self._closers: list[Any] = []
        self._broker_times: dict[tuple[str, int], float] = {}
        self._subscriber: Any = None

    # -- start and stop -------------------------------------------------------------------

    def __enter__(self) -> CrashChain:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        from cloud_ingest.storage import Vehicle, migrate, register_vehicles
        from rules.delivery import add_webhook
        from rules.webhook import WebhookSpec

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            migrate(conn)
            register_vehicles(conn, [Vehicle(v, region="bench") for v in self.names])
            add_webhook(
                conn,
                WebhookSpec(
                    "rescue-desk", self.receiver.url, SECRET,
                    min_severity="critical", categories=frozenset({"rescue"}),
                    rate_per_minute=10_000,
                ),
            )  # fmt: skip
        self.receiver.thread.start()
        resolver = threading.Thread(target=self._resolve, name="resolver", daemon=True)
        resolver.start()
        self._threads.append(resolver)
        self._start_subscriber()
        if self.processes:
            self._start_processes()
        else:
            self._start_threads()
        for number, name in enumerate(self.names):
            self._start_vehicle(name, number)

    def _start_subscriber(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from edge_agent.wire import WireError, decode_event

        subscribed = threading.Event()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            at = time.time()
            try:
                event = decode_event(bytes(message.payload))
            except WireError:
                return  # not an agent's event (another client on the broker)
            self._broker_times[(event.vehicle_id, event.time_ms)] = at

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"crash-chain-watch-{self.token}",
            protocol=mqtt.MQTTv5,
        )
        client.on_message = on_message
        client.on_subscribe = lambda *a: subscribed.set()
        client.connect("127.0.0.1", self.mqtt_port)
        client.loop_start()
        client.subscribe("v1/+/events", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the watching subscriber did not subscribe")
        self._subscriber = client

    def _start_threads(self) -> None:
        from cloud_ingest.ingest import IngestService, load_ingest_config
        from rules.delivery import DeliveryWorker
        from rules.worker import RulesWorker, WorkerConfig

        config = load_ingest_config(None, env={}, overrides=self._ingest_overrides())
        ingest = IngestService(config)
        self._closers.append(ingest.stop)
        ingest.start()
        worker = RulesWorker(WorkerConfig(database_url=self.db_url))
        thread = threading.Thread(target=worker.run, args=(self._stop,), name="rules", daemon=True)
        thread.start()
        self._threads.append(thread)
        delivery = DeliveryWorker(self.db_url)
        self._closers.append(lambda: delivery.stop(10))
        delivery.start()

    def _ingest_overrides(self) -> dict[str, Any]:
        return {
            "database.url": self.db_url,
            "mqtt.host": "127.0.0.1",
            "mqtt.port": self.mqtt_port,
            "mqtt.username": None,
            "mqtt.client_id": f"crash-chain-ingest-{self.token}",
            "mqtt.group": f"crash-chain-{self.token}",
            "http.port": 0,
        }

    def _start_processes(self) -> None:
        env = dict(os.environ, CAN2CARE_DATABASE_URL=self.db_url)
        log_dir = self.workdir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        commands = {
            "ingest": [
                "ingest", "--database", self.db_url,
                "--broker", f"127.0.0.1:{self.mqtt_port}",
                "--group", f"crash-chain-{self.token}",
                "--client-id", f"crash-chain-ingest-{self.token}", "--http-port", "0",
            ],
            "rules": ["rules", "run", "--database", self.db_url],
        }  # fmt: skip
        for name, args in commands.items():
            with (log_dir / f"{name}.log").open("wb") as out:
                child = subprocess.Popen(
                    [sys.executable, "-m", "can2care", *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self._children.append(child)
        # Ready when the ingest service holds its subscription (its session on the broker)
        # and the rules worker listens; both say so on their log.
        deadline = time.monotonic() + 60
        for name, needle in (("ingest", "Ctrl-C stops"), ("rules", "Ctrl-C stops")):
            path = log_dir / f"{name}.log"
            while needle not in path.read_text(errors="replace"):
                if time.monotonic() > deadline or any(c.poll() is not None for c in self._children):
                    raise RuntimeError(f"{name} did not start:\n{path.read_text()[-2000:]}")
                time.sleep(0.1)

    def _start_vehicle(self, name: str, number: int) -> None:
        import can

        from edge_agent.agent import Agent, BusSource
        from edge_agent.config import load_config

        channel = f"crash-chain-{name}"
        state = self.workdir / name
        state.mkdir(parents=True, exist_ok=True)
        config = load_config(
            EXAMPLE_CONFIG,
            env={},
            overrides={
                "vehicle.id": name,
                "can.interface": "virtual",
                "can.channel": channel,
                "mqtt.host": "127.0.0.1",
                "mqtt.port": self.mqtt_port,
                "mqtt.username": None,
                "mqtt.tls": False,
                "mqtt.reconnect_min_s": 0.2,
                "outbox.path": str(state / "outbox.sqlite"),
                "status.file": None,
                "crash.cooldown_s": self.cooldown_s,
                "batching.max_latency_ms": self.agent_latency_ms,
            },
        )
        agent = Agent(config)
        source = BusSource(can.Bus(interface="virtual", channel=channel), config.batching)
        thread = threading.Thread(
            target=agent.run, args=(source, self._stop), name=f"agent-{name}", daemon=True
        )
        traffic = _Traffic(channel, seed=number + 1, stop=self._stop)
        sender = can.Bus(interface="virtual", channel=channel)
        self.vehicles[name] = _Vehicle(name, agent, source, sender, thread, traffic)
        thread.start()
        traffic.start()

    def close(self) -> None:
        self._stop.set()
        self.receiver.resolve.put(None)
        for vehicle in self.vehicles.values():
            vehicle.source.stop()
            vehicle.thread.join(5)
            vehicle.traffic.join(5)
            vehicle.agent.close(drain_s=1)
            vehicle.bus.shutdown()
        for thread in self._threads:
            thread.join(10)
        for closer in reversed(self._closers):
            closer()
        for child in self._children:
            child.terminate()
        for child in self._children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._subscriber is not None:
            self._subscriber.loop_stop()
            self._subscriber.disconnect()
        self.receiver.server.shutdown()
        self.receiver.server.server_close()

    # -- crashes --------------------------------------------------------------------------

    def warm(self, timeout: float = 30.0) -> bool:
        """Wait until every vehicle's first telemetry is stored (the chain carries data)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(DISTINCT vehicle_id) FROM telemetry_batch"
                ).fetchone()
                if row is not None and row[0] >= len(self.names):
                    return True
                time.sleep(0.1)
        return False

    def crash(self, name: str) -> Crash:
        """Send the ACU's crash frame (airbag deployed) on the vehicle's bus, now.

        The vehicle's previous crash alert must be resolved first (`wait_resolved`): the
        ``crash`` rule keeps one open alert per vehicle. A crash within the agent's cooldown of
        the vehicle's previous one waits until it is over.
        """
        import can

        vehicle = self.vehicles[name]
        time.sleep(max(0.0, vehicle.last_sent + self.cooldown_s + _REARM_S - time.time()))
        vehicle.crashes += 1
        message = can.Message(
            arbitration_id=_airbag_frame_id(),
            is_extended_id=False,
            dlc=8,
            data=_airbag_payload(vehicle.crashes),
        )
        vehicle.open_alert.set()
        sent = time.time()
        vehicle.bus.send(message)
        vehicle.last_sent = sent
        crash = Crash(name, sent, vehicle.crashes)
        self.crashes.append(crash)
        return crash

    def wait_webhook(self, crash: Crash, timeout: float) -> Webhook | None:
        """The crash's ``raised`` webhook, waiting up to ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        with self.receiver.lock:
            while True:
                hook = self._match(crash)
                left = deadline - time.monotonic()
                if hook is not None or left <= 0:
                    return hook
                self.receiver.lock.wait(left)

    def wait_resolved(self, name: str, timeout: float) -> bool:
        """Wait until the vehicle has no open crash alert (its webhook came and was resolved)."""
        deadline = time.monotonic() + timeout
        vehicle = self.vehicles[name]
        while vehicle.open_alert.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _match(self, crash: Crash) -> Webhook | None:
        low, high = crash.sent * 1000 + _MATCH_MS[0], crash.sent * 1000 + _MATCH_MS[1]
        for hook in self.receiver.raised:
            if hook.vehicle == crash.vehicle and low <= hook.event_time_ms <= high:
                return hook
        return None

    def _resolve(self) -> None:
        from rules.store import resolve

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while (alert_id := self.receiver.resolve.get()) is not None:
                alert = resolve(conn, alert_id, "rescue dispatched", actor="crash-chain")
                self.vehicles[alert.vehicle_id].open_alert.clear()

    # -- the figures ----------------------------------------------------------------------

    def timings(self, *, commit_times: bool = True) -> list[CrashTiming]:
        """Every crash's hops. With ``commit_times`` the database must track commit timestamps
        (``track_commit_timestamp = on``); without, the rows' transaction start times stand in."""
        with self.receiver.lock:
            hooks = {id(c): self._match(c) for c in self.crashes}
        out = []
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            for crash in self.crashes:
                hook = hooks[id(crash)]
                stored = committed = None
                sequence = None
                at_broker = None
                if hook is not None:
                    stored, sequence = _event_stored(conn, hook, commit_times)
                    committed = _alert_committed(conn, hook.alert_id, commit_times)
                    at_broker = self._broker_times.get((crash.vehicle, hook.event_time_ms))
                out.append(CrashTiming(crash, at_broker, stored, committed, hook, sequence))
        return out


def _event_stored(
    conn: psycopg.Connection[Any], hook: Webhook, commit_times: bool
) -> tuple[float | None, int | None]:
    when = "pg_xact_commit_timestamp(xmin)" if commit_times else "received_at"
    row = conn.execute(
        f"SELECT extract(epoch FROM {when})::float8, sequence FROM event"
        " WHERE vehicle_id = %s AND time = to_timestamp(%s / 1000.0)",
        (hook.vehicle, hook.event_time_ms),
    ).fetchone()
    return (None, None) if row is None else (row[0], int(row[1]))


def _alert_committed(
    conn: psycopg.Connection[Any], alert_id: int, commit_times: bool
) -> float | None:
    when = "pg_xact_commit_timestamp(xmin)" if commit_times else "at"
    row = conn.execute(
        f"SELECT extract(epoch FROM {when})::float8 FROM alert_audit"
        " WHERE alert_id = %s AND action = 'raised'",
        (alert_id,),
    ).fetchone()
    return None if row is None else row[0]


_codec: Any = None


def _airbag_codec() -> Any:
    global _codec
    if _codec is None:
        from dbc import demo_catalogue
        from simulators import FrameEncoder

        _codec = FrameEncoder(demo_catalogue().database).message("ACU_CrashStatus")
    return _codec


def _airbag_frame_id() -> int:
    return int(_airbag_codec().frame_id)


def _airbag_payload(counter: int) -> bytes:
    """ACU_CrashStatus of a frontal crash: airbags deployed, severity 2 of 3, 35 km/h delta-v."""
    values = {
        "AirbagDeployed": 1,
        "CrashSeverity": 2,
        "CrashType": 1,
        "DriverFrontAirbagDeployed": 1,
        "PassengerFrontAirbagDeployed": 1,
        "BeltPretensionersFired": 1,
        "CrashEventCounter": counter % 256,
        "CrashDeltaV": 35.0,
    }
    return bytes(_airbag_codec().encode(values, 1)[0])
