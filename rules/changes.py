"""What the rules engine decides: changes to alerts, keyed for deduplication (pure values).

The engine (`rules.engine`) emits an `AlertChange` when a rule instance starts firing
(``raised``), stops (``cleared``), or is still firing when its repeat interval has passed
(``renotified``). The alert store (`rules.store`) applies them: one open alert per
``key`` at a time, a ``cleared`` change resolving it only when the rule resolves
automatically, and every change recorded in the alert's audit history and the change feed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["AlertChange", "Category", "ChangeKind", "Severity", "alert_key"]

ChangeKind = Literal["raised", "cleared", "renotified"]
Severity = Literal["info", "warning", "critical"]
Category = Literal["rescue", "care", "service", "owner"]


def alert_key(vehicle_id: str, rule_id: str, subkey: str | None = None) -> str:
    """The deduplication key: one open alert per vehicle, rule and optional sub-key."""
    return f"{vehicle_id}/{rule_id}" if subkey is None else f"{vehicle_id}/{rule_id}/{subkey}"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One decision of the engine about one rule instance of one vehicle.

    ``time`` is event time (the vehicle's clock: when the condition held long enough, or
    cleared); ``details`` carries what the care team and a rescue service need (the values
    at the trigger, a crash's rescue payload), JSON-serialisable. ``auto_resolve`` says
    whether a ``cleared`` change resolves the alert.
    """

    kind: ChangeKind
    vehicle_id: str
    rule_id: str
    subkey: str | None
    time: datetime
    severity: Severity
    category: Category
    title: str
    auto_resolve: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("AlertChange.time must be an aware datetime")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def key(self) -> str:
        return alert_key(self.vehicle_id, self.rule_id, self.subkey)
