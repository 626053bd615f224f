"""The application factory: `create_app(settings)` builds everything, nothing is built before."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from can2care import __version__

from . import problems
from .metrics import Metrics, MetricsMiddleware
from .routes import ROUTERS
from .settings import Settings
from .stream import Broadcaster

__all__ = ["TAGS", "create_app"]

log = logging.getLogger(__name__)

TAGS = [
    {"name": "health", "description": "Liveness and metrics"},
    {"name": "vehicles", "description": "The fleet: registry, latest state, time series"},
    {
        "name": "broker-logins",
        "description": "Vehicles' MQTT broker logins (admin); never API credentials",
    },
    {"name": "alerts", "description": "Care alerts, their lifecycle and history"},
    {"name": "service", "description": "Services done (they reset the service reminders)"},
    {"name": "campaigns", "description": "Campaigns for a segment of the fleet, and outreach"},
    {"name": "rules", "description": "The care rules: list, validate, store, reload"},
    {"name": "webhooks", "description": "Where alert changes are delivered (admin)"},
    {"name": "tokens", "description": "API tokens (admin)"},
]

_DESCRIPTION = """\
The care team's API of can2care (docs/api.md). Every endpoint but `/health` needs
`Authorization: Bearer <token>`; a token's role is `agent`, `supervisor` or `admin`, each
allowed what the one before is. Errors are RFC 9457 problem details
(`application/problem+json`).
"""


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Each pooled connection: times in UTC (the API's JSON), and a plan made for each
    statement's own values. psycopg prepares a statement run five times; PostgreSQL then
    switches to a plan made without the values when it guesses that one no dearer, and for the
    alert list it guesses wrong: `status = $1` cannot use the index on unresolved alerts, and
    a page took 22-80 ms instead of 1-2 (benchmarks/bench_api.py)."""
    conn.execute("SET TimeZone TO 'UTC'")
    conn.execute("SET plan_cache_mode TO force_custom_plan")


def create_app(settings: Settings) -> FastAPI:
    """The API application for ``settings``; the pool opens when the application starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: ConnectionPool[Any] = ConnectionPool(
            settings.database_url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="can2care-api",
        )
        pool.open(wait=True, timeout=settings.pool_timeout_s * 4)
        broadcaster = Broadcaster(settings, app.state.metrics)
        app.state.pool = pool
        app.state.broadcaster = broadcaster
        await broadcaster.start()
        log.info("API ready (pool %d..%d)", settings.pool_min, settings.pool_max)
        try:
            yield
        finally:
            await broadcaster.stop()
            pool.close()

    app = FastAPI(
        title="can2care care team API",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    app.state.metrics = Metrics.create()
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def app_from_env() -> FastAPI:
    """The application with settings from ``CAN2CARE_*`` variables, for ``uvicorn --factory``
    (several worker processes: ``can2care api --workers N``)."""
    return create_app(Settings.from_env())
