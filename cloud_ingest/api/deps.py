"""Request dependencies: a pooled database connection and the caller's token and role."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

import anyio
import anyio.to_thread
import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.pq import TransactionStatus
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


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    return credentials.credentials


def _authenticated(conn: psycopg.Connection[Any], token: str) -> Principal:
    principal = authenticate(conn, token)
    if principal is None:
        raise Unauthorized("the API token is unknown or revoked")
    return principal


def _checked_out(pool: ConnectionPool[Any], timeout: float, token: str) -> _Session:
    conn = pool.getconn(timeout=timeout)
    try:
        return _Session(conn, _authenticated(conn, token))
    except BaseException:
        pool.putconn(conn)
        raise


@dataclass(frozen=True, slots=True)
class _Session:
    """A request's pooled connection and its caller, checked out in one worker-thread hop."""

    conn: psycopg.Connection[Any]
    principal: Principal


async def _session(
    pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[_Session]:
    """The request's connection (autocommit) and its authenticated caller.

    Both come in one hop to a worker thread (taking a connection and checking the token on
    it); the token is checked on the request's own connection, so a request never holds one
    pooled connection while waiting for a second (that could wait forever once more requests
    than ``pool_max`` run at once).
    """
    token = _token(credentials)  # no token: 401 before any connection is taken
    with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
        session = await anyio.to_thread.run_sync(_checked_out, pool, settings.pool_timeout_s, token)
    try:
        yield session
    finally:
        if session.conn.info.transaction_status == TransactionStatus.IDLE:
            pool.putconn(session.conn)  # nothing to roll back: no I/O, no hop
        else:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pool.putconn, session.conn)


async def get_conn(
    session: Annotated[_Session, Depends(_session)],
) -> psycopg.Connection[Any]:
    """A connection (autocommit) from the pool for the request's duration."""
    return session.conn


Conn: TypeAlias = Annotated[psycopg.Connection[Any], Depends(get_conn)]


def require(role: Role, *, hold: bool = True) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, whose role must allow ``role``'s requests.

    ``hold=False`` is for a request that must not keep a connection while it runs (the event
    stream): the check borrows one for its query only.
    """

    def allowed(principal: Principal) -> Principal:
        if not allows(principal.role, role):
            raise Forbidden(
                f"this needs the {role} role; the token {principal.name!r} is {principal.role}"
            )
        return principal

    async def on_request_connection(
        session: Annotated[_Session, Depends(_session)],
    ) -> Principal:
        return allowed(session.principal)

    def borrowed(pool: ConnectionPool[Any], timeout: float, token: str) -> Principal:
        with pool.connection(timeout=timeout) as conn:
            return _authenticated(conn, token)

    async def on_borrowed_connection(
        pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
        settings: Annotated[Settings, Depends(get_settings)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = _token(credentials)
        principal = await anyio.to_thread.run_sync(borrowed, pool, settings.pool_timeout_s, token)
        return allowed(principal)

    dependency = on_request_connection if hold else on_borrowed_connection
    dependency.__name__ = f"require_{role}" + ("" if hold else "_briefly")
    return dependency


Agent: TypeAlias = Annotated[Principal, Depends(require("agent"))]
Supervisor: TypeAlias = Annotated[Principal, Depends(require("supervisor"))]
Admin: TypeAlias = Annotated[Principal, Depends(require("admin"))]
# The event stream: it must not hold a pooled connection for its whole life.
StreamAgent: TypeAlias = Annotated[Principal, Depends(require("agent", hold=False))]
