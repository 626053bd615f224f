"""Webhooks (admin): register, list, get, delete, pause or resume, send a test delivery."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from rules import delivery
from rules.errors import InvalidWebhook, WebhookNotFound
from rules.webhook import Webhook, WebhookSpec

from .. import models, queries
from ..deps import Admin, Conn
from ..errors import Conflict
from ..problems import problem_responses

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[1])]


def _out(hook: Webhook) -> models.Webhook:
    start, end = hook.quiet_hours or (None, None)
    return models.Webhook(
        webhook_id=hook.webhook_id,
        name=hook.name,
        url=hook.url,
        active=hook.active,
        min_severity=hook.min_severity,
        categories=None if hook.categories is None else sorted(hook.categories),
        rate_per_minute=hook.rate_per_minute,
        quiet_start=start,
        quiet_end=end,
        timezone=hook.timezone,
    )


@router.post(
    "",
    operation_id="createWebhook",
    response_model=models.WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook",
    responses=problem_responses(401, 403, 409, 422),
)
def create_webhook(conn: Conn, _caller: Admin, body: models.WebhookIn) -> models.WebhookCreated:
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise InvalidWebhook("give both quiet_start and quiet_end, or neither")
    made = None if body.secret else secrets.token_urlsafe(32)
    quiet = None
    if body.quiet_start is not None and body.quiet_end is not None:
        quiet = (body.quiet_start, body.quiet_end)
    spec = WebhookSpec(
        name=body.name,
        url=body.url,
        secret=body.secret or made or "",
        min_severity=body.min_severity,
        categories=None if body.categories is None else frozenset(body.categories),
        rate_per_minute=body.rate_per_minute,
        quiet_hours=quiet,
        timezone=body.timezone,
    )
    if any(h.name == body.name for h in delivery.list_webhooks(conn)):
        raise Conflict(f"a webhook named {body.name!r} exists", field="body.name")
    hook = delivery.add_webhook(conn, spec)
    return models.WebhookCreated(**_out(hook).model_dump(), secret=made)


@router.get(
    "",
    operation_id="listWebhooks",
    response_model=list[models.Webhook],
    summary="Every webhook",
    responses=problem_responses(401, 403),
)
def list_webhooks(conn: Conn, _caller: Admin) -> list[models.Webhook]:
    return [_out(h) for h in delivery.list_webhooks(conn)]


@router.get(
    "/{webhook_id}",
    operation_id="getWebhook",
    response_model=models.Webhook,
    summary="A webhook",
    responses=problem_responses(401, 403, 404, 422),
)
def get_webhook(conn: Conn, _caller: Admin, webhook_id: WebhookId) -> models.Webhook:
    return _out(delivery.get_webhook(conn, webhook_id))


@router.delete(
    "/{webhook_id}",
    operation_id="deleteWebhook",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook and its pending deliveries",
    responses=problem_responses(401, 403, 404, 422),
)
def delete_webhook(conn: Conn, _caller: Admin, webhook_id: WebhookId) -> Response:
    if not queries.delete_webhook(conn, webhook_id):
        raise WebhookNotFound(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/pause",
    operation_id="pauseWebhook",
    response_model=models.Webhook,
    summary="Pause a webhook (its deliveries wait)",
    responses=problem_responses(401, 403, 404, 422),
)
def pause_webhook(conn: Conn, _caller: Admin, webhook_id: WebhookId) -> models.Webhook:
    return _out(delivery.set_webhook_active(conn, webhook_id, False))


@router.post(
    "/{webhook_id}/resume",
    operation_id="resumeWebhook",
    response_model=models.Webhook,
    summary="Resume a paused webhook",
    responses=problem_responses(401, 403, 404, 422),
)
def resume_webhook(conn: Conn, _caller: Admin, webhook_id: WebhookId) -> models.Webhook:
    return _out(delivery.set_webhook_active(conn, webhook_id, True))


@router.post(
    "/{webhook_id}/test",
    operation_id="testWebhook",
    response_model=models.WebhookTest,
    summary="Send a signed test delivery now; its answer",
    responses=problem_responses(401, 403, 404, 422),
)
def test_webhook(conn: Conn, _caller: Admin, webhook_id: WebhookId) -> models.WebhookTest:
    result = delivery.send_test(conn, webhook_id, timeout_s=5.0)
    return models.WebhookTest(
        ok=result.ok,
        status=result.status,
        error=result.error,
        idempotency_key=result.idempotency_key,
    )
