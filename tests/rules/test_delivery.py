"""Webhook delivery against the private TimescaleDB and real HTTP receivers on loopback."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

from can2care.devservices._proc import free_port
from rules.delivery import (
    DeliveryConfig,
    DeliveryWorker,
    add_webhook,
    deliver_due,
    get_webhook,
    list_webhooks,
    send_test,
    set_webhook_active,
)
from rules.errors import WebhookNotFound
from rules.store import acknowledge, apply_changes, feed_since, resolve
from rules.webhook import Webhook, WebhookSpec, verify

from ._support import Conn, Receiver, change, prepare, serve

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-for-tests"
FAST = DeliveryConfig(timeout_s=2.0, lease_s=10.0, backoff_base_s=1.0, backoff_max_s=8.0)


@dataclass
class Clock:
    """A settable clock, starting just after the database's now (deliveries are due)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def conn(db_conn: Conn) -> Conn:
    return prepare(db_conn)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=1))


def _hook(conn: Conn, receiver: Receiver, name: str = "desk", **kwargs: Any) -> Webhook:
    return add_webhook(conn, WebhookSpec(name, receiver.url, receiver.secret, **kwargs))


def _raise_many(conn: Conn, n: int, **kwargs: Any) -> list[int]:
    changes = [change(rule=f"rule_{i}", **kwargs) for i in range(n)]
    return [a.alert_id or 0 for a in apply_changes(conn, changes)]


def _expected_keys(conn: Conn) -> set[str]:
    return {f"alert-{f.alert_id}-{f.sequence}" for f in feed_since(conn, 0, limit=1000)}


def _statuses(conn: Conn) -> Counter[str]:
    return Counter(str(r[0]) for r in conn.execute("SELECT status FROM delivery").fetchall())


def _drain(conn: Conn, config: DeliveryConfig, clock: Clock, rng: random.Random) -> int:
    """Passes until nothing is pending, moving the clock to the next due row; the passes."""
    for passes in range(1, 500):
        report = deliver_due(conn, config, clock=clock, rng=rng)
        row = conn.execute(
            "SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending'"
        ).fetchone()
        assert row is not None
        if row[0] is None:
            return passes
        if report.claimed == 0:
            clock.now = max(clock.now, row[0])
    raise AssertionError("the outbox did not drain")


def test_a_delivery_is_signed_keyed_and_carries_the_alert(conn: Conn, clock: Clock) -> None:
    with serve(Receiver(SECRET)) as receiver:
        hook = _hook(conn, receiver)
        (applied,) = apply_changes(conn, [change()])
        report = deliver_due(conn, FAST, clock=clock, rng=random.Random(1))
    assert (report.claimed, report.delivered) == (1, 1)
    (request,) = receiver.requests
    assert receiver.bad_signatures == 0
    assert verify(request.body, SECRET, request.headers["x-can2care-signature"])
    assert not verify(request.body, "another secret", request.headers["x-can2care-signature"])
    assert request.headers["content-type"] == "application/json"
    assert request.key == f"alert-{applied.alert_id}-1"
    assert int(request.headers["x-can2care-timestamp"]) == int(clock.now.timestamp())
    body = json.loads(request.body)
    assert body["idempotency_key"] == request.key and body["event"] == "raised"
    assert body["feed_id"] == applied.feed_id and body["sequence"] == 1
    assert body["alert"]["key"] == "veh-1/low_soc" and body["alert"]["status"] == "open"
    assert body["alert"]["details"] == {"soc": 9.5}
    row = conn.execute("SELECT status, attempts, webhook_id FROM delivery").fetchone()
    assert row == ("delivered", 1, hook.webhook_id)


def test_webhooks_get_only_what_they_asked_for(conn: Conn) -> None:
    receiver = Receiver(SECRET, url="http://127.0.0.1:9/hook")
    every = _hook(conn, receiver, "every")
    critical = _hook(conn, receiver, "critical", min_severity="critical")
    rescue = _hook(conn, receiver, "rescue", categories=frozenset({"rescue"}))
    paused = _hook(conn, receiver, "paused", active=False)
    apply_changes(
        conn,
        [
            change(rule="low_soc", severity="warning", category="care"),
            change(rule="crash", severity="critical", category="rescue"),
            change(rule="info", severity="info", category="owner"),
        ],
    )
    rows = conn.execute(
        "SELECT webhook_id, count(*), bool_or(urgent) FROM delivery GROUP BY 1"
    ).fetchall()
    counts = {r[0]: (r[1], r[2]) for r in rows}
    assert counts == {
        every.webhook_id: (3, True),
        critical.webhook_id: (1, True),
        rescue.webhook_id: (1, True),
    }
    assert paused.webhook_id not in counts
    assert [w.name for w in list_webhooks(conn)] == ["every", "critical", "rescue", "paused"]
    assert get_webhook(conn, critical.webhook_id).min_severity == "critical"
    assert SECRET not in repr(get_webhook(conn, every.webhook_id))


def test_a_receiver_failing_every_other_request_gets_each_change_once(
    conn: Conn, clock: Clock
) -> None:
    receiver = Receiver(SECRET, answer=lambda n, r: 500 if n % 2 == 0 else 200)
    with serve(receiver):
        _hook(conn, receiver)
        ids = _raise_many(conn, 5)
        acknowledge(conn, ids[0], actor="ana")
        resolve(conn, ids[1], "fixed", actor="ana")
        apply_changes(conn, [change("renotified", rule="rule_2")])
        _drain(conn, FAST, clock, random.Random(2))
    expected = _expected_keys(conn)
    assert len(expected) == 8
    assert set(receiver.processed) == expected  # every change, each under its one key
    on_wire = Counter(receiver.keys_on_wire())
    assert set(on_wire) == expected and sum(on_wire.values()) > len(expected)
    for key in expected:  # a retry is the same request: same key, same body
        bodies = {r.body for r in receiver.requests if r.key == key}
        assert len(bodies) == 1
    assert _statuses(conn) == Counter({"delivered": 8})
    events = Counter(e["event"] for e in receiver.events())
    assert events == Counter({"raised": 5, "acknowledged": 1, "resolved": 1, "renotified": 1})


def test_a_receiver_that_times_out_gets_each_change_once(conn: Conn, clock: Clock) -> None:
    receiver = Receiver(SECRET, answer=lambda n, r: 1.5 if n % 2 == 0 else 200)
    config = DeliveryConfig(timeout_s=0.3, lease_s=5.0, backoff_base_s=1.0, backoff_max_s=4.0)
    with serve(receiver):
        _hook(conn, receiver)
        _raise_many(conn, 4)
        _drain(conn, config, clock, random.Random(3))
    expected = _expected_keys(conn)
    assert set(receiver.processed) == expected
    assert len(receiver.requests) > len(expected)
    assert _statuses(conn) == Counter({"delivered": 4})
    retried = conn.execute("SELECT count(*) FROM delivery WHERE attempts > 1").fetchone()
    assert retried is not None and retried[0] >= 1


def test_backoff_grows_to_its_cap_and_gives_up(conn: Conn, clock: Clock) -> None:
    config = DeliveryConfig(
        timeout_s=2.0, lease_s=10.0, max_attempts=6, backoff_base_s=1.0, backoff_max_s=8.0
    )
    receiver = Receiver(SECRET, answer=lambda n, r: 503)
    delays = []
    with serve(receiver):
        _hook(conn, receiver)
        _raise_many(conn, 1)
        for _ in range(6):
            report = deliver_due(conn, config, clock=clock, rng=random.Random(4))
            assert report.claimed == 1
            row = conn.execute("SELECT status, next_attempt_at FROM delivery").fetchone()
            assert row is not None
            delays.append((row[1] - clock.now).total_seconds())
            clock.now = row[1]
        assert deliver_due(conn, config, clock=clock, rng=random.Random(4)).claimed == 0
    retries = delays[:-1]
    assert retries == sorted(retries) and retries[-1] > retries[0]
    for attempt, delay in enumerate(retries, start=1):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    row = conn.execute("SELECT status, attempts, last_error FROM delivery").fetchone()
    assert row == ("failed", 6, "HTTP 503")
    assert len(set(receiver.keys_on_wire())) == 1 and len(receiver.requests) == 6


def test_the_rate_limit_holds_across_passes_and_workers(
    conn: Conn, clock: Clock, db_url: str
) -> None:
    receiver = Receiver(SECRET)
    start = clock.now
    with serve(receiver):
        _hook(conn, receiver, rate_per_minute=3)
        _raise_many(conn, 8)
        counts = []
        for offset in (0, 30, 59, 60, 90, 120):
            clock.now = start + timedelta(seconds=offset)
            worker = DeliveryWorker(db_url, FAST, clock=clock)  # a fresh worker each time
            before = len(receiver.requests)
            worker.run_once()
            worker.close()
            counts.append(len(receiver.requests) - before)
    assert counts == [3, 0, 0, 3, 0, 2]
    assert _statuses(conn) == Counter({"delivered": 8})


def test_quiet_hours_hold_care_but_not_critical_or_rescue(conn: Conn) -> None:
    clock = Clock(datetime(2030, 1, 15, 2, 0, tzinfo=UTC))  # 03:00 in Berlin
    receiver = Receiver(SECRET)
    with serve(receiver):
        _hook(
            conn,
            receiver,
            quiet_hours=(clock_time(22, 0), clock_time(7, 0)),
            timezone="Europe/Berlin",
        )
        apply_changes(
            conn,
            [
                change(rule="low_soc", severity="warning", category="care"),
                change(rule="battery", severity="critical", category="care"),
                change(rule="crash", severity="info", category="rescue"),
            ],
        )
        report = deliver_due(conn, FAST, clock=clock, rng=random.Random(5))
        assert (report.delivered, report.held) == (2, 1)
        first = {json.loads(r.body)["alert"]["rule_id"] for r in receiver.requests}
        assert first == {"battery", "crash"}
        row = conn.execute(
            "SELECT next_attempt_at FROM delivery WHERE status = 'pending'"
        ).fetchone()
        assert row == (datetime(2030, 1, 15, 6, 0, tzinfo=UTC),)  # 07:00 in Berlin
        clock.now = datetime(2030, 1, 15, 5, 59, tzinfo=UTC)
        assert deliver_due(conn, FAST, clock=clock, rng=random.Random(5)).claimed == 0
        clock.now = datetime(2030, 1, 15, 6, 0, tzinfo=UTC)
        assert deliver_due(conn, FAST, clock=clock, rng=random.Random(5)).delivered == 1
    assert json.loads(receiver.requests[-1].body)["alert"]["rule_id"] == "low_soc"


def test_a_worker_killed_mid_delivery_loses_nothing(conn: Conn, db_url: str) -> None:
    receiver = Receiver(SECRET, gate=threading.Event())
    with serve(receiver):
        _hook(conn, receiver)
        _raise_many(conn, 3)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.rules._worker_main", db_url], cwd=ROOT
        )
        try:
            assert receiver.arrived.wait(60), "the worker sent nothing"
            process.send_signal(signal.SIGKILL)  # the POST is out, its answer never read
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        assert receiver.gate is not None
        receiver.gate.set()  # the receiver processes the request of the dead worker
        (interrupted,) = receiver.keys_on_wire()
        assert _statuses(conn) == Counter({"pending": 3})  # claimed, leased, none marked

        # A new worker after the lease: sends the rest and the interrupted one again.
        later = Clock(datetime.now(UTC) + timedelta(hours=1))
        _drain(conn, FAST, later, random.Random(6))
    expected = _expected_keys(conn)
    assert set(receiver.processed) == expected and len(expected) == 3
    on_wire = Counter(receiver.keys_on_wire())
    assert on_wire[interrupted] == 2 and sum(on_wire.values()) == 4
    assert _statuses(conn) == Counter({"delivered": 3})


def test_concurrent_workers_send_each_delivery_once(conn: Conn, db_url: str) -> None:
    receiver = Receiver(SECRET)
    with serve(receiver):
        _hook(conn, receiver, rate_per_minute=1000)
        _raise_many(conn, 30)
        config = DeliveryConfig(timeout_s=5.0, lease_s=60.0, batch=4, poll_interval_s=0.05)
        workers = [DeliveryWorker(db_url, config) for _ in range(3)]
        for worker in workers:
            worker.start()
        try:
            deadline = time.monotonic() + 60
            while len(receiver.processed) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            for worker in workers:
                worker.stop(10)
    assert len(receiver.processed) == 30
    assert len(receiver.requests) == 30  # SKIP LOCKED and the lease: no request twice


def test_a_paused_webhook_keeps_its_deliveries(conn: Conn, clock: Clock) -> None:
    receiver = Receiver(SECRET)
    with serve(receiver):
        hook = _hook(conn, receiver)
        _raise_many(conn, 2)
        set_webhook_active(conn, hook.webhook_id, False)
        assert deliver_due(conn, FAST, clock=clock, rng=random.Random(7)).claimed == 0
        set_webhook_active(conn, hook.webhook_id, True)
        assert deliver_due(conn, FAST, clock=clock, rng=random.Random(7)).delivered == 2
    with pytest.raises(WebhookNotFound):
        set_webhook_active(conn, 999, True)


def test_send_test_reports_the_answer(conn: Conn) -> None:
    ok = Receiver(SECRET)
    failing = Receiver(SECRET, answer=lambda n, r: 500)
    with serve(ok), serve(failing):
        good = send_test(conn, _hook(conn, ok, "ok").webhook_id, timeout_s=5)
        bad = send_test(conn, _hook(conn, failing, "failing").webhook_id, timeout_s=5)
    closed = Receiver(SECRET, url=f"http://127.0.0.1:{free_port()}/hook")
    gone = send_test(conn, _hook(conn, closed, "gone").webhook_id, timeout_s=5)
    assert (good.ok, good.status, good.error) == (True, 200, None)
    assert (bad.ok, bad.status, bad.error) == (False, 500, "HTTP 500")
    assert not gone.ok and gone.status is None and gone.error
    (request,) = ok.requests
    assert json.loads(request.body)["event"] == "test" and request.key == good.idempotency_key
    assert ok.bad_signatures == 0
    assert conn.execute("SELECT count(*) FROM delivery").fetchone() == (0,)
    with pytest.raises(WebhookNotFound):
        send_test(conn, 999)


def test_the_worker_thread_delivers_until_stopped(conn: Conn, db_url: str) -> None:
    receiver = Receiver(SECRET)
    with serve(receiver):
        _hook(conn, receiver)
        worker = DeliveryWorker(db_url, DeliveryConfig(poll_interval_s=0.05))
        with worker:
            apply_changes(conn, [change()])
            deadline = time.monotonic() + 30
            while not receiver.processed and time.monotonic() < deadline:
                time.sleep(0.05)
    assert len(receiver.processed) == 1
    assert _statuses(conn) == Counter({"delivered": 1})


def test_a_notification_that_came_during_a_pass_ends_the_wait(conn: Conn, db_url: str) -> None:
    # An alert committed while the worker ran a pass's queries: the notification is read with
    # a query's answer and kept by psycopg; the wait must end at once, not after its timeout.
    worker = DeliveryWorker(db_url)
    try:
        worker.run_once()  # connects and listens; nothing is due
        conn.execute("NOTIFY alert_changes, '1'")
        worker.run_once()  # a pass's queries take the notification in
        started = time.monotonic()
        worker._wait(5.0)
        assert time.monotonic() - started < 1.0
    finally:
        worker.close()
