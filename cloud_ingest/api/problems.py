"""RFC 9457 problem details: every error the API answers with, mapped in this one place.

A problem is ``application/problem+json`` with ``type`` (``urn:can2care:problem:<slug>``),
``title``, ``status``, ``detail`` and, for 422s, ``errors`` naming each field
(``query.limit``, ``body.segment.regions``, ...). docs/api.md lists the types.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rules.errors import (
    AlertNotFound,
    CampaignNotFound,
    InvalidCampaign,
    InvalidCursor,
    InvalidTransition,
    InvalidWebhook,
    RuleFileError,
    RulesError,
    WebhookNotFound,
)

from .errors import ApiError

__all__ = ["PROBLEM_TYPE", "FieldError", "Problem", "install", "problem_responses"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:can2care:problem:"
MEDIA_TYPE = "application/problem+json"

# Domain error -> (status, slug, title). The most specific class is found first (MRO order).
_DOMAIN: Mapping[type[Exception], tuple[int, str, str]] = {
    AlertNotFound: (404, "not-found", "Not found"),
    WebhookNotFound: (404, "not-found", "Not found"),
    CampaignNotFound: (404, "not-found", "Not found"),
    InvalidTransition: (409, "invalid-transition", "Not allowed in the alert's status"),
    InvalidCursor: (422, "invalid-request", "Invalid request"),
    InvalidWebhook: (422, "invalid-request", "Invalid request"),
    InvalidCampaign: (422, "invalid-request", "Invalid request"),
    RuleFileError: (422, "invalid-rules", "The rule file has problems"),
    RulesError: (422, "invalid-request", "Invalid request"),
}
# Fields that a domain error's value came from, for the 422's ``errors``.
_DOMAIN_FIELD: Mapping[type[Exception], str] = {
    InvalidCursor: "query.cursor",
    RuleFileError: "body.text",
}
_HTTP_SLUGS = {
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed for this role"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


class FieldError(BaseModel):
    field: str = Field(examples=["query.limit"])
    message: str = Field(examples=["Input should be less than or equal to 1000"])


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_TYPE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["no alert with id 42"])
    instance: str | None = Field(default=None, examples=["/v1/alerts/42"])
    errors: list[FieldError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the problem schema for each status it may answer."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": _describe(status)}
        for status in statuses
    }


def _describe(status: int) -> str:
    return {
        401: "No token, or an unknown or revoked one",
        403: "The token's role does not allow this",
        404: "Not found",
        409: "Conflicts with the stored state",
        422: "A field is invalid (named in `errors`)",
        503: "The database is unavailable; retry",
    }.get(status, "Problem")


def _answer(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors) if errors else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=_field(e["loc"]), message=str(e["msg"])) for e in exc.errors()]
    names = ", ".join(dict.fromkeys(e.field for e in errors))
    return _answer(request, 422, "invalid-request", "Invalid request", f"invalid: {names}", errors)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    errors = [FieldError(field=exc.field, message=exc.detail)] if exc.field else None
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return _answer(request, exc.status, exc.slug, exc.title, exc.detail, errors, headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    for cls in type(exc).__mro__:
        if cls in _DOMAIN:
            status, slug, title = _DOMAIN[cls]
            break
    else:  # pragma: no cover - RulesError is in the table
        status, slug, title = 500, "internal", "Internal error"
    errors = None
    if isinstance(exc, RuleFileError):
        errors = [FieldError(field="body.text", message=p) for p in exc.problems]
    elif status == 422:
        field = next((_DOMAIN_FIELD[c] for c in type(exc).__mro__ if c in _DOMAIN_FIELD), "body")
        errors = [FieldError(field=field, message=str(exc))]
    return _answer(request, status, slug, title, str(exc), errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI: a body it cannot read (not UTF-8, not JSON)
        detail = exc.detail if isinstance(exc.detail, str) else "the body cannot be read"
        errors = [FieldError(field="body", message=detail)]
        return _answer(request, 422, "invalid-request", "Invalid request", detail, errors)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    return _answer(request, exc.status_code, slug, title, detail, headers=exc.headers)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _answer(
        request,
        503,
        "unavailable",
        "Service unavailable",
        "the database is unavailable; retry",
        headers={"Retry-After": "2"},
    )


async def _refused_value(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot store or compare: text with a NUL character, a number out
    of its column's range. The request's data, not the service, is at fault."""
    log.info("%s %s: the database refused a value: %s", request.method, request.url.path, exc)
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail = f"a value cannot be stored: {reason}"
    errors = [FieldError(field="request", message=detail)]
    return _answer(request, 422, "invalid-request", "Invalid request", detail, errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return _answer(request, 500, "internal", "Internal error", None)


def install(app: FastAPI) -> None:
    """Installs the handlers that turn every error into a problem document."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RulesError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(psycopg.DataError, _refused_value)
    app.add_exception_handler(psycopg.OperationalError, _unavailable)
    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
