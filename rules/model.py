"""Rules as values: what a rule file declares, validated (see docs/rules.md).

A `Rule` reads canonical VSS signals and derived values through its ``when`` expression
(`rules.expr`), or fires on a vehicle event (``event = "crash"``). ``for_each`` makes one
instance per value of a placeholder (a wheel, say), each its own alert sub-key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .changes import Category, Severity

__all__ = ["Instance", "Rule", "RuleSet"]

Resolve = Literal["auto", "manual"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One care trigger. Durations are seconds; ``source`` is ``file:line`` of its table."""

    id: str
    title: str
    category: Category
    severity: Severity
    when: str | None = None
    event: str | None = None
    clear: str | None = None
    pending_s: float = 0.0
    hold_s: float = 0.0
    resolve: Resolve = "auto"
    cooldown_s: float = 0.0
    repeat_s: float | None = None
    max_age_s: float | None = None
    escalate_after_s: float | None = None
    quiet_hours: bool = True
    inhibited_by: tuple[str, ...] = ()
    for_each: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "for_each", MappingProxyType(dict(self.for_each)))

    def instances(self) -> list[Instance]:
        """The rule's instances: one, or one per value of its ``for_each`` placeholder."""
        if not self.for_each:
            return [Instance(self, None, self.when, self.clear, self.details)]
        ((name, values),) = self.for_each.items()
        return [
            Instance(
                self,
                value,
                _fill(self.when, name, value),
                _fill(self.clear, name, value),
                tuple(d.replace("{" + name + "}", value) for d in self.details),
            )
            for value in values
        ]


def _fill(text: str | None, name: str, value: str) -> str | None:
    return None if text is None else text.replace("{" + name + "}", value)


@dataclass(frozen=True, slots=True)
class Instance:
    """A rule with its placeholder filled in: ``subkey`` is the value (None without)."""

    rule: Rule
    subkey: str | None
    when: str | None
    clear: str | None
    details: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.rule.id if self.subkey is None else f"{self.rule.id}/{self.subkey}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one or more files, by id, in file order."""

    rules: tuple[Rule, ...]
    sources: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def escalations(self) -> Mapping[str, float]:
        """Rule id to its escalation time, for the rules that escalate."""
        return MappingProxyType(
            {r.id: r.escalate_after_s for r in self.rules if r.escalate_after_s is not None}
        )
