"""Helpers of the alert store and delivery tests: engine changes and a real webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import sleep
from typing import Any

import psycopg

from can2care.devservices._proc import free_port
from cloud_ingest.storage import Vehicle, migrate, register_vehicles
from rules.changes import AlertChange, Category, ChangeKind, Severity

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def prepare(conn: Conn) -> Conn:
    """Migrates the test's database and registers veh-1..veh-3 (north, north, south)."""
    migrate(conn)
    register_vehicles(
        conn,
        [
            Vehicle("veh-1", region="north"),
            Vehicle("veh-2", region="north"),
            Vehicle("veh-3", region="south"),
        ],
    )
    return conn


def change(
    kind: ChangeKind = "raised",
    vehicle: str = "veh-1",
    rule: str = "low_soc",
    *,
    subkey: str | None = None,
    time: datetime = T0,
    severity: Severity = "warning",
    category: Category = "care",
    auto_resolve: bool = True,
    details: dict[str, Any] | None = None,
) -> AlertChange:
    return AlertChange(
        kind,
        vehicle,
        rule,
        subkey,
        time,
        severity,
        category,
        f"{rule} on {vehicle}",
        auto_resolve,
        details or {"soc": 9.5},
    )


@dataclass
class Request:
    """One request as the receiver saw it."""

    key: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver on a loopback port that remembers the keys it has processed.

    ``answer(n, request)`` decides each answer from the request's number (0, 1, ...): an HTTP
    status, or a float to sleep that many seconds and then answer 200. ``requests`` is every
    request on the wire; ``processed`` holds each key answered 2xx once (later requests with a
    processed key are duplicates it ignores). ``gate``, when given, holds every request until
    it is set.
    """

    secret: str
    answer: Callable[[int, Request], int | float] = lambda n, r: 200
    requests: list[Request] = field(default_factory=list)
    processed: dict[str, bytes] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event | None = None
    url: str = ""
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> int | float:
        """Records the request and returns its answer; a 2xx answer processes its key."""
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
        )
        with self.lock:
            number = len(self.requests)
            self.requests.append(request)
        self.arrived.set()
        if self.gate is not None:
            self.gate.wait(30)
        if not hmac.compare_digest(expected, request.headers.get("x-can2care-signature", "")):
            with self.lock:
                self.bad_signatures += 1
            return 401
        answer = self.answer(number, request)
        if isinstance(answer, float) or 200 <= answer < 300:
            with self.lock:
                self.processed.setdefault(request.key, request.body)
        return answer

    def keys_on_wire(self) -> list[str]:
        with self.lock:
            return [r.key for r in self.requests]

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for body in self.processed.values()]


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    """Runs the receiver in a thread for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = receiver.handle(Request(headers.get("idempotency-key", ""), body, headers))
            if isinstance(answer, float):
                sleep(answer)
                answer = 200
            try:
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass

    port = free_port()
    server = Server(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        if receiver.gate is not None:
            receiver.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
