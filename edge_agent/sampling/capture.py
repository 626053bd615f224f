"""Condition-triggered capture: full-rate data from before and after a trigger fires.

Each capture (`edge_agent.config.CaptureConfig`) has a trigger expression (`expr`), the
signals it records (glob patterns over VSS paths), a pre-trigger window, a post-trigger
duration and a cooldown. The manager keeps a ring buffer of the watched signals' full-rate
samples covering the longest pre-trigger window; when a trigger's expression turns true (a
rising edge on the data's timeline), the capture takes the buffered samples from
``trigger - pre_s`` and keeps collecting until the data passes ``trigger + post_s``. Then it
is done: a `Capture` and its samples as wire `Series`, sent as a telemetry batch of its own.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..config import Problem
from ..wire import Capture, Series, WireSchema
from .errors import ExpressionError, SamplingError
from .expr import Expression, compile_expression
from .sampler import WatchedSamples, concat_watched, group_series, of_signals

if TYPE_CHECKING:
    from ..config import CaptureConfig

__all__ = ["CaptureManager", "CapturedData", "Timeline", "capture_problems"]

log = logging.getLogger(__name__)

# Data gathered before the triggers are evaluated (see `CaptureManager.feed`).
EVALUATE_EVERY_MS = 250


@dataclass(frozen=True, slots=True, eq=False)
class CapturedData:
    capture: Capture
    series: tuple[Series, ...]

    @property
    def samples(self) -> int:
        return sum(len(s.times_ms) for s in self.series)


class Timeline:
    """The latest value of some signals at every instant of a batch's watched samples.

    Keeps each signal's last value across batches, so an expression sees the state left
    by earlier batches (NaN until a signal is first seen).
    """

    def __init__(self, signals: Sequence[int]) -> None:
        self.signals = tuple(signals)
        self._last = {s: np.nan for s in self.signals}

    def columns(self, watched: WatchedSamples) -> dict[int, npt.NDArray[np.float64]]:
        n = len(watched)
        positions = np.arange(n)
        out = {}
        for s in self.signals:
            hit = watched.signals == s
            index = np.maximum.accumulate(np.where(hit, positions, -1)) if n else positions
            column = np.where(index >= 0, watched.values[np.maximum(index, 0)], self._last[s])
            if n and hit.any():
                self._last[s] = float(column[-1])
            out[s] = column.astype(np.float64, copy=False)
        return out


@dataclass(slots=True)
class _Trigger:
    config: CaptureConfig
    expression: Expression
    signals: npt.NDArray[np.int64]  # recorded, sorted
    timeline: Timeline
    inputs: npt.NDArray[np.int64]  # the expression's signals
    last_result: bool = False
    last_fired: int | None = None


@dataclass(slots=True)
class _Active:
    trigger: _Trigger
    fired_ms: int
    start_ms: int
    end_ms: int
    parts: list[WatchedSamples] = field(default_factory=list)


def capture_problems(schema: WireSchema, captures: Sequence[CaptureConfig]) -> list[Problem]:
    """What the captures name that the catalogue lacks, as problems of their keys: a
    trigger that does not compile against it (``capture[0].when``: a VSS path it lacks, a
    syntax error) and a pattern that matches none of its paths (``capture[0].signals``)."""
    return _resolve(schema, captures)[1]


def _resolve(
    schema: WireSchema, captures: Sequence[CaptureConfig]
) -> tuple[list[_Trigger], list[Problem]]:
    triggers: list[_Trigger] = []
    problems: list[Problem] = []
    paths = [s.vss for s in schema.signals]
    for index, capture in enumerate(captures):
        expression: Expression | None = None
        try:
            expression = compile_expression(capture.when, schema, where="")
        except ExpressionError as exc:
            problems.append(Problem(f"capture[{index}].when", str(exc)))
        recorded: set[int] = set()
        for pattern in capture.signals:
            matched = [i for i, p in enumerate(paths) if fnmatch.fnmatchcase(p, pattern)]
            if not matched:
                problems.append(
                    Problem(
                        f"capture[{index}].signals",
                        f"pattern {pattern!r} matches no VSS path of catalogue "
                        f"{schema.catalogue_id}",
                    )
                )
            recorded.update(schema.signals[i].number for i in matched)
        if expression is not None:
            triggers.append(
                _Trigger(
                    capture,
                    expression,
                    np.array(sorted(recorded), np.int64),
                    Timeline(expression.signals),
                    np.array(expression.signals, np.int64),
                )
            )
    return triggers, problems


class CaptureManager:
    """Evaluates the capture triggers on each batch's watched samples (not thread-safe)."""

    def __init__(self, schema: WireSchema, captures: Sequence[CaptureConfig]) -> None:
        """Raises `SamplingError` when a capture names what the catalogue lacks
        (`capture_problems`)."""
        self._triggers, problems = _resolve(schema, captures)
        if problems:
            raise SamplingError("; ".join(str(problem) for problem in problems))
        self._pre_ms = max((round(t.config.pre_s * 1000) for t in self._triggers), default=0)
        self._ring: deque[WatchedSamples] = deque()
        self._pending: list[WatchedSamples] = []
        self._active: list[_Active] = []

    @property
    def watch(self) -> tuple[int, ...]:
        """The signals the manager needs at full rate: recorded ones and trigger inputs."""
        numbers: set[int] = set()
        for t in self._triggers:
            numbers.update(t.signals.tolist())
            numbers.update(t.expression.signals)
        return tuple(sorted(numbers))

    def feed(self, watched: WatchedSamples) -> list[CapturedData]:
        """Take one batch's watched samples; returns the captures completed by it.

        Triggers are evaluated once ``EVALUATE_EVERY_MS`` of data has gathered, over all of
        it at once (the same edges as batch by batch, for less work per micro-batch), so a
        capture completes up to that much later than its post-trigger window ends.
        """
        if not self._triggers or not len(watched):
            return []
        self._pending.append(watched)
        first = int(self._pending[0].times_ms[0])
        if int(watched.times_ms[-1]) - first < EVALUATE_EVERY_MS:
            return []
        return self._evaluate()

    def _evaluate(self) -> list[CapturedData]:
        if not self._pending:
            return []
        watched = concat_watched(self._pending)
        self._pending = []
        if len(watched):
            self._ring.append(watched)
            for active in self._active:
                active.parts.append(watched)
        for trigger in self._triggers:
            for fired in self._fire_times(trigger, watched):
                self._start(trigger, fired)
        done: list[CapturedData] = []
        if len(watched):
            now = int(watched.times_ms.max())
            self._trim(now)
            still = []
            for active in self._active:
                if now > active.end_ms:
                    done.append(self._finish(active))
                else:
                    still.append(active)
            self._active = still
        return done

    def flush(self) -> list[CapturedData]:
        """Finish every capture still collecting (the agent is stopping)."""
        done = self._evaluate()
        done += [self._finish(a) for a in self._active]
        self._active = []
        return done

    def _fire_times(self, trigger: _Trigger, watched: WatchedSamples) -> list[int]:
        inputs = of_signals(watched.signals, trigger.inputs)
        if not inputs.any():
            return []
        sub = WatchedSamples(
            watched.signals[inputs],
            watched.times_ms[inputs],
            watched.raw[inputs],
            watched.values[inputs],
        )
        columns = trigger.timeline.columns(sub)
        result = trigger.expression.evaluate(columns, len(sub))
        previous = np.concatenate(([trigger.last_result], result[:-1]))
        trigger.last_result = bool(result[-1])
        fired = []
        cooldown = round(trigger.config.cooldown_s * 1000)
        for t in sub.times_ms[result & ~previous].tolist():
            if trigger.last_fired is not None and t - trigger.last_fired < cooldown:
                continue
            trigger.last_fired = t
            fired.append(int(t))
        return fired

    def _start(self, trigger: _Trigger, fired: int) -> None:
        config = trigger.config
        start = fired - round(config.pre_s * 1000)
        active = _Active(trigger, fired, start, fired + round(config.post_s * 1000))
        active.parts.extend(self._ring)
        self._active.append(active)
        log.info("capture %r triggered at %d ms (%s)", config.name, fired, trigger.expression.text)

    def _trim(self, now: int) -> None:
        horizon = now - self._pre_ms
        while self._ring and len(self._ring[0]) and int(self._ring[0].times_ms.max()) < horizon:
            self._ring.popleft()

    def _finish(self, active: _Active) -> CapturedData:
        signals = active.trigger.signals
        parts = active.parts
        sig = np.concatenate([p.signals for p in parts]) if parts else np.empty(0, np.int64)
        t = np.concatenate([p.times_ms for p in parts]) if parts else np.empty(0, np.int64)
        raw = np.concatenate([p.raw for p in parts]) if parts else np.empty(0, np.int64)
        keep = np.isin(sig, signals) & (t >= active.start_ms) & (t <= active.end_ms)
        series = group_series(sig[keep], t[keep], raw[keep])
        capture = Capture(active.trigger.config.name, active.fired_ms)
        data = CapturedData(capture, series)
        log.info(
            "capture %r at %d ms done: %d samples", capture.name, capture.trigger_ms, data.samples
        )
        return data
