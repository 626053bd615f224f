"""Flushes of classified messages: when they are due and what they write (pure)."""

from __future__ import annotations

import json
import time

from cloud_ingest.ingest import Batcher, Flush, Limits, Outcome, Reason, Received, Rejected
from cloud_ingest.ingest import classify as classify_message
from cloud_ingest.storage import EventRow, StatusRow, TelemetryRows
from edge_agent.wire import encode_event
from tests.cloud_ingest.storage._samples import T0_MS, crash

from ._harness import batch_payload, schema


class _Registry:
    def catalogues(self, vehicle_id: str) -> frozenset[str] | None:
        return frozenset() if vehicle_id.startswith("veh-") else None


def message(topic: str, payload: bytes, mid: int = 1, client_id: str | None = None) -> Received:
    return Received(topic, payload, time.time_ns() // 1_000_000, mid, 1, 0, client_id)


def outcome(received: Received) -> Outcome:
    return classify_message(
        received.topic,
        received.payload,
        received_ms=received.received_ms,
        registry=_Registry(),
        schemas={schema().catalogue_id: schema()},
        limits=Limits(prefix="v1"),
    )


def telemetry(sequence: int, samples: int = 50) -> tuple[Received, TelemetryRows]:
    received = message("v1/veh-1/telemetry", batch_payload(sequence, samples=samples), sequence)
    rows = outcome(received)
    assert isinstance(rows, TelemetryRows)
    return received, rows


def event(sequence: int = 4) -> tuple[Received, EventRow]:
    received = message("v1/veh-1/events", encode_event(crash("veh-1", sequence)), 100)
    row = outcome(received)
    assert isinstance(row, EventRow)
    return received, row


def status() -> tuple[Received, StatusRow]:
    document = json.dumps({"state": "online", "time_ms": T0_MS}).encode()
    received = message("v1/veh-1/status", document, 200)
    row = outcome(received)
    assert isinstance(row, StatusRow)
    return received, row


def garbage(mid: int = 300) -> tuple[Received, Rejected]:
    received = message("v1/veh-1/telemetry", b"\x01\x01garbage", mid, client_id="can2care-veh-1")
    rejected = outcome(received)
    assert isinstance(rejected, Rejected)
    return received, rejected


def batcher(messages: int = 10, samples: int = 1_000, latency: int = 250) -> Batcher:
    return Batcher(max_messages=messages, max_samples=samples, max_latency_ms=latency)


def test_an_empty_batcher_is_never_due() -> None:
    b = batcher()
    assert not b.due(0) and not b.due(10**12)
    assert b.wait_ms(0) is None
    assert len(b) == 0


def test_due_by_messages() -> None:
    b = batcher(messages=3)
    for sequence in range(2):
        b.add(*telemetry(sequence, samples=1), 1000)
        assert not b.due(1000)
    b.add(*garbage(), 1000)  # a dead letter counts as a message
    assert b.due(1000)
    assert len(b) == 3


def test_due_by_samples() -> None:
    b = batcher(samples=100)
    b.add(*telemetry(0, samples=60), 1000)
    assert not b.due(1000)
    b.add(*telemetry(1, samples=39), 1000)
    assert not b.due(1000)
    b.add(*status(), 1000)  # no samples
    assert not b.due(1000)
    b.add(*telemetry(2, samples=1), 1000)
    assert b.due(1000)


def test_a_single_batch_over_the_sample_limit_is_due_alone() -> None:
    b = batcher(samples=10)
    b.add(*telemetry(0, samples=50), 1000)
    assert b.due(1000)


def test_due_by_latency_from_the_first_message() -> None:
    b = batcher(latency=250)
    b.add(*telemetry(0), 1000)
    assert b.wait_ms(1000) == 250
    b.add(*telemetry(1), 1200)  # does not restart the clock
    assert b.wait_ms(1200) == 50
    assert not b.due(1249)
    assert b.due(1250)
    assert b.wait_ms(1250) == 0
    assert b.wait_ms(5000) == 0  # never negative


def test_an_event_makes_the_flush_due_at_once() -> None:
    b = batcher()
    b.add(*telemetry(0), 1000)
    assert not b.due(1000)
    b.add(*event(), 1000)
    assert b.due(1000)
    flush = b.take()
    assert flush.urgent


def test_a_status_or_a_dead_letter_is_not_urgent() -> None:
    b = batcher()
    b.add(*status(), 1000)
    b.add(*garbage(), 1000)
    assert not b.due(1000)
    assert not b.take().urgent


def test_take_returns_the_messages_in_order_and_resets() -> None:
    b = batcher(latency=100)
    items: list[tuple[Received, Outcome]] = [
        telemetry(0, samples=5),
        garbage(),
        status(),
        telemetry(1, samples=7),
        event(),
    ]
    for item in items:
        b.add(*item, 1000)
    flush = b.take()
    assert [m.mid for m in flush.messages] == [m.mid for m, _ in items]
    assert flush.outcomes == [o for _, o in items]
    assert (len(flush), flush.samples, flush.urgent) == (5, 12, True)
    assert len(b) == 0
    assert b.wait_ms(5000) is None
    assert not b.due(5000)
    b.add(*telemetry(2, samples=1), 6000)  # a new flush, a new clock
    assert b.wait_ms(6000) == 100
    again = b.take()
    assert (len(again), again.samples, again.urgent) == (1, 1, False)
    assert len(flush) == 5  # the first flush is not touched


def test_writes_sorts_rows_and_dead_letters_the_rejected() -> None:
    flush = Flush()
    items: list[tuple[Received, Outcome]] = [
        telemetry(0),
        garbage(301),
        event(),
        status(),
        telemetry(1),
        garbage(302),
    ]
    for received, result in items:
        flush.messages.append(received)
        flush.outcomes.append(result)
    writes = flush.writes()
    assert [t.key for t in writes.telemetry] == [("veh-1", 0), ("veh-1", 1)]
    assert [e.sequence for e in writes.events] == [4]
    assert [s.state for s in writes.statuses] == ["online"]
    assert len(writes.dead_letters) == 2
    for dead, (received, rejected) in zip(writes.dead_letters, [items[1], items[5]], strict=True):
        assert isinstance(rejected, Rejected)
        assert dead.topic == "v1/veh-1/telemetry"
        assert dead.client_id == "can2care-veh-1"
        assert dead.reason == Reason.MALFORMED.value == "malformed"
        assert dead.detail == rejected.detail and dead.detail
        assert dead.payload == received.payload == b"\x01\x01garbage"


def test_a_dead_letter_keeps_its_reason_and_no_client_id() -> None:
    received = message("v1/veh-9/status", b"{}")
    flush = Flush([received], [Rejected(Reason.UNKNOWN_VEHICLE, "vehicle 'veh-9' unknown")])
    (dead,) = flush.writes().dead_letters
    assert (dead.topic, dead.client_id, dead.reason) == ("v1/veh-9/status", None, "unknown_vehicle")
    assert (dead.detail, dead.payload) == ("vehicle 'veh-9' unknown", b"{}")


def test_split_gives_one_flush_per_message() -> None:
    b = batcher()
    items: list[tuple[Received, Outcome]] = [telemetry(0, samples=5), event(), garbage(), status()]
    for item in items:
        b.add(*item, 1000)
    parts = b.take().split()
    assert [len(p) for p in parts] == [1, 1, 1, 1]
    assert [p.messages[0] for p in parts] == [m for m, _ in items]
    assert [p.outcomes[0] for p in parts] == [o for _, o in items]
    assert [p.samples for p in parts] == [5, 0, 0, 0]
    assert [p.urgent for p in parts] == [False, True, False, False]
    assert [len(p.writes().dead_letters) for p in parts] == [0, 0, 1, 0]


def test_an_empty_flush_writes_nothing() -> None:
    writes = Flush().writes()
    assert (writes.telemetry, writes.events, writes.statuses, writes.dead_letters) == (
        [],
        [],
        [],
        [],
    )
    assert Flush().split() == []
