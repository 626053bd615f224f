"""Classifying one received message (pure: a fake registry, no broker, no database)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cloud_ingest.ingest import Limits, Outcome, Reason, Rejected, classify, split_topic
from cloud_ingest.storage import EventRow, StatusRow, TelemetryRows
from edge_agent.wire import (
    Capture,
    Series,
    TelemetryBatch,
    WireSchema,
    encode_event,
    encode_telemetry,
)
from tests.cloud_ingest.storage._samples import T0_MS, crash
from tests.edge_agent.wire._helpers import MIXED

from ._harness import SPEED, batch_payload, schema

RECEIVED_MS = T0_MS + 60_000
LIMITS = Limits(prefix="v1")
OTHER_CATALOGUE = "fedcba9876543210"


class FakeRegistry:
    """A `RegistryView` over a dict: vehicle id to its allowed catalogues."""

    def __init__(self, vehicles: Mapping[str, frozenset[str]]) -> None:
        self.vehicles = dict(vehicles)
        self.asked: list[str] = []

    def catalogues(self, vehicle_id: str) -> frozenset[str] | None:
        self.asked.append(vehicle_id)
        return self.vehicles.get(vehicle_id)


def registry() -> FakeRegistry:
    return FakeRegistry(
        {
            "veh-1": frozenset({schema().catalogue_id}),
            "veh-2": frozenset({schema().catalogue_id}),
            "veh-any": frozenset(),  # any catalogue known here
            "veh-other": frozenset({OTHER_CATALOGUE}),
        }
    )


def run(
    topic: str,
    payload: bytes,
    *,
    received_ms: int = RECEIVED_MS,
    view: FakeRegistry | None = None,
    schemas: Mapping[str, WireSchema] | None = None,
    limits: Limits = LIMITS,
) -> Outcome:
    return classify(
        topic,
        payload,
        received_ms=received_ms,
        registry=registry() if view is None else view,
        schemas={schema().catalogue_id: schema()} if schemas is None else schemas,
        limits=limits,
    )


def rejected(outcome: Outcome, reason: Reason, *words: str) -> Rejected:
    """``outcome`` is rejected for ``reason`` with a detail naming each of ``words``."""
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason is reason, outcome
    assert outcome.detail
    for word in words:
        assert word in outcome.detail, (word, outcome.detail)
    return outcome


def telemetry(sequence: int = 7, *, times: list[int] | None = None) -> bytes:
    """A demo-catalogue batch: speed at the given times (default: one sample at T0)."""
    s = schema()
    stamps = np.array([T0_MS] if times is None else times, np.int64)
    raw = np.arange(len(stamps), dtype=np.int64) + 100
    return encode_telemetry(
        TelemetryBatch(s.catalogue_id, sequence, (Series(s.spec(SPEED).number, stamps, raw),)), s
    )


def status(**document: object) -> bytes:
    return json.dumps(document).encode()


# -- accepted --------------------------------------------------------------------------------


def test_telemetry_becomes_telemetry_rows() -> None:
    outcome = run("v1/veh-1/telemetry", batch_payload(7, samples=20, start_ms=T0_MS))
    assert isinstance(outcome, TelemetryRows)
    assert outcome.key == ("veh-1", 7)
    row = outcome.batch
    assert row.catalogue_id == schema().catalogue_id
    assert row.samples == 20
    assert row.first_time == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert row.last_time == row.first_time + timedelta(milliseconds=19 * 100)
    assert row.received_at == datetime.fromtimestamp(RECEIVED_MS / 1000, UTC)
    assert [s.path for s in outcome.series] == [SPEED]
    assert outcome.series[0].n == 20
    assert [latest.path for latest in outcome.latest] == [SPEED]


def test_an_empty_batch_is_accepted_without_times() -> None:
    s = schema()
    payload = encode_telemetry(TelemetryBatch(s.catalogue_id, 3, ()), s)
    outcome = run("v1/veh-1/telemetry", payload)
    assert isinstance(outcome, TelemetryRows)
    assert (outcome.batch.samples, outcome.batch.first_time, outcome.series) == (0, None, ())


def test_a_vehicle_allowed_any_catalogue_sends_a_known_one() -> None:
    assert isinstance(run("v1/veh-any/telemetry", telemetry()), TelemetryRows)


def test_crash_event_becomes_an_event_row() -> None:
    event = crash("veh-1", sequence=9)
    outcome = run("v1/veh-1/events", encode_event(event))
    assert isinstance(outcome, EventRow)
    assert (outcome.vehicle_id, outcome.sequence, outcome.kind) == ("veh-1", 9, "crash")
    assert outcome.time == datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    assert json.loads(outcome.payload)["trigger"] == "airbag"


def test_an_event_needs_no_schema_here() -> None:
    outcome = run("v1/veh-1/events", encode_event(crash("veh-1")), schemas={})
    assert isinstance(outcome, EventRow)


@pytest.mark.parametrize("named", [{"vehicle_id": "veh-2"}, {}])
def test_status_becomes_a_status_row(named: dict[str, str]) -> None:
    outcome = run("v1/veh-2/status", status(state="offline", time_ms=T0_MS, extra=[1], **named))
    assert isinstance(outcome, StatusRow)
    assert (outcome.vehicle_id, outcome.state) == ("veh-2", "offline")
    assert outcome.time == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert json.loads(outcome.document)["extra"] == [1]  # kept as sent


def test_a_prefix_of_several_levels() -> None:
    outcome = run("fleet/eu/veh-1/telemetry", telemetry(), limits=Limits(prefix="fleet/eu"))
    assert isinstance(outcome, TelemetryRows)


# -- bad topics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "v2/veh-1/telemetry",  # another prefix
        "V1/veh-1/telemetry",  # topics are case-sensitive
        "x/v1/veh-1/telemetry",  # one level too many in front
        "v1/veh-1/telemetry/extra",  # one level too many behind
        "v1/a/veh-1/telemetry",  # a vehicle id of two levels
        "v1/veh-1",  # no kind
        "v1//telemetry",  # an empty vehicle id
        "v1/veh-1/Telemetry",
        "v1/veh-1/event",  # singular
        "v1/veh-1/#",
        "v1/veh-1/+",
        "v1/veh-1/",
        "/v1/veh-1/telemetry",
        "v1/veh-1/telemetry/",
        "telemetry",
        "",
    ],
)
def test_bad_topic(topic: str) -> None:
    view = registry()
    outcome = run(topic, telemetry(), view=view)
    rejected(outcome, Reason.BAD_TOPIC, repr(topic), "v1/<vehicle_id>/<telemetry|events|status>")
    assert view.asked == []  # the registry is not consulted
    assert split_topic(topic, "v1") is None


@pytest.mark.parametrize("vehicle", ["+", "#", "veh-+"])
def test_a_wildcard_as_vehicle_id_is_an_unknown_vehicle(vehicle: str) -> None:
    """Brokers refuse wildcards in published topics; here they are only unregistered ids."""
    rejected(run(f"v1/{vehicle}/telemetry", telemetry()), Reason.UNKNOWN_VEHICLE, repr(vehicle))


def test_split_topic() -> None:
    assert split_topic("v1/veh-1/telemetry", "v1") == ("veh-1", "telemetry")
    assert split_topic("v1/veh-1/events", "v1") == ("veh-1", "events")
    assert split_topic("v1/veh-1/status", "v1") == ("veh-1", "status")
    assert split_topic("a/b/veh-1/status", "a/b") == ("veh-1", "status")


# -- the registry and the topic's vehicle ------------------------------------------------------


@pytest.mark.parametrize("kind", ["telemetry", "events", "status"])
def test_unknown_vehicle(kind: str) -> None:
    view = registry()
    outcome = run(f"v1/veh-9/{kind}", telemetry(), view=view)
    rejected(outcome, Reason.UNKNOWN_VEHICLE, "'veh-9'", "not registered")
    assert view.asked == ["veh-9"]


def test_telemetry_on_the_events_topic() -> None:
    outcome = run("v1/veh-1/events", telemetry())
    rejected(outcome, Reason.TOPIC_MISMATCH, "telemetry payload", "events topic", "'veh-1'")


def test_an_event_on_the_telemetry_topic() -> None:
    outcome = run("v1/veh-1/telemetry", encode_event(crash("veh-1")))
    rejected(outcome, Reason.TOPIC_MISMATCH, "event payload", "telemetry topic", "'veh-1'")


def test_a_wire_payload_on_the_status_topic_is_not_a_status_document() -> None:
    rejected(run("v1/veh-1/status", telemetry()), Reason.MALFORMED, "status document")


def test_a_crash_event_naming_another_vehicle() -> None:
    outcome = run("v1/veh-2/events", encode_event(crash("veh-1", sequence=4)))
    rejected(outcome, Reason.TOPIC_MISMATCH, "crash event 4", "'veh-1'", "'veh-2'")


def test_a_status_naming_another_vehicle() -> None:
    outcome = run("v1/veh-2/status", status(state="online", time_ms=T0_MS, vehicle_id="veh-1"))
    rejected(outcome, Reason.TOPIC_MISMATCH, "status document", "'veh-1'", "'veh-2'")


def test_a_catalogue_the_vehicle_may_not_send() -> None:
    outcome = run("v1/veh-other/telemetry", telemetry())
    rejected(
        outcome,
        Reason.CATALOGUE_NOT_ALLOWED,
        "'veh-other'",
        schema().catalogue_id,
        f"allowed: {OTHER_CATALOGUE}",
    )


def test_an_event_of_a_catalogue_the_vehicle_may_not_send() -> None:
    outcome = run("v1/veh-other/events", encode_event(crash("veh-other")))
    rejected(outcome, Reason.CATALOGUE_NOT_ALLOWED, "'veh-other'", schema().catalogue_id)


def test_an_unknown_catalogue() -> None:
    payload = encode_telemetry(TelemetryBatch(MIXED.catalogue_id, 1, ()), MIXED)
    outcome = run("v1/veh-any/telemetry", payload)
    rejected(outcome, Reason.UNKNOWN_CATALOGUE, MIXED.catalogue_id)


def test_an_allowed_catalogue_without_a_schema_here() -> None:
    payload = encode_telemetry(TelemetryBatch(schema().catalogue_id, 1, ()), schema())
    outcome = run("v1/veh-1/telemetry", payload, schemas={})
    rejected(outcome, Reason.UNKNOWN_CATALOGUE, schema().catalogue_id)


# -- times -----------------------------------------------------------------------------------

MIN_MS = LIMITS.min_ms  # 2000-01-01
FUTURE_MS = RECEIVED_MS + LIMITS.max_future_ms


def test_min_ms_is_the_start_of_min_year() -> None:
    assert MIN_MS == 946_684_800_000
    assert Limits(min_year=2020).min_ms == 1_577_836_800_000


def test_telemetry_at_the_time_limits_is_accepted() -> None:
    outcome = run("v1/veh-1/telemetry", telemetry(times=[MIN_MS, FUTURE_MS]))
    assert isinstance(outcome, TelemetryRows)


def test_telemetry_before_min_year() -> None:
    outcome = run("v1/veh-1/telemetry", telemetry(times=[MIN_MS - 1, T0_MS]))
    rejected(outcome, Reason.ABSURD_TIME, "1999-12-31T23:59:59.999000+00:00", "before 2000")


def test_telemetry_too_far_in_the_future() -> None:
    outcome = run("v1/veh-1/telemetry", telemetry(times=[T0_MS, FUTURE_MS + 1]))
    rejected(outcome, Reason.ABSURD_TIME, "3600 s after the message was received")


def test_the_limits_are_configurable() -> None:
    limits = Limits(prefix="v1", max_future_ms=0, min_year=2026)
    payload = telemetry(times=[RECEIVED_MS + 1])
    rejected(run("v1/veh-1/telemetry", payload, limits=limits), Reason.ABSURD_TIME, "0 s after")
    early = telemetry(times=[T0_MS - 60 * 86_400_000])
    rejected(run("v1/veh-1/telemetry", early, limits=limits), Reason.ABSURD_TIME, "before 2026")


def test_telemetry_beyond_the_storable_range() -> None:
    outcome = run("v1/veh-1/telemetry", telemetry(times=[-(2**62)]))
    rejected(outcome, Reason.ABSURD_TIME, "storable range")


def test_a_capture_trigger_beyond_the_storable_range() -> None:
    s = schema()
    batch = TelemetryBatch(s.catalogue_id, 1, (), Capture("x", 2**62))
    outcome = run("v1/veh-1/telemetry", encode_telemetry(batch, s))
    rejected(outcome, Reason.ABSURD_TIME, "storable range")


@pytest.mark.parametrize(
    ("time_ms", "words"),
    [
        (MIN_MS - 1, ("before 2000",)),
        (FUTURE_MS + 1, ("3600 s after",)),
        (2**62, ("storable range",)),
    ],
)
def test_absurd_event_and_status_times(time_ms: int, words: tuple[str, ...]) -> None:
    payload = encode_event(replace(crash("veh-1"), time_ms=time_ms))
    rejected(run("v1/veh-1/events", payload), Reason.ABSURD_TIME, *words)
    document = status(state="online", time_ms=time_ms)
    rejected(run("v1/veh-1/status", document), Reason.ABSURD_TIME, *words)


@pytest.mark.parametrize("time_ms", [MIN_MS, FUTURE_MS])
def test_event_and_status_times_at_the_limits(time_ms: int) -> None:
    payload = encode_event(replace(crash("veh-1"), time_ms=time_ms))
    assert isinstance(run("v1/veh-1/events", payload), EventRow)
    assert isinstance(run("v1/veh-1/status", status(state="online", time_ms=time_ms)), StatusRow)


# -- malformed payloads ----------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 2, 5, 11, 12, 20, -1])
def test_truncated_telemetry(cut: int) -> None:
    payload = batch_payload(7)[: cut if cut >= 0 else len(batch_payload(7)) + cut]
    outcome = run("v1/veh-1/telemetry", payload)
    rejected(outcome, Reason.MALFORMED, "(at byte")


@pytest.mark.parametrize("cut", [2, 3, 40, -1])
def test_truncated_event(cut: int) -> None:
    full = encode_event(crash("veh-1"))
    rejected(run("v1/veh-1/events", full[:cut]), Reason.MALFORMED, "(at byte")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\x01\x01garbage", ("at byte",)),
        (b"\x01\x09" + b"\x00" * 20, ("unknown payload kind 9", "at byte 1")),
        (b"\x01", ("no kind byte",)),
        (b"", ("empty payload",)),
        (batch_payload(7) + b"\x00", ("at byte",)),  # trailing byte
    ],
)
def test_garbage_telemetry(payload: bytes, words: tuple[str, ...]) -> None:
    rejected(run("v1/veh-1/telemetry", payload), Reason.MALFORMED, *words)


def test_bad_event_json_names_the_field() -> None:
    payload = encode_event(crash("veh-1")).replace(b'"airbag"', b'"falling"')
    rejected(run("v1/veh-1/events", payload), Reason.MALFORMED, "'trigger'", "at byte")


def test_an_event_with_a_lone_surrogate_is_malformed() -> None:
    payload = encode_event(crash("veh-1")).replace(b'"WVWZZZ1JZXW000001"', b'"\\ud800"')
    rejected(run("v1/veh-1/events", payload), Reason.MALFORMED, "'vin'", "lone surrogate")


def test_an_event_with_a_nul_character_is_malformed() -> None:
    payload = encode_event(crash("veh-1")).replace(b'"WVWZZZ1JZXW000001"', b'"WVW\\u0000"')
    rejected(run("v1/veh-1/events", payload), Reason.MALFORMED, "NUL character")


def test_an_escaped_backslash_before_u0000_is_text_not_nul() -> None:
    document = {"state": "online", "time_ms": T0_MS, "note": "\\u0000"}
    assert not isinstance(run("v1/veh-1/status", status(**document)), Rejected)


def test_a_capture_name_with_a_nul_character_is_malformed() -> None:
    s = schema()
    batch = TelemetryBatch(s.catalogue_id, 1, (), Capture("crash\x00", T0_MS))
    outcome = run("v1/veh-1/telemetry", encode_telemetry(batch, s))
    rejected(outcome, Reason.MALFORMED, "capture name", "NUL")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"", ("not UTF-8 JSON",)),
        (b"\xff\xfe", ("not UTF-8 JSON",)),
        (b'{"state": "online", "time_ms": 1', ("not UTF-8 JSON",)),
        (b"[1, 2]", ("not a JSON object",)),
        (b'"online"', ("not a JSON object",)),
        (b"null", ("not a JSON object",)),
        (status(time_ms=T0_MS), ("state is None",)),
        (status(state="asleep", time_ms=T0_MS), ("'asleep'", "'online' or 'offline'")),
        (status(state="ONLINE", time_ms=T0_MS), ("'ONLINE'",)),
        (status(state="online"), ("time_ms is None",)),
        (status(state="online", time_ms=True), ("time_ms is True", "not an integer")),
        (status(state="online", time_ms=1.7e12), ("time_ms is 1700000000000.0",)),
        (status(state="online", time_ms="1700000000000"), ("time_ms is '1700000000000'",)),
        (b'{"state": "online", "time_ms": NaN}', ("NaN is not JSON",)),
        (b'{"state": "online", "time_ms": Infinity}', ("Infinity is not JSON",)),
        (b'{"state":"online","time_ms":1,"x":"\\udc00"}', ("lone surrogate",)),
        (b'{"state":"online","time_ms":1,"x":"a\\u0000"}', ("NUL character",)),
        (b" " * 65_537, ("65537 bytes",)),
    ],
)
def test_bad_status_document(payload: bytes, words: tuple[str, ...]) -> None:
    rejected(run("v1/veh-1/status", payload), Reason.MALFORMED, "status document", *words)


@pytest.mark.parametrize("version", [0, 2, 9, 255])
@pytest.mark.parametrize("kind", ["telemetry", "events"])
def test_unsupported_version(version: int, kind: str) -> None:
    valid = telemetry() if kind == "telemetry" else encode_event(crash("veh-1"))
    outcome = run(f"v1/veh-1/{kind}", bytes([version]) + valid[1:])
    rejected(outcome, Reason.UNSUPPORTED_VERSION, f"version {version} is not supported")


def test_the_registry_is_asked_once_per_message() -> None:
    view = registry()
    for topic in ("v1/veh-1/telemetry", "v1/veh-2/status"):
        run(topic, telemetry(), view=view)
    assert view.asked == ["veh-1", "veh-2"]


@pytest.mark.parametrize("kind", ["status", "events"])
def test_json_nested_too_deeply_is_malformed(kind: str) -> None:
    deep = "[" * 20_000 + "]" * 20_000  # within the 64 KiB limits
    prefix = b"" if kind == "status" else b"\x01\x02"
    payload = prefix + f'{{"state": "online", "time_ms": 1, "x": {deep}}}'.encode()
    rejected(run(f"v1/veh-1/{kind}", payload), Reason.MALFORMED, "nested too deeply")
