"""Messages as received, and flushes of classified messages for one transaction (pure).

::

    batcher = Batcher(max_messages=500, max_samples=2_000_000, max_latency_ms=250)
    batcher.add(message, outcome)
    if batcher.due(now_ms):
        flush = batcher.take()      # Writes for store_all, and the messages to acknowledge

A flush is due when it holds ``max_messages`` messages or ``max_samples`` samples, when its
oldest message waited ``max_latency_ms``, or at once when it holds an event (a crash must not
wait for telemetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..storage import (
    DeadLetterRow,
    EventRow,
    StatusRow,
    TelemetryRows,
    Writes,
)
from .classify import Outcome, Rejected

__all__ = ["Batcher", "Flush", "Received"]


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as the subscriber got it.

    ``mid`` and ``qos`` acknowledge it; ``connection`` numbers the MQTT connection it came on
    (an acknowledgement is sent only on that same connection); ``client_id`` is the
    publisher's client id when it sent one as the ``client_id`` user property.
    """

    topic: str
    payload: bytes
    received_ms: int
    mid: int
    qos: int
    connection: int
    client_id: str | None = None


@dataclass(slots=True)
class Flush:
    """What one transaction stores, and the messages it acknowledges once committed."""

    messages: list[Received] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    samples: int = 0
    urgent: bool = False

    def writes(self) -> Writes:
        """The rows of every message, dead letters for the rejected ones."""
        telemetry: list[TelemetryRows] = []
        events: list[EventRow] = []
        statuses: list[StatusRow] = []
        dead: list[DeadLetterRow] = []
        for message, outcome in zip(self.messages, self.outcomes, strict=True):
            if isinstance(outcome, TelemetryRows):
                telemetry.append(outcome)
            elif isinstance(outcome, EventRow):
                events.append(outcome)
            elif isinstance(outcome, StatusRow):
                statuses.append(outcome)
            else:
                dead.append(dead_letter_row(message, outcome))
        return Writes(telemetry, events, statuses, dead)

    def split(self) -> list[Flush]:
        """One flush per message (to find the one a database refuses)."""
        return [
            Flush([m], [o], _samples(o), isinstance(o, EventRow))
            for m, o in zip(self.messages, self.outcomes, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.messages)


def dead_letter_row(message: Received, rejected: Rejected) -> DeadLetterRow:
    """The dead letter of a rejected message."""
    return DeadLetterRow(
        topic=message.topic,
        client_id=message.client_id,
        reason=rejected.reason.value,
        detail=rejected.detail,
        payload=message.payload,
    )


def _samples(outcome: Outcome) -> int:
    return outcome.batch.samples if isinstance(outcome, TelemetryRows) else 0


class Batcher:
    """Collects classified messages in order of receipt until a flush is due."""

    def __init__(self, *, max_messages: int, max_samples: int, max_latency_ms: int) -> None:
        self.max_messages = max_messages
        self.max_samples = max_samples
        self.max_latency_ms = max_latency_ms
        self._flush = Flush()
        self._opened_ms: int | None = None

    def add(self, message: Received, outcome: Outcome, now_ms: int) -> None:
        flush = self._flush
        if self._opened_ms is None:
            self._opened_ms = now_ms
        flush.messages.append(message)
        flush.outcomes.append(outcome)
        flush.samples += _samples(outcome)
        flush.urgent = flush.urgent or isinstance(outcome, EventRow)

    def due(self, now_ms: int) -> bool:
        flush = self._flush
        if not flush.messages:
            return False
        return (
            flush.urgent
            or len(flush.messages) >= self.max_messages
            or flush.samples >= self.max_samples
            or (self._opened_ms is not None and now_ms - self._opened_ms >= self.max_latency_ms)
        )

    def wait_ms(self, now_ms: int) -> int | None:
        """How long until the open flush is due by time; None when it is empty."""
        if self._opened_ms is None:
            return None
        return max(0, self._opened_ms + self.max_latency_ms - now_ms)

    def take(self) -> Flush:
        flush, self._flush, self._opened_ms = self._flush, Flush(), None
        return flush

    def __len__(self) -> int:
        return len(self._flush)
