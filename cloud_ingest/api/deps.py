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

__all__ = ["Conn", "get_conn", "get_pool", "get_settings", "require"]

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API token: `can2care api token create`")


def get_pool(request: Request) -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = request.app.state.pool
    return pool


def get_settings(request: Request) -> Settings:
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


def require(role: Role) -> Callable[..., Principal]:
    """A dependency: the caller's principal, whose role must allow ``role``'s requests."""

    def dependency(
        pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
        settings: Annotated[Settings, Depends(get_settings)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("send an API token: Authorization: Bearer <token>")
        with pool.connection(timeout=settings.pool_timeout_s) as conn:
            principal = authenticate(conn, credentials.credentials)
        if principal is None:
            raise Unauthorized("the API token is unknown or revoked")
        if not allows(principal.role, role):
            raise Forbidden(
                f"this needs the {role} role; the token {principal.name!r} is {principal.role}"
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Agent: TypeAlias = Annotated[Principal, Depends(require("agent"))]
Supervisor: TypeAlias = Annotated[Principal, Depends(require("supervisor"))]
Admin: TypeAlias = Annotated[Principal, Depends(require("admin"))]
