"""Webhooks as values and the delivery decisions about them (pure: no I/O here).

::

    signature(body, secret)              # "sha256=<hex HMAC-SHA256 of body>"
    verify(body, secret, header)         # what a receiver does, in constant time
    backoff_delay(attempts, base, cap, rng)
    quiet_until(now, webhook)            # None, or when the webhook's quiet hours end
    plan(now, claims, webhooks)          # send or hold each claimed delivery

`rules.delivery` keeps webhooks and deliveries in the database and does the HTTP; this module
decides. The rate limit is a sliding window: at most ``rate_per_minute`` requests to a webhook
in any 60 seconds, counted from the send times kept in the webhook's row.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from bisect import insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .alerts import SEVERITIES
from .changes import Severity
from .errors import InvalidWebhook

__all__ = [
    "RATE_WINDOW",
    "SIGNATURE_HEADER",
    "Claim",
    "Decision",
    "Webhook",
    "WebhookSpec",
    "accepts",
    "backoff_delay",
    "plan",
    "quiet_until",
    "signature",
    "verify",
]

SIGNATURE_HEADER = "X-Can2care-Signature"
RATE_WINDOW = timedelta(seconds=60)
_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """A webhook to create: where to send, the secret to sign with, what and when.

    ``categories`` None means every category; ``quiet_hours`` is (start, end) in local time
    of ``timezone`` (an IANA name), wrapping midnight when start > end.
    """

    name: str
    url: str
    secret: str = field(repr=False)
    active: bool = True
    min_severity: Severity = "info"
    categories: frozenset[str] | None = None
    rate_per_minute: int = 60
    quiet_hours: tuple[time, time] | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidWebhook(f"webhook URL must be http(s)://host/..., not {self.url!r}")
        if not self.name or not self.secret:
            raise InvalidWebhook("a webhook needs a name and a secret")
        if self.min_severity not in SEVERITIES:
            raise InvalidWebhook(f"unknown severity {self.min_severity!r}")
        if not 1 <= self.rate_per_minute <= 10_000:
            raise InvalidWebhook(f"rate_per_minute must be 1..10000, not {self.rate_per_minute}")
        if self.quiet_hours is not None and self.quiet_hours[0] == self.quiet_hours[1]:
            raise InvalidWebhook("quiet hours must start and end at different times")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidWebhook(f"unknown time zone {self.timezone!r}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook(WebhookSpec):
    """A stored webhook (`rules.delivery.get_webhook`): its spec, its id and the times of its
    recent requests."""

    webhook_id: int
    recent_sends: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    """A due delivery claimed by a worker."""

    delivery_id: int
    webhook_id: int
    urgent: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """Send now, or hold until ``until`` (quiet hours or the rate limit)."""

    delivery_id: int
    action: Literal["send", "hold"]
    until: datetime | None = None
    reason: str | None = None


def signature(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    return hmac.compare_digest(signature(body, secret), header)


def accepts(webhook: Webhook | WebhookSpec, severity: str, category: str) -> bool:
    """Whether the webhook wants alerts of this severity and category."""
    if _RANK.get(severity, -1) < _RANK[webhook.min_severity]:
        return False
    return webhook.categories is None or category in webhook.categories


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next try after ``attempts`` failed tries: exponential, jittered.

    The n-th delay lies in [d/2, d] with d = min(cap, base * 2**(n-1)) ("equal jitter"), so
    delays never shrink from one failure to the next and workers do not retry in step.
    """
    if attempts < 1:
        raise ValueError("backoff_delay needs at least one failed attempt")
    ceiling = min(cap, base * 2.0 ** min(attempts - 1, 60))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def quiet_until(now: datetime, webhook: Webhook) -> datetime | None:
    """When the webhook's quiet hours end if ``now`` is inside them, else None."""
    if webhook.quiet_hours is None:
        return None
    start, end = webhook.quiet_hours
    zone = ZoneInfo(webhook.timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= clock < end, local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    ends = datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
    return max(ends, now + timedelta(seconds=1))  # a daylight-saving jump never goes back


def _window(now: datetime, sends: Iterable[datetime]) -> list[datetime]:
    # Sends stamped ahead of ``now`` (another worker's clock) are kept and counted.
    return sorted(t for t in sends if t > now - RATE_WINDOW)


def plan(
    now: datetime, claims: Sequence[Claim], webhooks: Mapping[int, Webhook]
) -> tuple[list[Decision], dict[int, tuple[datetime, ...]]]:
    """Sends or holds each claim, in order; returns the decisions and the new send windows.

    A non-urgent delivery inside its webhook's quiet hours waits until they end. A delivery
    whose webhook had ``rate_per_minute`` sends in the last 60 seconds waits until the oldest
    of them leaves the window. Each send is added to its webhook's window at ``now``.
    """
    windows = {wid: _window(now, hook.recent_sends) for wid, hook in webhooks.items()}
    decisions = []
    for claim in claims:
        hook = webhooks[claim.webhook_id]
        quiet = None if claim.urgent else quiet_until(now, hook)
        window = windows[claim.webhook_id]
        if quiet is not None:
            decisions.append(Decision(claim.delivery_id, "hold", quiet, "quiet hours"))
        elif len(window) >= hook.rate_per_minute:
            free = window[len(window) - hook.rate_per_minute] + RATE_WINDOW
            decisions.append(Decision(claim.delivery_id, "hold", free, "rate limit"))
        else:
            insort(window, now)
            decisions.append(Decision(claim.delivery_id, "send"))
    return decisions, {wid: tuple(w) for wid, w in windows.items()}
