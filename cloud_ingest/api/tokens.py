"""API tokens: created by an administrator, stored hashed, each with a role.

::

    token, info = create_token(conn, "ana", "agent", created_by="admin")   # shown once
    principal = authenticate(conn, token)     # Principal("ana", "agent", token_id) or None
    revoke_token(conn, info.token_id)

A token is ``c2c_<token id: 16 hex>_<secret: 43 base64url>``; the secret is 32 random bytes
and only its SHA-256 is stored. The id finds the row, the hashes are compared in constant
time. Roles are ordered: an ``admin`` may do what a ``supervisor`` may, who may do what an
``agent`` may.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias, get_args

import psycopg

from .errors import InvalidRequest, NotFound
from .queries import one_statement

__all__ = [
    "ROLES",
    "Principal",
    "Role",
    "TokenInfo",
    "allows",
    "authenticate",
    "create_token",
    "list_tokens",
    "parse_token",
    "revoke_token",
]

Connection: TypeAlias = "psycopg.Connection[Any]"
Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_TOKEN = re.compile(r"c2c_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: the token's name (the actor of changes) and role."""

    name: str
    role: Role
    token_id: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return _RANK[role] >= _RANK[needed]


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return None if match is None else (match[1], match[2])


def create_token(
    conn: Connection, name: str, role: str, *, created_by: str
) -> tuple[str, TokenInfo]:
    """A new token (the only time its secret is seen) and what is stored about it."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
    if not name.strip():
        raise InvalidRequest("a token needs a name", field="name")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO api_token (token_id, name, role, secret_hash, created_by)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING created_at",
            (token_id, name.strip(), role, _hash(secret), created_by),
        ).fetchone()
    assert row is not None
    info = TokenInfo(token_id, name.strip(), role, created_by, row[0], None)
    return f"c2c_{token_id}_{secret}", info


def authenticate(conn: Connection, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token, else None."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    with one_statement(conn):  # every request: no BEGIN and COMMIT round trips
        row = conn.execute(
            "SELECT name, role, secret_hash FROM api_token"
            " WHERE token_id = %s AND revoked_at IS NULL",
            (token_id,),
        ).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[2]), _hash(secret)):
        return None
    return Principal(str(row[0]), row[1], token_id)


def list_tokens(conn: Connection, *, include_revoked: bool = False) -> list[TokenInfo]:
    with conn.transaction():
        rows = conn.execute(
            "SELECT token_id, name, role, created_by, created_at, revoked_at FROM api_token"
            " WHERE %s OR revoked_at IS NULL ORDER BY created_at, token_id",
            (include_revoked,),
        ).fetchall()
    return [TokenInfo(*row) for row in rows]


def revoke_token(conn: Connection, token_id: str) -> TokenInfo:
    """Revokes a token at once (the next request with it is refused)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = %s"
            " RETURNING token_id, name, role, created_by, created_at, revoked_at",
            (token_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"no token with id {token_id!r}")
    return TokenInfo(*row)
