"""API tokens (admin): create (the token is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from .. import models, tokens
from ..deps import Admin, Conn
from ..problems import problem_responses

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


def _out(info: tokens.TokenInfo) -> models.Token:
    return models.Token(
        token_id=info.token_id,
        name=info.name,
        role=info.role,
        created_by=info.created_by,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


@router.post(
    "",
    operation_id="createToken",
    response_model=models.TokenCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a token (shown only in this answer)",
    responses=problem_responses(401, 403, 422),
)
def create_token(conn: Conn, caller: Admin, body: models.TokenIn) -> models.TokenCreated:
    token, info = tokens.create_token(conn, body.name, body.role, created_by=caller.name)
    return models.TokenCreated(**_out(info).model_dump(), token=token)


@router.get(
    "",
    operation_id="listTokens",
    response_model=list[models.Token],
    summary="The tokens (never their secrets)",
    responses=problem_responses(401, 403, 422),
)
def list_tokens(
    conn: Conn, _caller: Admin, revoked: Annotated[bool, Query()] = False
) -> list[models.Token]:
    return [_out(t) for t in tokens.list_tokens(conn, include_revoked=revoked)]


@router.delete(
    "/{token_id}",
    operation_id="revokeToken",
    response_model=models.Token,
    summary="Revoke a token at once",
    responses=problem_responses(401, 403, 404, 422),
)
def revoke_token(
    conn: Conn, _caller: Admin, token_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")]
) -> models.Token:
    return _out(tokens.revoke_token(conn, token_id))
