"""Random and mutated payloads thrown at the decoder and the ingest path.

The pure part classifies well over 100,000 payloads, seeded and deterministic: random bytes,
and valid telemetry, events and status documents with bits flipped, bytes inserted, deleted
or spliced, truncated, header fields changed, compressed bodies mutated inside, and zlib
bombs up to the body limit. Nothing may raise; each payload is rows or `Rejected` with a
reason and a detail. A mutation can leave a payload valid, and then it is rows like any other.

The end-to-end part publishes a few thousand of them, interleaved with valid batches, to the
service on the private broker and database: each valid message is stored once, each invalid
one is a dead letter with its reason and its exact bytes, and the service stays healthy.
"""

from __future__ import annotations

import json
import random
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from can2care.devservices import MqttEndpoint
from cloud_ingest.ingest import IngestService, Limits, Outcome, Reason, Rejected, classify
from cloud_ingest.storage import EventRow, StatusRow, TelemetryRows, Vehicle, register_vehicles
from edge_agent.wire import (
    MAX_BODY_BYTES,
    Capture,
    CrashEvent,
    Position,
    Series,
    TelemetryBatch,
    encode_event,
    encode_telemetry,
)
from edge_agent.wire._varint import encode_sint, encode_uint, read_sint, read_uint
from tests.edge_agent.wire._helpers import MIXED, batches

from ._harness import (
    Publisher,
    ingest_config,
    prepare_database,
    running_service,
    schema,
    topic_prefix,
    wait_until,
)

PURE_PAYLOADS = 110_000
HOUR_MS = 3_600_000
VEHICLES = ("veh-1", "veh-2")  # may send the demo catalogue
ANY_CATALOGUE = "veh-3"  # may send any catalogue known here
KINDS = ("telemetry", "events", "status")


class _Registry:
    """The registry the end-to-end test's database holds: `VEHICLES` and `ANY_CATALOGUE`."""

    def __init__(self, catalogue_id: str) -> None:
        self._allowed = frozenset({catalogue_id})

    def catalogues(self, vehicle_id: str) -> frozenset[str] | None:
        if vehicle_id == ANY_CATALOGUE:
            return frozenset()
        return self._allowed if vehicle_id in VEHICLES else None


def _classifier(prefix: str) -> Callable[[str, bytes, int], Outcome]:
    s = schema()
    registry = _Registry(s.catalogue_id)
    schemas = {s.catalogue_id: s}
    limits = Limits(prefix=prefix)

    def run(topic: str, payload: bytes, received_ms: int) -> Outcome:
        return classify(
            topic,
            payload,
            received_ms=received_ms,
            registry=registry,
            schemas=schemas,
            limits=limits,
        )

    return run


# -- valid payloads ------------------------------------------------------------------------------


def valid_telemetry(rng: random.Random, sequence: int, base_ms: int) -> bytes:
    """A valid demo-catalogue batch: 0 to 6 signals, shared or own times, maybe a capture."""
    s = schema()
    chosen = rng.sample(s.signals, rng.choice((0, 1, 1, 2, 3, 6)))
    made: list[Series] = []
    for spec in chosen:
        if made and rng.random() < 0.4:
            times = made[rng.randrange(len(made))].times_ms  # a time reference on the wire
        else:
            n = rng.choice((1, 2, 5, 20, 50, 100))
            start = base_ms + rng.randrange(0, 1000)
            steps = [rng.choice((0, 9, 10, 10, 11, 100)) for _ in range(n)]
            times = start + np.cumsum(np.array(steps, np.int64)) - steps[0]
        if spec.kind == "float32":
            floats = [rng.uniform(-1000, 1000) for _ in range(len(times))]
            raw = np.array([struct.unpack("<i", struct.pack("<f", f))[0] for f in floats])
        else:
            raw = np.array([rng.randint(spec.raw_min, spec.raw_max) for _ in range(len(times))])
        made.append(Series(spec.number, np.asarray(times, np.int64), raw.astype(np.int64)))
    capture = None
    if rng.random() < 0.3:
        capture = Capture(rng.choice(("hard_braking", "crash", "ü")), base_ms + 500)
    batch = TelemetryBatch(s.catalogue_id, sequence, tuple(made), capture)
    return encode_telemetry(batch, s, compress=rng.random() < 0.8)


def valid_event(rng: random.Random, vehicle: str, sequence: int, base_ms: int) -> bytes:
    position = Position(48.0 + rng.random(), 11.0 + rng.random(), base_ms - 1000)
    event = CrashEvent(
        vehicle_id=vehicle,
        vin=rng.choice((None, "WVWZZZ1JZXW000001")),
        sequence=sequence,
        time_ms=base_ms + rng.randrange(0, 10_000),
        trigger=rng.choice(("airbag", "acceleration")),
        severity=rng.choice(("MINOR", "MODERATE", "SEVERE")),
        position=rng.choice((None, position)),
        heading_deg=rng.choice((None, 87.5)),
        previous_positions=rng.choice(((), (position,), (position, position))),
        propulsion="electric",
        occupants=rng.choice((None, 0, 2)),
        peak_acceleration=rng.choice((None, 312.5)),
        delta_v=rng.choice((None, 42.0)),
        catalogue_id=schema().catalogue_id,
    )
    return encode_event(event)


def valid_status(rng: random.Random, vehicle: str, base_ms: int) -> bytes:
    document: dict[str, Any] = {
        "state": rng.choice(("online", "offline")),
        "time_ms": base_ms + rng.randrange(0, 10_000),
    }
    if rng.random() < 0.5:
        document["vehicle_id"] = vehicle
    if rng.random() < 0.3:
        document["agent"] = {"version": "1.2.3", "reason": "connect"}
    return json.dumps(document).encode()


# -- mutations -----------------------------------------------------------------------------------

_INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFE, 0xFF)


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 4))):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    value = rng.choice(_INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
    out[rng.randrange(len(out))] = value
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.choice((1, 1, 2, 8, 64))) + data[at:]


def delete(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.choice((1, 1, 2, 8, 64)) :]


def duplicate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    end = min(len(data), at + rng.choice((1, 4, 16, 256)))
    return data[:end] + data[at:end] + data[end:]


BYTE_MUTATIONS = (flip_bits, set_byte, truncate, insert, delete, duplicate)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = rng.choice(BYTE_MUTATIONS)(rng, data)
    return data


@dataclass(frozen=True, slots=True)
class Header:
    """A telemetry payload taken apart: header fields and the (inflated) body."""

    version: int
    kind: int
    flags: int
    catalogue: bytes
    sequence: bytes  # the varint as sent
    base: bytes  # the zigzag varint as sent
    capture: bytes  # trigger varint, name length varint, name, as sent ("" without)
    body: bytes  # inflated when the flags say zlib

    @classmethod
    def parse(cls, payload: bytes) -> Header:
        flags = payload[2]
        _, pos = read_uint(payload, 11)
        _, after_base = read_sint(payload, pos)
        sequence, base = payload[11:pos], payload[pos:after_base]
        end = after_base
        if flags & 1:
            _, end = read_sint(payload, end)
            length, end = read_uint(payload, end)
            end += length
        body = payload[end:]
        if flags & 0b110:
            body = zlib.decompress(body)
        return cls(payload[0], payload[1], flags, payload[3:11], sequence, base,
                   payload[after_base:end], body)  # fmt: skip

    def build(self, *, compress: bool | None = None) -> bytes:
        """The payload; ``compress`` None: as the flags say (zlib bit), else forced."""
        zipped = bool(self.flags & 0b110) if compress is None else compress
        body = zlib.compress(self.body, 9) if zipped else self.body
        return (
            bytes((self.version, self.kind, self.flags))
            + self.catalogue
            + self.sequence
            + self.base
            + self.capture
            + body
        )


def _odd_varint(rng: random.Random) -> bytes:
    """A varint that is valid, too large, too long or not in its shortest form."""
    return rng.choice(
        (
            encode_uint(rng.randrange(2**63)),
            encode_uint(2**63),
            encode_uint(2**64 - 1),
            encode_uint(rng.randrange(300)),
            b"\x80\x00",
            b"\xff" * 9 + b"\x02",
            b"\xff" * 11,
            b"\x80",
            b"",
        )
    )


def mutate_header(rng: random.Random, h: Header) -> bytes:
    """One header field (or the inflated body) of a valid telemetry payload changed."""
    field = rng.randrange(9)
    if field == 0:
        h = replace(h, version=rng.choice((0, 2, 255, rng.randrange(256))))
    elif field == 1:
        h = replace(h, kind=rng.choice((0, 2, 3, 255)))
    elif field == 2:
        h = replace(h, flags=rng.randrange(256))
    elif field == 3:
        catalogue = rng.choice((rng.randbytes(8), bytes.fromhex(MIXED.catalogue_id)))
        h = replace(h, catalogue=catalogue)
    elif field == 4:
        h = replace(h, sequence=_odd_varint(rng))
    elif field == 5:
        base = encode_sint(rng.choice((0, -1, 2**62, -(2**63), rng.randrange(-(2**63), 2**63))))
        h = replace(h, base=rng.choice((base, _odd_varint(rng))))
    elif field == 6:  # a capture: its name as random bytes, its length right or wrong
        name = rng.choice((rng.randbytes(rng.randrange(8)), b"ok\x00", "é".encode(), b"\xc3"))
        length = rng.choice((len(name), len(name) + 1, 256, 300))
        trigger = encode_sint(rng.choice((0, 1_700_000_000_000, 2**62)))
        h = replace(h, flags=h.flags | 1, capture=trigger + encode_uint(length) + name)
    elif field == 7:  # the body mutated inside, then compressed as before
        h = replace(h, body=mutate_bytes(rng, h.body))
    else:  # the body as it is, but the zlib flag and the stream disagree
        return h.build(compress=not bool(h.flags & 0b110))
    return h.build()


def zlib_bomb(rng: random.Random) -> bytes:
    """A header, then a body that inflates to about the 16 MiB limit (below, at or above)."""
    size = MAX_BODY_BYTES + rng.choice((-1, 0, 1, 4096))
    if rng.random() < 0.5:
        body = b"\x00" * size  # zero series, then millions of stray bytes
    else:  # one series of a 1-bit signal, its sample count claiming (nearly) everything
        number = next(s.number for s in schema().signals if s.length == 1)
        n = rng.choice((size // 2 - 2, size // 2 + 100, 2**40))
        directory = encode_uint(1) + encode_uint(number) + encode_uint(n) + encode_uint(0)
        body = directory + b"\x00" * (size - len(directory))
    header = bytes((1, 1, 2)) + bytes.fromhex(schema().catalogue_id) + encode_uint(1)
    return header + encode_sint(1_700_000_000_000) + zlib.compress(body, 9)


def mutate_json(rng: random.Random, payload: bytes, *, prefix: bytes) -> bytes:
    """A key of the JSON object after ``prefix`` removed, retyped, duplicated or added."""
    document = json.loads(payload[len(prefix) :])
    assert isinstance(document, dict)
    key = rng.choice(list(document))
    odd: Any = rng.choice(
        (None, True, -1, 0, 2**63, 2**64, 1.5, 1e308, "", "x" * 300, [], {}, [1], "\ud800",
         "\x00", "veh-1", "veh-2", "online", "MINOR", -(2**63) - 1, "a\x00b")
    )  # fmt: skip
    action = rng.randrange(5)
    if action == 0:
        del document[key]
    elif action == 1:
        document[key] = odd
    elif action == 2:
        document[rng.choice(("extra", "ü", "\ud800", ""))] = odd
    elif action == 3:  # nested as deep as a parser can be pushed
        depth = rng.choice((10, 1000, 100_000))
        text = json.dumps(document)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        return prefix + text.encode()
    else:  # a key twice, or a constant JSON does not have
        text = json.dumps(document)
        token = rng.choice(("NaN", "Infinity", "-Infinity", json.dumps(document[key])))
        return prefix + (text[:-1] + f", {json.dumps(key)}: {token}}}").encode()
    return prefix + json.dumps(document, ensure_ascii=rng.random() < 0.5).encode(
        "utf-8", "surrogatepass"
    )


# -- the fuzzer ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One payload to classify: how it was made, its topic and bytes."""

    how: str
    topic: str
    payload: bytes


class Fuzzer:
    """Random and mutated payloads around a corpus of valid ones, all from one seed."""

    def __init__(self, seed: int, prefix: str, base_ms: int, corpus_size: int = 60) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        rng = self.rng
        self.telemetry = [
            valid_telemetry(rng, rng.randrange(2**40), base_ms + i * 5_000)
            for i in range(corpus_size)
        ]
        self.telemetry.append(encode_telemetry(TelemetryBatch(schema().catalogue_id, 1, ()),
                                               schema()))  # fmt: skip
        self.headers = [Header.parse(p) for p in self.telemetry]
        self.events = [
            valid_event(rng, rng.choice(VEHICLES), i, base_ms + i * 1000) for i in range(20)
        ]
        self.statuses = [valid_status(rng, rng.choice(VEHICLES), base_ms) for _ in range(20)]

    def topic(self, kind: str) -> str:
        """Mostly veh-1's topic of ``kind``; sometimes another kind or vehicle, or an unknown."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            kind = rng.choice(KINDS)
        vehicle = (
            "veh-1" if roll < 0.75 else "veh-2" if roll < 0.85 else "veh-3" if roll < 0.98
            else "veh-9"
        )  # fmt: skip
        return f"{self.prefix}/{vehicle}/{kind}"

    def case(self) -> Case:
        rng = self.rng
        roll = rng.random()
        if roll < 0.10:
            data = rng.randbytes(rng.choice((0, 1, 2, 3, 8, 20, 100, 1000)))
            return Case("random bytes", self.topic(rng.choice(KINDS)), data)
        if roll < 0.18:
            head = rng.choice((b"\x01\x01", b"\x01\x02", b"\x01\x01\x02", b"{"))
            data = head + rng.randbytes(rng.choice((0, 5, 30, 300)))
            return Case("random after a header", self.topic(rng.choice(KINDS)), data)
        if roll < 0.48:
            data = mutate_bytes(rng, rng.choice(self.telemetry))
            return Case("telemetry bytes", self.topic("telemetry"), data)
        if roll < 0.70:
            data = mutate_header(rng, rng.choice(self.headers))
            return Case("telemetry header", self.topic("telemetry"), data)
        if roll < 0.73:
            a, b = rng.choice(self.telemetry), rng.choice(self.telemetry)
            data = a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1) :]
            return Case("telemetry splice", self.topic("telemetry"), data)
        if roll < 0.80:
            data = mutate_bytes(rng, rng.choice(self.events))
            return Case("event bytes", self.topic("events"), data)
        if roll < 0.87:
            data = mutate_json(rng, rng.choice(self.events), prefix=b"\x01\x02")
            return Case("event json", self.topic("events"), data)
        if roll < 0.93:
            data = mutate_bytes(rng, rng.choice(self.statuses))
            return Case("status bytes", self.topic("status"), data)
        data = mutate_json(rng, rng.choice(self.statuses), prefix=b"")
        return Case("status json", self.topic("status"), data)


def storable_text(text: str) -> bool:
    """Text PostgreSQL takes: UTF-8 encodable, no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _json_has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_json_has_nul(k) or _json_has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_json_has_nul(v) for v in value)
    return False


def holds_nul(outcome: Outcome) -> bool:
    """Rows the database would refuse: NUL in text or in a JSON string (jsonb has no U+0000);
    the classifier must have rejected them."""
    if isinstance(outcome, TelemetryRows):
        return "\x00" in (outcome.batch.capture_name or "")
    if isinstance(outcome, EventRow):
        return _json_has_nul(json.loads(outcome.payload))
    if isinstance(outcome, StatusRow):
        return _json_has_nul(json.loads(outcome.document))
    return False


def check(case: Case, outcome: Outcome, received_ms: int, limits: Limits) -> str:
    """``outcome`` is well formed for ``case``; its label for the tally."""
    vehicle, kind = case.topic.split("/")[-2:]
    if isinstance(outcome, Rejected):
        assert isinstance(outcome.reason, Reason), case
        assert outcome.detail and storable_text(outcome.detail), (case, outcome)
        return outcome.reason.value
    first: datetime | None
    last: datetime | None
    if isinstance(outcome, TelemetryRows):
        assert kind == "telemetry" and outcome.batch.vehicle_id == vehicle, case
        assert outcome.batch.samples == sum(s.n for s in outcome.series)
        first, last = outcome.batch.first_time, outcome.batch.last_time
    elif isinstance(outcome, EventRow):
        assert kind == "events" and outcome.vehicle_id == vehicle, case
        first = last = outcome.time
    else:
        assert isinstance(outcome, StatusRow), (case, outcome)
        assert kind == "status" and outcome.vehicle_id == vehicle, case
        assert outcome.state in ("online", "offline")
        first = last = outcome.time
    if first is not None and last is not None:
        assert first.timestamp() * 1000 >= limits.min_ms, case
        assert last.timestamp() * 1000 <= received_ms + limits.max_future_ms, case
    assert not holds_nul(outcome), case
    return "stored"


# -- the pure part -----------------------------------------------------------------------------


def test_over_100000_random_and_mutated_payloads_are_rows_or_dead_letters() -> None:
    received_ms = 1_772_366_400_000  # 2026-03-01 12:00 UTC
    fuzzer = Fuzzer(20260301, "v1", received_ms - HOUR_MS)
    run = _classifier("v1")
    limits = Limits(prefix="v1")
    tally: Counter[tuple[str, str]] = Counter()
    crashes: list[tuple[Case, BaseException]] = []
    started = time.process_time()
    cases = [Case("zlib bomb", "v1/veh-1/telemetry", zlib_bomb(fuzzer.rng)) for _ in range(8)]
    while len(cases) < PURE_PAYLOADS:
        cases.append(fuzzer.case())
    for case in cases:
        try:
            outcome = run(case.topic, case.payload, received_ms)
        except Exception as exc:  # collected, so the failure shows every reproducer
            crashes.append((case, exc))
            continue
        tally[case.how, check(case, outcome, received_ms, limits)] += 1
    cpu_s = time.process_time() - started
    assert not crashes, [(c.how, c.topic, c.payload.hex(), repr(e)) for c, e in crashes[:5]]
    assert sum(tally.values()) == PURE_PAYLOADS
    hows = {how for how, _ in tally}
    assert len(hows) == 10
    for how in hows:  # every generator makes dead letters
        assert sum(n for (h, label), n in tally.items() if h == how and label != "stored"), how
    reasons = {label for _, label in tally}
    assert reasons >= {r.value for r in Reason} - {"bad_topic", "storage_refused"}, tally
    stored = sum(n for (_, label), n in tally.items() if label == "stored")
    assert 1_000 < stored < PURE_PAYLOADS // 2, tally  # mutations that stay valid: rows
    assert cpu_s < 60, f"{cpu_s:.1f} s of CPU"  # about 7 s on a development machine


def test_bad_topics_are_rejected_whatever_the_payload() -> None:
    rng = random.Random(7)
    run = _classifier("v1")
    fuzzer = Fuzzer(7, "v1", 1_700_000_000_000, corpus_size=5)
    levels = ("v1", "veh-1", "telemetry", "events", "status", "", "+", "#", "$SYS", "v2")
    for _ in range(2_000):
        topic = "/".join(rng.choice(levels) for _ in range(rng.choice((1, 2, 4, 5))))
        outcome = run(topic, fuzzer.case().payload, 1_700_000_000_000)
        assert isinstance(outcome, Rejected)
        assert outcome.reason is Reason.BAD_TOPIC and repr(topic) in outcome.detail


_pure = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_pure
@given(payload=st.binary(max_size=400), kind=st.sampled_from(KINDS))
def test_any_bytes_on_any_topic(payload: bytes, kind: str) -> None:
    outcome = _classifier("v1")(f"v1/veh-1/{kind}", payload, 1_700_000_000_000)
    check(Case("hypothesis", f"v1/veh-1/{kind}", payload), outcome, 1_700_000_000_000, Limits())


@_pure
@given(
    batch=st.deferred(lambda: batches(schema())),
    at=st.integers(0, 10_000),
    value=st.integers(0, 255),
    cut=st.booleans(),
)
def test_any_valid_batch_and_its_single_byte_changes(
    batch: TelemetryBatch, at: int, value: int, cut: bool
) -> None:
    received_ms = 1_700_000_000_000
    run = _classifier("v1")
    payload = encode_telemetry(batch, schema())
    outcome = run("v1/veh-1/telemetry", payload, received_ms)
    check(Case("valid", "v1/veh-1/telemetry", payload), outcome, received_ms, Limits())
    if isinstance(outcome, Rejected):  # a valid encoding is refused for its times or a NUL
        assert outcome.reason is Reason.ABSURD_TIME or "NUL" in outcome.detail, outcome
    else:
        assert isinstance(outcome, TelemetryRows) and outcome.batch.samples == batch.samples
    at %= len(payload)
    changed = payload[:at] if cut else payload[:at] + bytes((value,)) + payload[at + 1 :]
    case = Case("changed", "v1/veh-1/telemetry", changed)
    check(case, run(case.topic, changed, received_ms), received_ms, Limits())


# -- the ingest path end to end -------------------------------------------------------------


@dataclass
class Expected:
    """What the service must have stored after the messages, in the order published."""

    batches: dict[tuple[str, int], int]  # (vehicle, sequence) -> samples of the first one
    events: set[tuple[str, int, int]]  # (vehicle, sequence, time ms)
    statuses: dict[str, int]  # vehicle -> newest time ms
    dead: Counter[tuple[str, str, bytes]]  # (topic, reason, payload)
    duplicates: Counter[str]  # kind -> messages dropped as already stored

    def add(self, topic: str, payload: bytes, outcome: Outcome) -> None:
        if isinstance(outcome, Rejected):
            self.dead[topic, outcome.reason.value, payload] += 1
        elif isinstance(outcome, TelemetryRows):
            if outcome.key in self.batches:
                self.duplicates["telemetry"] += 1
            self.batches.setdefault(outcome.key, outcome.batch.samples)
        elif isinstance(outcome, EventRow):
            key = (outcome.vehicle_id, outcome.sequence, _ms(outcome.time))
            if key in self.events:
                self.duplicates["events"] += 1
            self.events.add(key)
        else:
            assert isinstance(outcome, StatusRow)
            newest = self.statuses.get(outcome.vehicle_id)
            self.statuses[outcome.vehicle_id] = max(_ms(outcome.time), newest or -(2**63))


def _label(outcome: Outcome) -> str:
    return outcome.reason.value if isinstance(outcome, Rejected) else type(outcome).__name__


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def _plan(prefix: str, valid: int, invalid: int) -> tuple[list[tuple[str, bytes]], Expected]:
    """The messages to publish, valid ones interleaved with mutated ones, and their outcome.

    The outcome is classified here at two receipt times two minutes apart; a payload whose
    outcome depends on when it arrives (a time at the future limit) is left out.
    """
    now_ms = time.time_ns() // 1_000_000
    base_ms = now_ms - HOUR_MS
    fuzzer = Fuzzer(20261124, prefix, base_ms)
    rng = fuzzer.rng
    run = _classifier(prefix)
    expected = Expected({}, set(), {}, Counter(), Counter())
    messages: list[tuple[str, bytes]] = []
    valid_left, invalid_left, sequence = valid, invalid, 0
    while valid_left or invalid_left:
        if valid_left and rng.random() < valid_left / (valid_left + invalid_left):
            vehicle = VEHICLES[sequence % 2]
            kind = rng.choice(("telemetry",) * 8 + ("events", "status"))
            topic = f"{prefix}/{vehicle}/{kind}"
            if kind == "telemetry":
                payload = valid_telemetry(rng, 10**6 + sequence, base_ms + sequence * 5_000)
            elif kind == "events":
                payload = valid_event(rng, vehicle, 10**6 + sequence, base_ms)
            else:
                payload = valid_status(rng, vehicle, base_ms)
            sequence += 1
            valid_left -= 1
            outcome = run(topic, payload, now_ms)
            assert not isinstance(outcome, Rejected), outcome
            if isinstance(outcome, TelemetryRows):  # not taken by a mutated one before it
                assert outcome.key not in expected.batches
        else:
            case = fuzzer.case()
            topic, payload = case.topic, case.payload
            outcome = run(topic, payload, now_ms)
            if _label(outcome) != _label(run(topic, payload, now_ms + 120_000)):
                continue  # at the future limit: stored or not depends on when it arrives
            invalid_left -= 1
        messages.append((topic, payload))
        expected.add(topic, payload, outcome)
    return messages, expected


def test_the_service_dead_letters_thousands_of_bad_payloads_and_stores_the_rest(
    db_url: str, mqtt_broker: MqttEndpoint
) -> None:
    prefix = topic_prefix()
    prepare_database(db_url, list(VEHICLES))
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_vehicles(conn, [Vehicle(ANY_CATALOGUE)])
    messages, expected = _plan(prefix, valid=400, invalid=3_000)
    reasons = Counter(reason for _topic, reason, _payload in expected.dead.elements())
    # every reason but a bad topic (all topics here are well formed) and a storage refusal
    # (the classifier refuses what the database would)
    assert set(reasons) == {r.value for r in Reason} - {"bad_topic", "storage_refused"}, reasons
    assert len(expected.batches) > 320 + 50  # the valid ones and mutated ones still valid
    assert expected.duplicates["telemetry"] and expected.duplicates["events"]
    publisher = Publisher(mqtt_broker.port)
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [("client_id", "fuzz-publisher")]
    with running_service(ingest_config(db_url, mqtt_broker.port, prefix)) as service:
        for topic, payload in messages:
            info = publisher.client.publish(topic, payload, qos=1, properties=properties)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
        assert wait_until(lambda: len(publisher.acks) == len(messages), 60), "no PUBACKs"
        assert set(publisher.acks.values()) == {0}
        assert wait_until(lambda: _handled(service) >= len(messages), 120), _handled(service)
        assert wait_until(lambda: service.health()["pending_messages"] == 0, 30)
        health = service.health()
        duplicates = {
            kind: service.metrics.messages.labels(kind, "duplicate")._value.get()
            for kind in ("telemetry", "events")
        }
    publisher.close()
    assert health["healthy"], health
    assert duplicates == expected.duplicates
    _assert_stored(db_url, expected)


def _handled(service: IngestService) -> int:
    """Messages the service has stored, dropped as duplicates or dead-lettered."""
    return sum(
        int(sample.value)
        for metric in service.metrics.messages.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def _assert_stored(url: str, expected: Expected) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        batches = {
            (str(v), int(s)): int(n)
            for v, s, n in conn.execute("SELECT vehicle_id, sequence, samples FROM telemetry_batch")
        }
        series = conn.execute("SELECT coalesce(sum(n), 0) FROM telemetry_series").fetchone()
        events = {
            (str(v), int(s), _ms(t))
            for v, s, t in conn.execute("SELECT vehicle_id, sequence, time FROM event")
        }
        statuses = {
            str(v): _ms(t) for v, t in conn.execute("SELECT vehicle_id, time FROM vehicle_status")
        }
        rows = conn.execute(
            "SELECT topic, client_id, reason, detail, payload FROM dead_letter"
        ).fetchall()
    assert batches == expected.batches
    assert series is not None and int(series[0]) == sum(expected.batches.values())
    assert events == expected.events
    assert statuses == expected.statuses
    dead = Counter((str(t), str(r), bytes(p)) for t, _c, r, _d, p in rows)
    assert dead == expected.dead, (dead - expected.dead, expected.dead - dead)
    assert {c for _t, c, _r, _d, _p in rows} == {"fuzz-publisher"}
    assert all(d for _t, _c, _r, d, _p in rows)  # each says what is wrong
