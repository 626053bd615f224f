"""Prometheus metrics of one application: its own registry, filled by an ASGI middleware."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    stream_clients: Gauge
    stream_events: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry,
            Counter(
                "can2care_api_requests",
                "HTTP requests answered",
                ["method", "route", "status"],
                registry=registry,
            ),
            Histogram(
                "can2care_api_request_seconds",
                "Time to the response's start",
                ["method", "route"],
                registry=registry,
                buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            ),
            Gauge("can2care_api_stream_clients", "Open alert streams", registry=registry),
            Counter(
                "can2care_api_stream_events", "Alert changes sent on streams", registry=registry
            ),
        )


class MetricsMiddleware:
    """Counts each HTTP request by its route template (not its path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.latency.labels(scope["method"], _route(scope)).observe(
                    time.perf_counter() - start
                )
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    """The matched route's template (the router records it in the scope), else "other"."""
    return str(getattr(scope.get("route"), "path", "other"))
