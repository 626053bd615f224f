"""Feed one vehicle's messages through the engine as the rules worker does (pure).

Each message (a decoded telemetry batch, or events) is one `Engine.process` call, in the
order the cloud received them; the vehicle's state is persisted as JSON between calls, so a
replay exercises exactly what a restart between any two messages would. ``now_ms`` of each
call is the message's newest time plus ``latency_ms`` (when the cloud would evaluate it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .changes import AlertChange
from .engine import Engine, Observations, VehicleState

__all__ = ["Replay", "replay"]


@dataclass(frozen=True, slots=True)
class Replay:
    """What a replay produced: the changes, and how much the engine evaluated."""

    changes: tuple[AlertChange, ...]
    calls: int
    samples: int  # samples of the signals the rules read
    state_bytes: int  # the size of the persisted state after the last call


def replay(
    engine: Engine,
    vehicle_id: str,
    messages: Iterable[Observations],
    *,
    latency_ms: int = 1000,
    context: Mapping[str, float] | None = None,
) -> Replay:
    """Run ``messages`` of ``vehicle_id`` through ``engine`` from a fresh state."""
    saved = json.dumps(VehicleState().to_json())
    changes: list[AlertChange] = []
    calls = samples = 0
    for observations in messages:
        newest = _newest(observations)
        if newest is None:
            continue
        state = VehicleState.from_json(json.loads(saved))
        changes.extend(
            engine.process(
                vehicle_id, state, observations, now_ms=newest + latency_ms, context=context
            )
        )
        saved = json.dumps(state.to_json())
        calls += 1
        samples += sum(
            len(times)
            for path, (times, _) in observations.signals.items()
            if path in engine.signals
        )
    return Replay(tuple(changes), calls, samples, len(saved))


def _newest(observations: Observations) -> int | None:
    times = [int(t[-1]) for t, _ in observations.signals.values() if len(t)]
    times.extend(e.time_ms for e in observations.events)
    return max(times) if times else None
