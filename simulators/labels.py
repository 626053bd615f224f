"""Ground-truth labels: what each scenario did, when, to which vehicle (JSON Lines).

One JSON object per line, one line per scenario, in the order the scenarios were given::

    {"vehicle": "C2CDEM00000000001", "kind": "crash", "label": "positive",
     "time": 1700000123.45, "offset_s": 123.45, "end_offset_s": null,
     "parameters": {...}, "observed": {...}, "description": "...", "scenario": 1, "line": 7}

``label`` is ``positive`` (a care rule must alert) or ``negative`` (a hard negative: it must
not). ``time`` is epoch seconds on the drive's clock (the frames' timestamps), ``offset_s``
the same from the drive's start; ``end_offset_s`` is null for conditions that last to the
end. ``parameters`` are the scenario's, defaults filled in; ``observed`` what the simulator
produced (e.g. the crash's delta-v, the first time the coolant passed 115 degC).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Label", "read_labels", "write_labels"]


@dataclass(frozen=True, slots=True)
class Label:
    """The ground truth of one scenario on one drive."""

    vehicle: str
    kind: str
    label: str
    time: float
    offset_s: float
    end_offset_s: float | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    observed: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    scenario: int = 0
    line: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))
        object.__setattr__(self, "observed", MappingProxyType(dict(self.observed)))

    def to_json(self) -> dict[str, Any]:
        return {
            "vehicle": self.vehicle,
            "kind": self.kind,
            "label": self.label,
            "time": round(self.time, 6),
            "offset_s": round(self.offset_s, 6),
            "end_offset_s": None if self.end_offset_s is None else round(self.end_offset_s, 6),
            "parameters": dict(self.parameters),
            "observed": dict(self.observed),
            "description": self.description,
            "scenario": self.scenario,
            "line": self.line,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Label:
        return cls(**record)


def write_labels(path: str | os.PathLike[str], labels: Iterable[Label]) -> None:
    with Path(path).open("w", encoding="utf-8") as out:
        for label in labels:
            out.write(json.dumps(label.to_json(), allow_nan=False) + "\n")


def read_labels(path: str | os.PathLike[str]) -> list[Label]:
    with Path(path).open(encoding="utf-8") as src:
        return [Label.from_json(json.loads(line)) for line in src if line.strip()]
