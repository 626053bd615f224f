"""Request dependencies: a pooled database connection and the caller's token and role."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeAlias

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from .errors import Forbidden, Unauthorized
from .settings import Settings
from .tokens import Principal, Role, allows, authenticate

__all__ = [
    "Admin",
    "Agent",
    "Conn",
    "StreamAgent",
    "Supervisor",
    "get_conn",
    "get_pool",
    "get_settings",
    "require",
]

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API token: `can2care api token create`")


# Dependencies that do not block are coroutines: FastAPI runs each plain function in a worker
# thread, a hop that cost more than the function (measured: benchmarks/bench_api.py).


async def get_pool(request: Request) -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = request.app.state.pool
    return pool


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(
    pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Iterator[psycopg.Connection[Any]]:
    """A connection (autocommit) from the pool for the request's duration."""
    with pool.connection(timeout=settings.pool_timeout_s) as conn:
        yield conn


Conn: TypeAlias = Annotated[psycopg.Connection[Any], Depends(get_conn)]


def require(role: Role, *, hold: bool = True) -> Callable[..., Principal]:
    """A dependency: the caller's principal, whose role must allow ``role``'s requests.

    The token is checked on the request's own connection (`get_conn`, one per request): a
    request that held one pooled connection while waiting for a second could wait forever
    once every connection is held so (more requests than ``pool_max`` at once).
    ``hold=False`` is for a request that must not keep a connection while it runs (the event
    stream): the check borrows one for its query only.
    """

    def token(credentials: HTTPAuthorizationCredentials | None) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("send an API token: Authorization: Bearer <token>")
        return credentials.credentials

    def check(conn: psycopg.Connection[Any], token: str) -> Principal:
        principal = authenticate(conn, token)
        if principal is None:
            raise Unauthorized("the API token is unknown or revoked")
        if not allows(principal.role, role):
            raise Forbidden(
                f"this needs the {role} role; the token {principal.name!r} is {principal.role}"
            )
        return principal

    def on_request_connection(
        conn: Conn,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return check(conn, token(credentials))

    def on_borrowed_connection(
        pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
        settings: Annotated[Settings, Depends(get_settings)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        sent = token(credentials)
        with pool.connection(timeout=settings.pool_timeout_s) as conn:
            return check(conn, sent)

    dependency = on_request_connection if hold else on_borrowed_connection
    dependency.__name__ = f"require_{role}" + ("" if hold else "_briefly")
    return dependency


Agent: TypeAlias = Annotated[Principal, Depends(require("agent"))]
Supervisor: TypeAlias = Annotated[Principal, Depends(require("supervisor"))]
Admin: TypeAlias = Annotated[Principal, Depends(require("admin"))]
# The event stream: it must not hold a pooled connection for its whole life.
StreamAgent: TypeAlias = Annotated[Principal, Depends(require("agent", hold=False))]
