"""Webhook delivery of alert changes through a durable outbox in PostgreSQL.

::

    hook = add_webhook(conn, WebhookSpec("care-desk", "https://desk.example/hooks", secret))
    # rules.store calls enqueue() in the transaction of every alert change
    with DeliveryWorker(conninfo):          # a thread: claim, POST, mark; until stopped
        ...
    deliver_due(conn, DeliveryConfig(), clock=clock, rng=rng)   # one pass, for tests and tools
    send_test(conn, hook.webhook_id)        # a signed test request, now; its answer returned

A ``delivery`` row is written for each (feed entry, matching active webhook) in the change's
transaction, so a change that committed is never without its deliveries. A worker claims due
rows with ``FOR UPDATE SKIP LOCKED`` (several workers share the outbox), decides per row with
`rules.webhook.plan` (quiet hours, rate limit), counts the attempt and leases the row by
moving ``next_attempt_at`` past the request's timeout, commits, then POSTs. Only a 2xx answer
marks the row delivered; any other answer, a timeout or a refused connection schedules a retry
with exponential backoff and jitter, up to ``max_attempts`` (then ``failed``). A worker that
dies between the POST and the mark leaves the row leased; it is sent again when the lease
runs out, with the same body and ``Idempotency-Key``: at least once on the wire, exactly once
per key at a receiver that remembers the keys it has processed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeAlias

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .alerts import FeedEntry, is_urgent
from .errors import WebhookNotFound
from .webhook import SIGNATURE_HEADER, Claim, Webhook, WebhookSpec, plan, signature
from .webhook import backoff_delay as _backoff

__all__ = [
    "DeliveryConfig",
    "DeliveryReport",
    "DeliveryWorker",
    "SendResult",
    "add_webhook",
    "deliver_due",
    "encode_body",
    "enqueue",
    "get_webhook",
    "idempotency_key",
    "list_webhooks",
    "send_test",
    "set_webhook_active",
]

log = logging.getLogger(__name__)

Connection: TypeAlias = "psycopg.Connection[Any]"
Clock: TypeAlias = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How a worker delivers: timeouts, lease, retries, batch size and polling (seconds)."""

    timeout_s: float = 10.0
    lease_s: float = 60.0
    max_attempts: int = 15
    backoff_base_s: float = 2.0
    backoff_max_s: float = 900.0
    batch: int = 20
    poll_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.poll_interval_s <= 0 or self.backoff_base_s <= 0:
            raise ValueError("timeout, poll interval and backoff base must be positive")
        if self.lease_s <= self.timeout_s:
            raise ValueError("the lease must be longer than the request timeout")
        if self.max_attempts < 1 or self.batch < 1:
            raise ValueError("max_attempts and batch must be at least 1")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must not be below backoff_base_s")


@dataclass(frozen=True, slots=True)
class SendResult:
    """One HTTP attempt: ``ok`` for a 2xx; ``status`` None when no answer came."""

    ok: bool
    status: int | None
    error: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass of `deliver_due` did."""

    claimed: int = 0
    held: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


# Webhooks ---------------------------------------------------------------------------------------

_WEBHOOK_COLUMNS = (
    "webhook_id, name, url, secret, active, min_severity, categories, rate_per_minute,"
    " quiet_start, quiet_end, timezone, recent_sends"
)


def add_webhook(conn: Connection, spec: WebhookSpec) -> Webhook:
    """Stores a new webhook; it receives the changes committed from now on."""
    quiet = spec.quiet_hours or (None, None)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO webhook (name, url, secret, active, min_severity, categories,"
            " rate_per_minute, quiet_start, quiet_end, timezone)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _WEBHOOK_COLUMNS,
            (
                spec.name,
                spec.url,
                spec.secret,
                spec.active,
                spec.min_severity,
                None if spec.categories is None else sorted(spec.categories),
                spec.rate_per_minute,
                quiet[0],
                quiet[1],
                spec.timezone,
            ),
        )
        row = cur.fetchone()
    assert row is not None
    log.info("webhook %d (%s) added", row["webhook_id"], spec.name)
    return _webhook(row)


def get_webhook(conn: Connection, webhook_id: int) -> Webhook:
    """The webhook with this id, or `WebhookNotFound`."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT " + _WEBHOOK_COLUMNS + " FROM webhook WHERE webhook_id = %s", (webhook_id,)
        )
        row = cur.fetchone()
    if row is None:
        raise WebhookNotFound(webhook_id)
    return _webhook(row)


def list_webhooks(conn: Connection) -> list[Webhook]:
    """Every webhook, by id."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT " + _WEBHOOK_COLUMNS + " FROM webhook ORDER BY webhook_id")
        return [_webhook(r) for r in cur.fetchall()]


def set_webhook_active(conn: Connection, webhook_id: int, active: bool) -> Webhook:
    """Pauses or resumes a webhook; its pending deliveries wait while it is paused."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE webhook SET active = %s WHERE webhook_id = %s RETURNING " + _WEBHOOK_COLUMNS,
            (active, webhook_id),
        )
        row = cur.fetchone()
    if row is None:
        raise WebhookNotFound(webhook_id)
    return _webhook(row)


def _webhook(row: Mapping[str, Any]) -> Webhook:
    start, end = row["quiet_start"], row["quiet_end"]
    return Webhook(
        webhook_id=row["webhook_id"],
        name=row["name"],
        url=row["url"],
        secret=row["secret"],
        active=row["active"],
        min_severity=row["min_severity"],
        categories=None if row["categories"] is None else frozenset(row["categories"]),
        rate_per_minute=row["rate_per_minute"],
        quiet_hours=None if start is None else (start, end),
        timezone=row["timezone"],
        recent_sends=tuple(row["recent_sends"]),
    )


# Enqueueing (inside the alert change's transaction) ---------------------------------------------


def idempotency_key(alert_id: int, sequence: int) -> str:
    """The key of the ``sequence``-th change of an alert: the same on every retry."""
    return f"alert-{alert_id}-{sequence}"


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON with sorted keys, UTF-8."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def enqueue(conn: Connection, feed: FeedEntry, *, severity: str, category: str) -> int:
    """Writes a delivery of this change for each active webhook that wants it; the count.

    Call inside the transaction that records the change (`rules.store` does).
    """
    key = idempotency_key(feed.alert_id, feed.sequence)
    payload = {
        "idempotency_key": key,
        "event": feed.kind,
        "feed_id": feed.feed_id,
        "sequence": feed.sequence,
        "at": feed.at.isoformat(),
        "alert": dict(feed.alert),
    }
    cur = conn.execute(
        "INSERT INTO delivery (feed_id, webhook_id, idempotency_key, urgent, payload)"
        " SELECT %(feed)s, w.webhook_id, %(key)s, %(urgent)s, %(payload)s FROM webhook w"
        " WHERE w.active"
        " AND array_position(%(ranks)s::text[], w.min_severity)"
        " <= array_position(%(ranks)s::text[], %(severity)s)"
        " AND (w.categories IS NULL OR %(category)s = ANY(w.categories))",
        {
            "feed": feed.feed_id,
            "key": key,
            "urgent": is_urgent(severity, category),
            "payload": Jsonb(payload),
            "ranks": ["info", "warning", "critical"],
            "severity": severity,
            "category": category,
        },
    )
    return cur.rowcount


# Delivering -------------------------------------------------------------------------------------


def deliver_due(
    conn: Connection,
    config: DeliveryConfig,
    *,
    clock: Clock,
    rng: random.Random,
) -> DeliveryReport:
    """One pass: claims up to ``config.batch`` due deliveries, sends them, records the answers.

    ``conn`` must not be inside a transaction (each step commits on its own).
    """
    now = clock()
    sends, held, claimed = _claim(conn, config, now)
    delivered = retried = failed = 0
    for row, webhook in sends:
        body = encode_body(row["payload"])
        result = _post(webhook, body, row["idempotency_key"], config.timeout_s, clock())
        outcome = _finish(conn, config, row, result, clock(), rng)
        delivered += outcome == "delivered"
        retried += outcome == "pending"
        failed += outcome == "failed"
    return DeliveryReport(claimed, held, delivered, retried, failed)


def _claim(
    conn: Connection, config: DeliveryConfig, now: datetime
) -> tuple[list[tuple[dict[str, Any], Webhook]], int, int]:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT d.delivery_id, d.webhook_id, d.urgent, d.attempts, d.idempotency_key,"
            " d.payload FROM delivery d JOIN webhook w USING (webhook_id)"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= %s AND w.active"
            " ORDER BY d.urgent DESC, d.next_attempt_at, d.delivery_id LIMIT %s"
            " FOR UPDATE OF d SKIP LOCKED",
            (now, config.batch),
        )
        rows = cur.fetchall()
        if not rows:
            return [], 0, 0
        cur.execute(
            "SELECT " + _WEBHOOK_COLUMNS + " FROM webhook WHERE webhook_id = ANY(%s)"
            " ORDER BY webhook_id FOR UPDATE",
            ([r["webhook_id"] for r in rows],),
        )
        webhooks = {r["webhook_id"]: _webhook(r) for r in cur.fetchall()}
        claims = [Claim(r["delivery_id"], r["webhook_id"], r["urgent"]) for r in rows]
        decisions, windows = plan(now, claims, webhooks)
        sends: list[tuple[dict[str, Any], Webhook]] = []
        for row, decision in zip(rows, decisions, strict=True):
            if decision.action == "hold":
                cur.execute(
                    "UPDATE delivery SET next_attempt_at = %s WHERE delivery_id = %s",
                    (decision.until, row["delivery_id"]),
                )
                log.debug("delivery %d held: %s", row["delivery_id"], decision.reason)
                continue
            # The lease covers this request and the ones before it in this pass.
            lease = now + timedelta(seconds=config.lease_s + len(sends) * config.timeout_s)
            cur.execute(
                "UPDATE delivery SET attempts = attempts + 1, next_attempt_at = %s"
                " WHERE delivery_id = %s",
                (lease, row["delivery_id"]),
            )
            sends.append(({**row, "attempts": row["attempts"] + 1}, webhooks[row["webhook_id"]]))
        for webhook_id, window in windows.items():
            if window != webhooks[webhook_id].recent_sends:
                cur.execute(
                    "UPDATE webhook SET recent_sends = %s WHERE webhook_id = %s",
                    (list(window), webhook_id),
                )
    return sends, len(rows) - len(sends), len(rows)


def _finish(
    conn: Connection,
    config: DeliveryConfig,
    row: Mapping[str, Any],
    result: SendResult,
    now: datetime,
    rng: random.Random,
) -> str:
    delivery_id, attempts = row["delivery_id"], row["attempts"]
    with conn.transaction():
        if result.ok:
            conn.execute(
                "UPDATE delivery SET status = 'delivered', delivered_at = %s, last_error = NULL"
                " WHERE delivery_id = %s AND status = 'pending'",
                (now, delivery_id),
            )
            return "delivered"
        status = "failed" if attempts >= config.max_attempts else "pending"
        delay = _backoff(attempts, config.backoff_base_s, config.backoff_max_s, rng)
        conn.execute(
            "UPDATE delivery SET status = %s, next_attempt_at = %s, last_error = %s"
            " WHERE delivery_id = %s AND status = 'pending'",
            (status, now + timedelta(seconds=delay), result.error, delivery_id),
        )
    if status == "failed":
        log.warning(
            "delivery %d (%s) failed after %d attempts: %s",
            delivery_id, row["idempotency_key"], attempts, result.error,
        )  # fmt: skip
    else:
        log.debug("delivery %d attempt %d failed: %s", delivery_id, attempts, result.error)
    return status


def send_test(conn: Connection, webhook_id: int, *, timeout_s: float = 10.0) -> SendResult:
    """Sends a signed ``test`` event to the webhook now (not through the outbox)."""
    webhook = get_webhook(conn, webhook_id)
    now = datetime.now(UTC)
    key = f"test-{uuid.uuid4().hex}"
    payload = {
        "idempotency_key": key,
        "event": "test",
        "at": now.isoformat(),
        "webhook": {"id": webhook.webhook_id, "name": webhook.name},
    }
    result = _post(webhook, encode_body(payload), key, timeout_s, now)
    log.info("test delivery to webhook %d: %s", webhook_id, result.status or result.error)
    return result


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer other than 2xx: retried, never followed


@cache
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_RefuseRedirects)


def _post(webhook: Webhook, body: bytes, key: str, timeout_s: float, now: datetime) -> SendResult:
    request = urllib.request.Request(
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: signature(body, webhook.secret),
            "X-Can2care-Timestamp": str(int(now.timestamp())),
            "User-Agent": "can2care-webhooks",
        },
    )
    try:
        with _opener().open(request, timeout=timeout_s) as response:
            status = int(response.status)
            response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        return SendResult(False, exc.code, f"HTTP {exc.code}", key)
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad URLs
        return SendResult(False, None, f"{type(exc).__name__}: {exc}", key)
    ok = 200 <= status < 300
    return SendResult(ok, status, None if ok else f"HTTP {status}", key)


class DeliveryWorker:
    """Delivers due rows in a background thread until stopped.

    ``clock`` (default: the system clock, UTC) and ``rng`` are injectable for tests. Several
    workers, in one process or many, may share an outbox. Use as a context manager or call
    `start` and `stop`; `run_once` does one pass on the calling thread (not while started).
    """

    def __init__(
        self,
        conninfo: str,
        config: DeliveryConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._config = config or DeliveryConfig()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    def run_once(self) -> DeliveryReport:
        """One pass of `deliver_due` on the worker's connection (opened when needed)."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._conn.execute("LISTEN alert_changes")  # the store's NOTIFY wakes _wait
        return deliver_due(self._conn, self._config, clock=self._clock, rng=self._rng)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the delivery worker is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="can2care-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stops after the request in flight (if any) and closes the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("delivery worker still busy after %s s; left to finish", timeout)
                return
            self._thread = None
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> DeliveryWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        log.info("delivery worker started")
        while not self._stop.is_set():
            try:
                report = self.run_once()
            except psycopg.OperationalError as exc:
                log.warning("delivery worker: database unavailable (%s); retrying", exc)
                self.close()
                self._stop.wait(self._config.poll_interval_s)
                continue
            except Exception:
                log.exception("delivery worker: unexpected error; continuing")
                self.close()
                self._stop.wait(self._config.poll_interval_s)
                continue
            if report.claimed == 0:
                try:
                    self._wait(self._config.poll_interval_s)
                except psycopg.OperationalError as exc:
                    log.warning("delivery worker: database unavailable (%s); retrying", exc)
                    self.close()
                    self._stop.wait(self._config.poll_interval_s)
        log.info("delivery worker stopped")

    def _wait(self, timeout: float) -> None:
        """Until an alert change is committed (the store's NOTIFY), ``timeout``, or stop."""
        conn = self._conn
        if conn is None or conn.closed:
            self._stop.wait(timeout)
            return
        # A notification that came while the pass ran its queries waits in the connection's
        # backlog, not on the socket: ``notifies`` returns it at once.
        for _ in conn.notifies(timeout=timeout, stop_after=1):
            pass
        for _ in conn.notifies(timeout=0):
            pass
