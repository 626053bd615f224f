"""The durable store-and-forward outbox between the wire codec and the MQTT publisher.

Every message the agent publishes is first put here, in an SQLite file (WAL mode,
``synchronous=FULL``), and deleted only after the broker's PUBACK, so neither a ``kill -9`` of
the agent nor a power loss loses a record the outbox accepted.  The file is bounded by a disk
budget: when it is full the oldest telemetry goes first, status next, and urgent events only
when nothing else is left, each eviction logged.  After a reconnect the publisher drains it in
order: events first, then status, then telemetry, each by the order it was put.

The exceptions are drawn in :mod:`edge_agent.outbox.errors`; the file, the drain order, the
budget and the failure modes are described in ``docs/outbox.md``.

Standard library only, so a process that only stores records starts fast.
"""

from .errors import (
    OutboxCorruptError,
    OutboxError,
    OutboxFullError,
    OutboxSchemaError,
    OutboxUnavailableError,
)
from .outbox import (
    DEFAULT_MAX_BYTES,
    RECORD_OVERHEAD,
    Outbox,
    OutboxStats,
    Priority,
    Record,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "RECORD_OVERHEAD",
    "Outbox",
    "OutboxCorruptError",
    "OutboxError",
    "OutboxFullError",
    "OutboxSchemaError",
    "OutboxStats",
    "OutboxUnavailableError",
    "Priority",
    "Record",
]
