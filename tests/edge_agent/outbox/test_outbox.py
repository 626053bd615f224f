"""The outbox: order and priorities, acks, the disk budget, damaged files, threads."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.outbox import (
    RECORD_OVERHEAD,
    Outbox,
    OutboxCorruptError,
    OutboxError,
    OutboxFullError,
    OutboxSchemaError,
    OutboxUnavailableError,
    Priority,
    Record,
    _store,
)
from edge_agent.outbox.outbox import EVICT_SLACK, _iso

TOPIC = {
    Priority.EVENT: "v1/car/events",
    Priority.STATUS: "v1/car/status",
    Priority.TELEMETRY: "v1/car/telemetry",
}
SIZE = 500  # every record of the budget tests counts exactly this many bytes


def _payload(priority: Priority, n: int, size: int = SIZE) -> bytes:
    """A payload that makes the record count ``size`` bytes, its number written in front."""
    body = size - RECORD_OVERHEAD - len(TOPIC[priority])
    return n.to_bytes(4, "big") + bytes(body - 4)


def _put(outbox: Outbox, priority: Priority, n: int, size: int = SIZE) -> int:
    return outbox.put(TOPIC[priority], _payload(priority, n, size), priority=priority)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    with Outbox(path) as box:
        yield box


# -- order, acks, reopening -----------------------------------------------------------------


def test_pending_drains_events_then_status_then_telemetry_each_by_id(outbox: Outbox) -> None:
    order = [
        Priority.TELEMETRY,
        Priority.EVENT,
        Priority.STATUS,
        Priority.TELEMETRY,
        Priority.EVENT,
    ]
    ids = [_put(outbox, p, n) for n, p in enumerate(order)]
    assert ids == sorted(ids)
    got = outbox.pending(10)
    assert [r.id for r in got] == [ids[1], ids[4], ids[2], ids[0], ids[3]]
    first = got[0]
    assert isinstance(first, Record)
    assert (first.topic, first.payload, first.priority, first.qos) == (
        TOPIC[Priority.EVENT],
        _payload(Priority.EVENT, 1),
        Priority.EVENT,
        1,
    )
    assert first.created_ms > 0
    assert [r.id for r in outbox.pending(2)] == [ids[1], ids[4]]
    assert outbox.pending(0) == []


def test_ack_deletes_and_ignores_unknown_ids(outbox: Outbox) -> None:
    ids = [_put(outbox, Priority.TELEMETRY, n) for n in range(5)]
    outbox.ack([ids[0], ids[3], 999_999, ids[3]])
    outbox.ack([])
    assert [r.id for r in outbox.pending(10)] == [ids[1], ids[2], ids[4]]
    stats = outbox.stats()
    assert (stats.records, stats.bytes) == (3, 3 * SIZE)
    assert stats.by_priority == {Priority.EVENT: 0, Priority.STATUS: 0, Priority.TELEMETRY: 3}


def test_exclude_skips_records_in_flight(outbox: Outbox) -> None:
    ids = [_put(outbox, Priority.TELEMETRY, n) for n in range(6)]
    in_flight = {ids[0], ids[1], ids[3]}
    assert [r.id for r in outbox.pending(2, exclude=in_flight)] == [ids[2], ids[4]]
    assert [r.id for r in outbox.pending(10, exclude=list(in_flight))] == [ids[2], ids[4], ids[5]]
    assert outbox.pending(10, exclude=ids) == []


def test_put_many_is_one_transaction(outbox: Outbox) -> None:
    items = [(TOPIC[p], _payload(p, n), p) for n, p in enumerate(Priority)]
    ids = outbox.put_many(items)
    assert ids == sorted(ids) and len(ids) == 3
    assert outbox.put_many([]) == []
    with pytest.raises(ValueError, match="wildcard"):
        outbox.put_many(
            [
                (TOPIC[Priority.STATUS], b"ok", Priority.STATUS),
                ("v1/+/status", b"", Priority.STATUS),
            ]
        )
    with pytest.raises(OutboxFullError):
        outbox.put_many(
            [
                (TOPIC[Priority.STATUS], b"ok", Priority.STATUS),
                ("v1/x", bytes(2**29), Priority.EVENT),
            ]
        )
    assert outbox.stats().records == 3


def test_ids_and_records_survive_reopen_and_keep_increasing(path: Path) -> None:
    with Outbox(path) as outbox:
        ids = [_put(outbox, p, n) for n, p in enumerate(Priority)]
        outbox.ack([ids[-1]])  # the highest id is gone: it must not be handed out again
        before = outbox.pending(10)
    with Outbox(path) as outbox:
        assert outbox.pending(10) == before
        assert _put(outbox, Priority.STATUS, 9) > ids[-1]
        assert outbox.stats().records == 3


def test_validation(outbox: Outbox) -> None:
    for topic in ("", "v1/#", "v1/+/x", "v1/\0"):
        with pytest.raises(ValueError):
            outbox.put(topic, b"x")
    with pytest.raises(ValueError, match="qos"):
        outbox.put("v1/x", b"x", qos=3)
    with pytest.raises(ValueError):
        outbox.put("v1/x", b"x", priority=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payload"):
        outbox.put("v1/x", 5)  # type: ignore[arg-type]
    assert outbox.put("v1/x", bytearray(b"ok"), qos=0) > 0  # type: ignore[arg-type]
    assert outbox.pending(1)[0].payload == b"ok"
    with pytest.raises(ValueError, match="max_bytes"):
        Outbox(outbox.path.with_name("other.db"), max_bytes=10)


def test_closed_outbox_refuses_work(path: Path) -> None:
    outbox = Outbox(path)
    assert repr(outbox) == f"Outbox({str(path)!r}, max_bytes={outbox.max_bytes})"
    outbox.close()
    outbox.close()
    for call in (
        lambda: outbox.put("v1/x", b""),
        lambda: outbox.pending(1),
        lambda: outbox.ack([1]),
        outbox.stats,
    ):
        with pytest.raises(OutboxError, match="closed"):
            call()
    with Outbox(path) as again:  # closing let go of the file
        assert again.stats().records == 0


def test_file_settings(path: Path) -> None:
    with Outbox(path) as outbox:
        assert outbox._conn is not None
        assert outbox._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
        assert conn.execute("PRAGMA user_version").fetchone() == (_store.SCHEMA_VERSION,)
    finally:
        conn.close()


def test_deleted_space_goes_back_to_the_file_system(outbox: Outbox) -> None:
    ids = outbox.put_many([("v1/car/telemetry", bytes(4000), Priority.TELEMETRY)] * 1000)
    full = os.path.getsize(outbox.path)
    assert full > 4_000_000
    outbox.ack(ids)
    assert os.path.getsize(outbox.path) < full // 10


# -- the disk budget ------------------------------------------------------------------------


def _fill(outbox: Outbox, counts: dict[Priority, int]) -> dict[Priority, list[Record]]:
    n = 0
    for priority, count in counts.items():
        for _ in range(count):
            _put(outbox, priority, n)
            n += 1
    records = outbox.pending(10**6)
    return {p: [r for r in records if r.priority is p] for p in Priority}


def test_full_budget_drops_oldest_telemetry_keeps_events_and_says_so(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 20 * SIZE
    slack = int(budget * EVICT_SLACK)
    with Outbox(path, max_bytes=budget) as outbox:
        _fill(outbox, {Priority.EVENT: 2, Priority.TELEMETRY: 8, Priority.STATUS: 2})
        before = _fill(outbox, {Priority.TELEMETRY: 8})
        assert outbox.stats().bytes == budget  # exactly full: nothing dropped yet
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edge_agent.outbox"):
            new = _put(outbox, Priority.TELEMETRY, 99)
        dropped = 1 + slack // SIZE  # what the put needs, plus the low-water slack
        gone = before[Priority.TELEMETRY][:dropped]

        after = _fill(outbox, {})
        assert after[Priority.EVENT] == before[Priority.EVENT]
        assert after[Priority.STATUS] == before[Priority.STATUS]
        kept = [r.id for r in before[Priority.TELEMETRY][dropped:]]
        assert [r.id for r in after[Priority.TELEMETRY]] == [*kept, new]
        stats = outbox.stats()
        assert (stats.evicted_records, stats.evicted_bytes) == (dropped, dropped * SIZE)
        assert stats.bytes == budget + SIZE - dropped * SIZE

    [line] = caplog.records
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        f"outbox {path} is over its budget of {budget} bytes: dropped the {dropped} oldest "
        f"TELEMETRY records ({dropped * SIZE} bytes), created {_iso(gone[0].created_ms)} to "
        f"{_iso(gone[-1].created_ms)}"
    )


def test_status_goes_after_telemetry_and_events_only_when_nothing_else_is_left(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 20 * SIZE
    with Outbox(path, max_bytes=budget) as outbox:
        before = _fill(outbox, {Priority.TELEMETRY: 1, Priority.STATUS: 9, Priority.EVENT: 10})
        with caplog.at_level(logging.INFO, logger="edge_agent.outbox"):
            # Needs 1000 bytes: all the telemetry (500), then status down to the low-water mark.
            _put(outbox, Priority.EVENT, 50, size=2 * SIZE)
        after = _fill(outbox, {})
        assert after[Priority.TELEMETRY] == []
        assert after[Priority.STATUS] == before[Priority.STATUS][3:]
        assert after[Priority.EVENT][:10] == before[Priority.EVENT]
        assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
        assert (
            "dropped the 1 oldest TELEMETRY records (500 bytes)" in caplog.records[0].getMessage()
        )
        assert "dropped the 3 oldest STATUS records (1500 bytes)" in caplog.records[1].getMessage()

        outbox.ack(r.id for r in after[Priority.STATUS])
        _fill(outbox, {Priority.EVENT: (budget - outbox.stats().bytes) // SIZE})
        events = outbox.pending(100)
        assert outbox.stats().bytes == budget
        assert all(r.priority is Priority.EVENT for r in events)

        # Telemetry and status never push out an event: refused, nothing changed.
        for priority in (Priority.TELEMETRY, Priority.STATUS):
            with pytest.raises(OutboxFullError, match="taken by more urgent records"):
                _put(outbox, priority, 60)
        assert outbox.pending(100) == events

        # An event may, when nothing else is left: the oldest one only, and at ERROR.
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edge_agent.outbox"):
            new = _put(outbox, Priority.EVENT, 70)
        assert [r.id for r in outbox.pending(100)] == [r.id for r in events[1:]] + [new]
        [line] = caplog.records
        assert line.levelno == logging.ERROR
        assert "dropped the 1 oldest EVENT records (500 bytes)" in line.getMessage()
        assert "no less urgent records were left" in line.getMessage()


def test_a_record_larger_than_the_budget_is_refused(path: Path) -> None:
    with Outbox(path, max_bytes=4096) as outbox:
        _put(outbox, Priority.TELEMETRY, 1)
        with pytest.raises(OutboxFullError, match="larger than the whole budget of 4096") as info:
            outbox.put("v1/car/events", bytes(4096), priority=Priority.EVENT)
        assert info.value.path == path
        stats = outbox.stats()
        assert (stats.records, stats.evicted_records) == (1, 0)


def test_a_smaller_budget_trims_at_open(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Outbox(path) as outbox:
        _fill(outbox, {Priority.EVENT: 3, Priority.TELEMETRY: 20})
    with (
        caplog.at_level(logging.WARNING, logger="edge_agent.outbox"),
        Outbox(path, max_bytes=10 * SIZE) as outbox,
    ):
        stats = outbox.stats()
        assert stats.bytes <= 10 * SIZE
        assert stats.by_priority[Priority.EVENT] == 3
    assert "TELEMETRY" in caplog.text


# -- damaged, foreign and unreachable files -------------------------------------------------


def test_garbage_file_is_moved_aside_and_a_fresh_outbox_starts(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = random.Random(1).randbytes(10_000)
    path.write_bytes(garbage)
    with pytest.raises(OutboxCorruptError, match=str(path)) as info:
        Outbox(path, on_corrupt="raise")
    assert info.value.path == path
    assert path.read_bytes() == garbage  # left alone

    with caplog.at_level(logging.ERROR, logger="edge_agent.outbox"), Outbox(path) as outbox:
        assert outbox.moved_aside is not None
        assert outbox.moved_aside.name.startswith("outbox.db.corrupt-")
        assert outbox.moved_aside.read_bytes() == garbage
        assert outbox.stats().records == 0
        assert _put(outbox, Priority.EVENT, 1) > 0
    assert f"moved it to {outbox.moved_aside}" in caplog.records[0].getMessage()
    assert str(path) in caplog.records[0].getMessage()


def test_damaged_pages_salvage_the_records_that_read_back_intact(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(path) as outbox:
        outbox.put_many(
            [(TOPIC[Priority.TELEMETRY], bytes([n]) * 1000, Priority.TELEMETRY) for n in range(200)]
        )
        originals = {r.id: r for r in outbox.pending(1000)}
    pages = path.stat().st_size // 4096
    with path.open("r+b") as f:  # wreck a table page about half way through the file
        f.seek((pages // 2) * 4096)
        f.write(b"\xff" * 64)
    with pytest.raises(OutboxCorruptError):
        Outbox(path, on_corrupt="raise")

    with caplog.at_level(logging.ERROR, logger="edge_agent.outbox"), Outbox(path) as outbox:
        salvaged = outbox.pending(1000)
        assert outbox.moved_aside is not None and outbox.moved_aside.exists()
    assert 0 < len(salvaged) < 200
    for record in salvaged:
        assert record == originals[record.id]
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR]
    assert f"salvaged {len(salvaged)} records from {outbox.moved_aside}" in caplog.text


def test_a_newer_schema_is_refused_and_left_alone(path: Path) -> None:
    with Outbox(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {_store.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(OutboxSchemaError, match="newer"):
        Outbox(path)
    assert list(path.parent.iterdir()) == [path]


def test_a_foreign_database_is_refused(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.close()
    with pytest.raises(OutboxSchemaError, match=r"not an outbox.*photos"):
        Outbox(path)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    where = tmp_path / "no-such-dir" / "outbox.db"
    with pytest.raises(OutboxUnavailableError, match=r"no-such-dir does not exist") as info:
        Outbox(where)
    assert str(where) in str(info.value)
    assert isinstance(info.value, OSError)
    assert not where.parent.exists()


def test_a_directory_is_not_an_outbox(tmp_path: Path) -> None:
    with pytest.raises(OutboxUnavailableError, match="is a directory"):
        Outbox(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutboxUnavailableError, match="file is not a directory"):
        Outbox(tmp_path / "file" / "outbox.db")


def test_an_unreadable_file_is_named(path: Path) -> None:
    with Outbox(path):
        pass
    path.chmod(0)
    try:
        if os.geteuid() != 0:
            with pytest.raises(OutboxUnavailableError, match=str(path)):
                Outbox(path)
            return
        # root reads any file: try in a child process that has dropped to "nobody"
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                Outbox(path)
            except OutboxUnavailableError as exc:
                os.write(write_fd, str(exc).encode())
                code = 3
            finally:
                os._exit(code)
        os.close(write_fd)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as pipe:
            message = pipe.read().decode()
        assert os.waitstatus_to_exitcode(status) == 3
        assert str(path) in message
    finally:
        path.chmod(0o600)


def test_one_outbox_per_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "LOCK_TIMEOUT_S", 0.05)
    with Outbox(path), pytest.raises(OutboxUnavailableError, match="in use by another process"):
        Outbox(path)
    with Outbox(path):
        pass


# -- threads --------------------------------------------------------------------------------


def test_a_producer_and_a_publisher_thread_lose_and_duplicate_nothing(outbox: Outbox) -> None:
    total = 3000
    put_ids: dict[int, bytes] = {}
    delivered: list[Record] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        rng = random.Random(7)
        n = 0
        try:
            while n < total:
                if rng.random() < 0.5:
                    p = rng.choice(list(Priority))
                    payload = n.to_bytes(4, "big")
                    put_ids[outbox.put(TOPIC[p], payload, priority=p)] = payload
                    n += 1
                else:
                    batch = [
                        (TOPIC[p], (n + i).to_bytes(4, "big"), p)
                        for i, p in enumerate(rng.choices(list(Priority), k=5))
                    ]
                    for id_, item in zip(outbox.put_many(batch), batch, strict=True):
                        put_ids[id_] = item[1]
                    n += len(batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def publish() -> None:
        in_flight: list[int] = []
        try:
            while True:
                finished = done.is_set()
                batch = outbox.pending(20, exclude=in_flight)
                if not batch:
                    time.sleep(0.001)
                delivered.extend(batch)
                in_flight += [r.id for r in batch]
                if len(in_flight) > 40 or (finished and not batch):  # PUBACKs arrive late
                    outbox.ack(in_flight[:30])
                    del in_flight[:30]
                if finished and not batch and not in_flight:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce), threading.Thread(target=publish)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(put_ids) >= total
    assert sorted(r.id for r in delivered) == sorted(put_ids)  # each exactly once
    assert all(r.payload == put_ids[r.id] for r in delivered)
    for p in Priority:  # each priority in the order it was put
        ids = [r.id for r in delivered if r.priority is p]
        assert ids == sorted(ids)
    assert outbox.stats().records == 0
