"""Health (no token) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool

from can2care import __version__

from ..deps import Agent
from ..models import Health
from ..problems import problem_responses

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    operation_id="getHealth",
    response_model=Health,
    summary="Liveness and database reachability (no token needed)",
    responses={503: {"model": Health, "description": "The database is unreachable"}},
)
def get_health(request: Request, response: Response) -> Health:
    pool: ConnectionPool[Any] = request.app.state.pool
    try:
        with pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
        ok = True
    except Exception:  # any failure is "not reachable" here, and says so
        ok = False
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "degraded", database=ok, version=__version__)


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
        **problem_responses(401, 403),
    },
)
def get_metrics(request: Request, _caller: Agent) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
