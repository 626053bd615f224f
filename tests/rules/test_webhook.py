"""The pure delivery decisions: signatures, backoff, quiet hours, the rate window, lifecycle."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.alerts import ACTIONS, next_status
from rules.errors import InvalidTransition, InvalidWebhook
from rules.webhook import (
    Claim,
    Webhook,
    WebhookSpec,
    accepts,
    backoff_delay,
    plan,
    quiet_until,
    signature,
    verify,
)

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def _hook(**kwargs: object) -> Webhook:
    return Webhook(
        webhook_id=1,
        name="desk",
        url="http://127.0.0.1/hook",
        secret="secret",
        **kwargs,  # type: ignore[arg-type]
    )


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"raised"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature(body, "secret") == f"sha256={expected}"
    assert verify(body, "secret", f"sha256={expected}")
    assert not verify(body + b" ", "secret", f"sha256={expected}")
    assert not verify(body, "secret", expected)


@given(st.integers(1, 40), st.integers(0, 2**32))
def test_backoff_is_jittered_within_half_to_full_and_capped(attempts: int, seed: int) -> None:
    delay = backoff_delay(attempts, 2.0, 300.0, random.Random(seed))
    ceiling = min(300.0, 2.0 * 2 ** (attempts - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_needs_a_failure() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, 1.0, 10.0, random.Random())


@pytest.mark.parametrize(
    ("now", "start", "end", "zone", "expected"),
    [
        # Europe/Berlin is UTC+1 in January: 22:00-07:00 local is 21:00-06:00 UTC.
        (datetime(2030, 1, 15, 2, 0, tzinfo=UTC), time(22), time(7), "Europe/Berlin",
         datetime(2030, 1, 15, 6, 0, tzinfo=UTC)),
        (datetime(2030, 1, 15, 21, 30, tzinfo=UTC), time(22), time(7), "Europe/Berlin",
         datetime(2030, 1, 16, 6, 0, tzinfo=UTC)),
        (datetime(2030, 1, 15, 20, 59, tzinfo=UTC), time(22), time(7), "Europe/Berlin", None),
        (datetime(2030, 1, 15, 6, 0, tzinfo=UTC), time(22), time(7), "Europe/Berlin", None),
        (datetime(2030, 1, 15, 12, 0, tzinfo=UTC), time(12), time(13), "UTC",
         datetime(2030, 1, 15, 13, 0, tzinfo=UTC)),
        (datetime(2030, 1, 15, 13, 0, tzinfo=UTC), time(12), time(13), "UTC", None),
        # The night the clocks go forward (Berlin, 2030-03-31): 07:00 local is 05:00 UTC.
        (datetime(2030, 3, 31, 0, 30, tzinfo=UTC), time(22), time(7), "Europe/Berlin",
         datetime(2030, 3, 31, 5, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_quiet_until(
    now: datetime, start: time, end: time, zone: str, expected: datetime | None
) -> None:
    assert quiet_until(now, _hook(quiet_hours=(start, end), timezone=zone)) == expected


def test_no_quiet_hours() -> None:
    assert quiet_until(NOW, _hook()) is None


def test_plan_holds_non_urgent_in_quiet_hours_and_sends_urgent() -> None:
    hook = _hook(quiet_hours=(time(11), time(13)))
    decisions, windows = plan(NOW, [Claim(1, 1, False), Claim(2, 1, True)], {1: hook})
    assert [(d.action, d.until, d.reason) for d in decisions] == [
        ("hold", datetime(2030, 1, 15, 13, tzinfo=UTC), "quiet hours"),
        ("send", None, None),
    ]
    assert windows == {1: (NOW,)}


def test_plan_keeps_a_sliding_window_of_sends() -> None:
    recent = (NOW - timedelta(seconds=70), NOW - timedelta(seconds=50), NOW - timedelta(seconds=5))
    hook = _hook(rate_per_minute=3, recent_sends=recent)
    claims = [Claim(i, 1, True) for i in range(3)]
    decisions, windows = plan(NOW, claims, {1: hook})
    assert [d.action for d in decisions] == ["send", "hold", "hold"]
    # The send 50 s ago leaves the window in 10 s.
    assert decisions[1].until == NOW + timedelta(seconds=10) and decisions[1].reason == "rate limit"
    assert windows[1] == (recent[1], recent[2], NOW)


def test_accepts_by_severity_and_category() -> None:
    hook = _hook(min_severity="warning", categories=frozenset({"care", "rescue"}))
    assert accepts(hook, "critical", "rescue") and accepts(hook, "warning", "care")
    assert not accepts(hook, "info", "care") and not accepts(hook, "critical", "owner")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://x/hook"}, "URL"),
        ({"url": "http:///hook"}, "URL"),
        ({"secret": ""}, "secret"),
        ({"rate_per_minute": 0}, "rate_per_minute"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"quiet_hours": (time(7), time(7))}, "quiet hours"),
        ({"min_severity": "urgent"}, "severity"),
    ],
)
def test_bad_webhooks_are_refused(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "desk", "url": "https://desk.example/h", "secret": "k"}
    values.update(kwargs)
    with pytest.raises(InvalidWebhook, match=message):
        WebhookSpec(**values)  # type: ignore[arg-type]


def test_lifecycle_table() -> None:
    assert next_status(1, "acknowledge", "open") == "acknowledged"
    assert next_status(1, "dispatch", "acknowledged") == "dispatched"
    assert next_status(1, "resolve", "dispatched") == "resolved"
    assert next_status(1, "note", "resolved") == "resolved"
    with pytest.raises(InvalidTransition, match="resolved -> acknowledged"):
        next_status(1, "acknowledge", "resolved")
    for allowed, _ in ACTIONS.values():
        assert allowed <= {"open", "acknowledged", "dispatched", "resolved"}
