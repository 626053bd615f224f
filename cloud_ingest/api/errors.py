"""The API's exceptions (the tree is drawn in the package docstring)."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ApiError", "Conflict", "Forbidden", "InvalidRequest", "NotFound", "Unauthorized"]


class ApiError(Exception):
    """Base of every error raised by ``cloud_ingest.api``: answered as a problem document."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class Unauthorized(ApiError):
    """No bearer token, or one that is unknown or revoked."""

    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class Forbidden(ApiError):
    """The token's role does not allow the request."""

    status = 403
    slug = "forbidden"
    title = "Not allowed for this role"


class NotFound(ApiError, LookupError):
    """No such resource."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ApiError):
    """The request clashes with what is stored or configured (a name taken, ...)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class InvalidRequest(ApiError, ValueError):
    """A value the schema allows but the API refuses; ``field`` names it."""

    status = 422
    slug = "invalid-request"
    title = "Invalid request"
