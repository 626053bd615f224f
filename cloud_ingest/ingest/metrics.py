"""The ingest service's Prometheus metrics and its health, served over HTTP.

``GET /metrics`` is the Prometheus text format; ``GET /healthz`` answers 200 with a JSON
body when the service is connected to the broker and its last database transaction
succeeded, 503 with the same body otherwise (docs/ingest.md lists the metrics).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["HttpServer", "Metrics"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The service's metrics in a registry of their own (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "can2care_ingest_messages",
            "Messages handled, by topic kind and outcome (stored, duplicate, dead_letter)",
            ["kind", "outcome"],
            registry=r,
        )
        self.samples = Counter("can2care_ingest_samples", "Samples stored", registry=r)
        self.rows = Counter(
            "can2care_ingest_series_rows", "telemetry_series rows written", registry=r
        )
        self.dead_letters = Counter(
            "can2care_ingest_dead_letters", "Dead letters written, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "can2care_ingest_commit_seconds",
            "Duration of one flush's database transaction",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "can2care_ingest_lag_seconds",
            "From a message's receipt to the commit of its data",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            "can2care_ingest_pending_messages",
            "Messages received and not yet acknowledged",
            registry=r,
        )
        self.oldest_pending_seconds = Gauge(
            "can2care_ingest_oldest_pending_seconds",
            "Age of the oldest message not yet acknowledged (0 when none)",
            registry=r,
        )
        self.db_retries = Counter(
            "can2care_ingest_database_retries", "Transactions retried after an error", registry=r
        )
        self.db_up = Gauge(
            "can2care_ingest_database_up", "1 when the last transaction committed", registry=r
        )
        self.mqtt_connected = Gauge(
            "can2care_ingest_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.mqtt_connects = Counter(
            "can2care_ingest_mqtt_connects", "Successful connections to the broker", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HttpServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` from a daemon thread."""

    def __init__(
        self, host: str, port: int, metrics: Metrics, health: Callable[[], dict[str, Any]]
    ) -> None:
        handler = _handler(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on http://%s:%d/", *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    metrics: Metrics, health: Callable[[], dict[str, Any]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
            elif self.path in ("/healthz", "/health"):
                state = health()
                code = 200 if state.get("healthy") else 503
                self._send(code, "application/json", json.dumps(state).encode())
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler
