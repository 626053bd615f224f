"""The rules engine: a vehicle's observations in, alert changes out, on event time (pure).

::

    engine = Engine(load_builtin())
    state = VehicleState()                       # or VehicleState.from_json(saved)
    changes = engine.process("veh-1", state, observations, now_ms=now, context={...})
    saved = state.to_json()                      # persist with the changes, in one transaction

Each call evaluates every rule instance over the batch's timeline, the union of the sample
times of the signals the rules read, newer than anything the state has seen (older samples
are ignored: a replay of the same data in the same order gives the same changes, and a
restart resumes from the persisted state). Conditions are NumPy arrays over that timeline;
the state machine below only walks the points where something changes (events are each
evaluated once, whatever their age):

    idle --when--> pending --held `for`--> firing --clear (or not when)--> holding
      ^                |                      |                               |
      +-- when ends ---+                      +-- `keep` passed -> cleared ---+

A rule raises its alert when it starts firing, unless its data is older than ``max_age``
(it raises later if it is still firing on fresh data), an inhibiting rule is firing, or its
cooldown after the last clear has not passed; ``repeat`` renotifies while it fires. Event
rules (``event = "crash"``) raise at each event and count as firing for ``keep`` afterwards
(for inhibition).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from .changes import AlertChange, ChangeKind
from .expr import BoolArray, Condition, FloatArray, compile_condition
from .model import Instance, Rule, RuleSet

__all__ = ["Engine", "Observations", "VehicleEvent", "VehicleState"]

IntArray = npt.NDArray[np.int64]
_IDLE, _PENDING, _FIRING, _HOLDING = "idle", "pending", "firing", "holding"


@dataclass(frozen=True, slots=True)
class VehicleEvent:
    """An event of a vehicle (a crash): its time (ms), kind and payload (JSON object)."""

    time_ms: int
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observations:
    """What arrived for one vehicle: samples per VSS path (times in ms, values), events."""

    signals: Mapping[str, tuple[IntArray, FloatArray]] = field(default_factory=dict)
    events: Sequence[VehicleEvent] = ()


@dataclass(slots=True)
class _Instance:
    phase: str = _IDLE
    since: int = 0  # pending: when `when` began; firing: when it fired; holding: clear began
    raised: bool = False
    notified: int = 0
    cooldown_until: int = -(2**62)
    fired: int = 0  # when it began firing (firing and holding)

    def to_json(self) -> list[Any]:
        return [
            self.phase, self.since, self.raised, self.notified, self.cooldown_until, self.fired,
        ]  # fmt: skip


@dataclass(slots=True)
class VehicleState:
    """Everything the engine remembers of one vehicle between calls (JSON-serialisable)."""

    watermark: int = -(2**62)  # the newest evaluation time, ms
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> newest sample
    buffers: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # held() key -> run start, ms
    instances: dict[str, _Instance] = field(default_factory=dict)
    event_until: dict[str, int] = field(default_factory=dict)  # event rule -> firing until

    def to_json(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "last": {k: [t, _json_float(v)] for k, (t, v) in self.last.items()},
            "buffers": {k: [t, [_json_float(x) for x in v]] for k, (t, v) in self.buffers.items()},
            "held": dict(self.held),
            "instances": {k: i.to_json() for k, i in self.instances.items()},
            "event_until": dict(self.event_until),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VehicleState:
        return cls(
            watermark=int(data["watermark"]),
            last={k: (int(t), _float(v)) for k, (t, v) in data["last"].items()},
            buffers={k: (list(t), [_float(x) for x in v]) for k, (t, v) in data["buffers"].items()},
            held={k: int(v) for k, v in data["held"].items()},
            instances={k: _Instance(*v) for k, v in data["instances"].items()},
            event_until={k: int(v) for k, v in data["event_until"].items()},
        )


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class _Compiled:
    instance: Instance
    when: Condition | None
    clear: Condition | None


class Engine:
    """The compiled rules of a `RuleSet`, ready to evaluate any vehicle's observations."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        compiled = []
        for rule in rules:
            for instance in rule.instances():
                compiled.append(
                    _Compiled(
                        instance,
                        None if instance.when is None else compile_condition(instance.when),
                        None if instance.clear is None else compile_condition(instance.clear),
                    )
                )
        # Inhibitors first, so that the rules they mute see where they fired in this batch.
        order = {rule.id: i for i, rule in enumerate(_inhibition_order(rules))}
        self._compiled = sorted(compiled, key=lambda c: order[c.instance.rule.id])
        self.signals = frozenset(
            s for c in compiled for cond in (c.when, c.clear) if cond for s in cond.signals
        )
        windows: dict[str, int] = {}
        for c in compiled:
            for cond in (c.when, c.clear):
                for path, ms in (cond.windows if cond else {}).items():
                    windows[path] = max(windows.get(path, 0), ms)
        self.windows = windows

    def process(
        self,
        vehicle_id: str,
        state: VehicleState,
        observations: Observations,
        *,
        now_ms: int,
        context: Mapping[str, float] | None = None,
    ) -> list[AlertChange]:
        """Evaluate ``observations`` of ``vehicle_id``, update ``state``, return the changes."""
        frame = _Frame(self, state, observations, context or {})
        changes: list[AlertChange] = []
        firing: dict[str, list[tuple[int, int]]] = {}  # rule id -> intervals it fired in
        earlier_events = dict(state.event_until)
        # Events are discrete and delivered once (the worker's cursor): each is evaluated even
        # when older than the signals' watermark, so a crash buffered during an outage still
        # raises (max_age permitting).
        for event in sorted(observations.events, key=lambda e: e.time_ms):
            for c in self._compiled:
                rule = c.instance.rule
                if rule.event == event.kind:
                    changes.extend(
                        self._event(vehicle_id, state, c, event, now_ms, earlier_events, firing)
                    )
        if len(frame.times):
            for c in self._compiled:
                if c.when is not None:
                    walker = _Walker(vehicle_id, state, c, frame, now_ms, earlier_events, firing)
                    changes.extend(walker.run())
        frame.commit()
        changes.sort(key=lambda ch: ch.time)
        return changes

    def _event(
        self,
        vehicle_id: str,
        state: VehicleState,
        c: _Compiled,
        event: VehicleEvent,
        now_ms: int,
        earlier_events: Mapping[str, int],
        firing: dict[str, list[tuple[int, int]]],
    ) -> list[AlertChange]:
        rule = c.instance.rule
        until = event.time_ms + round(rule.hold_s * 1000)
        state.event_until[rule.id] = max(state.event_until.get(rule.id, until), until)
        firing.setdefault(rule.id, []).append((event.time_ms, until))
        if rule.max_age_s is not None and now_ms - event.time_ms > rule.max_age_s * 1000:
            return []
        if _inhibited_at(rule, np.array([event.time_ms]), earlier_events, firing)[0]:
            return []
        details = {"event": dict(event.payload), "event_time_ms": event.time_ms}
        return [_change("raised", vehicle_id, c.instance, event.time_ms, details)]


def _inhibition_order(rules: RuleSet) -> list[Rule]:
    """Rules ordered so that every inhibitor comes before the rules it mutes."""
    done: dict[str, Rule] = {}
    by_id = {r.id: r for r in rules}

    def visit(rule: Rule, path: tuple[str, ...]) -> None:
        if rule.id in done or rule.id in path:
            return
        for other in rule.inhibited_by:
            if other in by_id:
                visit(by_id[other], (*path, rule.id))
        done[rule.id] = rule

    for rule in rules:
        visit(rule, ())
    return list(done.values())


def _inhibited_at(
    rule: Rule,
    times: IntArray,
    earlier_events: Mapping[str, int],
    firing: Mapping[str, list[tuple[int, int]]],
) -> BoolArray:
    """Whether an inhibitor of ``rule`` fires at each of ``times``: an event rule within
    ``keep`` of an event before this batch (``earlier_events``), or any rule firing in this
    batch (``firing``)."""
    result = np.zeros(len(times), bool)
    for other in rule.inhibited_by:
        result |= times <= earlier_events.get(other, -(2**62))
        for start, end in firing.get(other, ()):
            result |= (times >= start) & (times <= end)
    return result


def _change(
    kind: ChangeKind, vehicle_id: str, instance: Instance, time_ms: int, details: Mapping[str, Any]
) -> AlertChange:
    rule = instance.rule
    return AlertChange(
        kind=kind,
        vehicle_id=vehicle_id,
        rule_id=rule.id,
        subkey=instance.subkey,
        time=_datetime(time_ms),
        severity=rule.severity,
        category=rule.category,
        title=rule.title,
        auto_resolve=rule.resolve == "auto",
        details=details,
    )


class _Frame:
    """The batch's timeline and each signal's samples (the state's buffer plus the new ones)."""

    def __init__(
        self,
        engine: Engine,
        state: VehicleState,
        observations: Observations,
        context: Mapping[str, float],
    ) -> None:
        self.engine = engine
        self.state = state
        self._context = context
        self._samples: dict[str, tuple[IntArray, FloatArray]] = {}
        new_times = []
        for path in engine.signals:
            old_t, old_v = state.buffers.get(path, ([], []))
            last = state.last.get(path)
            prefix_t = np.asarray(old_t, np.int64)
            prefix_v = np.asarray(old_v, np.float64)
            if last is not None and (len(prefix_t) == 0 or prefix_t[-1] != last[0]):
                prefix_t = np.append(prefix_t, last[0])
                prefix_v = np.append(prefix_v, last[1])
            times, values = observations.signals.get(path, (np.empty(0, np.int64), np.empty(0)))
            times = np.asarray(times, np.int64)
            values = np.asarray(values, np.float64)
            if len(times) > 1 and np.any(np.diff(times) < 0):
                order = np.argsort(times, kind="stable")
                times, values = times[order], values[order]
            # Samples at or before the watermark but newer than the signal's own newest (the
            # regular batch behind a capture that ran ahead) join its history: the values
            # seen from now on include them, no past evaluation is redone.
            own = prefix_t[-1] if len(prefix_t) else -(2**62)
            late = (times <= state.watermark) & (times > own)
            keep = times > state.watermark
            new_times.append(times[keep])
            self._samples[path] = (
                np.concatenate([prefix_t, times[late], times[keep]]),
                np.concatenate([prefix_v, values[late], values[keep]]),
            )
        self.times: IntArray = (
            np.unique(np.concatenate(new_times)) if new_times else np.empty(0, np.int64)
        )
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._instance = ""
        self._held_out: dict[str, int | None] = {}

    # -- EvalContext --------------------------------------------------------------------------

    def _asof(self, path: str, at: IntArray) -> IntArray:
        times, _ = self._samples.get(path, (np.empty(0, np.int64), np.empty(0)))
        return np.searchsorted(times, at, side="right") - 1

    def value(self, path: str) -> FloatArray:
        key = ("value", path)
        if key not in self._cache:
            _, values = self._samples[path]
            index = self._asof(path, self.times)
            self._cache[key] = np.where(
                index >= 0, values[np.maximum(index, 0)] if len(values) else np.nan, np.nan
            )
        return self._cache[key]  # type: ignore[no-any-return]

    def last_time(self, path: str) -> FloatArray:
        times, _ = self._samples[path]
        index = self._asof(path, self.times)
        picked = (
            times[np.maximum(index, 0)].astype(np.float64) if len(times) else np.zeros(len(index))
        )
        return np.where(index >= 0, picked, np.nan)

    def value_at(self, path: str, offset_ms: int) -> tuple[FloatArray, FloatArray]:
        times, values = self._samples[path]
        index = self._asof(path, self.times - offset_ms)
        if not len(times):
            nan = np.full(len(index), np.nan)
            return nan, nan
        safe = np.maximum(index, 0)
        return (
            np.where(index >= 0, values[safe], np.nan),
            np.where(index >= 0, times[safe].astype(np.float64), np.nan),
        )

    def window(self, path: str, function: str, window_ms: int) -> FloatArray:
        times, values = self._samples[path]
        hi = np.searchsorted(times, self.times, side="right")
        lo = np.searchsorted(times, self.times - window_ms, side="right")
        empty = hi <= lo
        if function == "mean":
            sums = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))])
            counts = np.maximum(hi - lo, 1)
            result = (sums[hi] - sums[lo]) / counts
        else:
            result = _range_extreme(values, lo, np.maximum(hi, lo + 1), function)
        return np.where(empty, np.nan, result)

    def context(self, name: str) -> float:
        return float(self._context.get(name, math.nan))

    def held(self, key: str, condition: BoolArray, duration_ms: int) -> BoolArray:
        full_key = f"{self._instance}:{key}"
        times = self.times
        carried = self.state.held.get(full_key)  # a run that began in an earlier batch
        previous = np.concatenate([[carried is not None], condition[:-1]])
        start_times = np.where(condition & ~previous, times, -(2**62))
        if carried is not None and len(condition) and condition[0]:
            start_times[0] = carried
        run_start = np.maximum.accumulate(start_times)
        self._held_out[full_key] = int(run_start[-1]) if len(condition) and condition[-1] else None
        return condition & (times - run_start >= duration_ms)

    def for_instance(self, name: str) -> _Frame:
        """Evaluate for rule instance ``name`` next (it names the held() state)."""
        self._instance = name
        return self

    # -- after the batch --------------------------------------------------------------------

    def commit(self) -> None:
        state = self.state
        for key, start in self._held_out.items():
            if start is None:
                state.held.pop(key, None)
            else:
                state.held[key] = start
        if not len(self.times):
            return
        newest = int(self.times[-1])
        for path, (times, values) in self._samples.items():
            if len(times):
                state.last[path] = (int(times[-1]), float(values[-1]))
            window = self.engine.windows.get(path)
            if window:
                keep = times >= newest - window - 1
                # keep one sample older than the window: value_at() looks back a window
                first = max(int(np.argmax(keep)) - 1, 0) if keep.any() else max(len(times) - 1, 0)
                state.buffers[path] = (times[first:].tolist(), values[first:].tolist())
        state.watermark = newest


def _range_extreme(values: FloatArray, lo: IntArray, hi: IntArray, function: str) -> FloatArray:
    """min or max of ``values[lo:hi]`` for each pair (hi > lo), by a sparse table."""
    if not len(values):
        return np.full(len(lo), np.nan)
    pick = np.fmin if function == "min" else np.fmax
    table = [values]
    width = 1
    while width * 2 <= len(values):
        prev = table[-1]
        table.append(pick(prev[:-width], prev[width:]))
        width *= 2
    length = np.maximum(hi - lo, 1)
    level = np.floor(np.log2(length)).astype(np.int64)
    result = np.empty(len(lo))
    for k in np.unique(level):
        mask = level == k
        row = table[k]
        span = 1 << int(k)
        a = row[np.minimum(lo[mask], len(row) - 1)]
        b = row[np.minimum(hi[mask] - span, len(row) - 1)]
        result[mask] = pick(a, b)
    return result


class _Walker:
    """One rule instance's state machine over the batch's timeline."""

    def __init__(
        self,
        vehicle_id: str,
        state: VehicleState,
        compiled: _Compiled,
        frame: _Frame,
        now_ms: int,
        earlier_events: Mapping[str, int],
        firing: dict[str, list[tuple[int, int]]],
    ) -> None:
        self.vehicle_id = vehicle_id
        self.c = compiled
        self.rule = compiled.instance.rule
        self.state = state
        self.inst = state.instances.setdefault(compiled.instance.name, _Instance())
        self.times = frame.times
        frame.for_instance(compiled.instance.name)
        assert compiled.when is not None
        self.when = compiled.when.evaluate(frame)
        self.clear = compiled.clear.evaluate(frame) if compiled.clear is not None else ~self.when
        self.now_ms = now_ms
        self.firing = firing
        self.frame = frame
        self.changes: list[AlertChange] = []
        rule = self.rule
        fresh = (
            np.ones(len(self.times), bool)
            if rule.max_age_s is None
            else now_ms - self.times <= rule.max_age_s * 1000
        )
        inhibited = _inhibited_at(rule, self.times, earlier_events, firing)
        self.allowed = fresh & ~inhibited
        self.pending_ms = round(rule.pending_s * 1000)
        self.hold_ms = round(rule.hold_s * 1000)
        self.repeat_ms = None if rule.repeat_s is None else round(rule.repeat_s * 1000)
        self.cooldown_ms = round(rule.cooldown_s * 1000)

    def _next(self, mask: BoolArray, start: int) -> int | None:
        if start >= len(mask):
            return None
        hit = np.flatnonzero(mask[start:])
        return int(hit[0]) + start if len(hit) else None

    def _at_or_after(self, time_ms: int, start: int) -> int | None:
        index = int(np.searchsorted(self.times, time_ms, side="left"))
        index = max(index, start)
        return index if index < len(self.times) else None

    def run(self) -> list[AlertChange]:
        inst, n = self.inst, len(self.times)
        i = 0
        while i < n:
            if inst.phase == _IDLE:
                j = self._next(self.when, i)
                if j is None:
                    break
                inst.phase, inst.since = _PENDING, int(self.times[j])
                i = j
            elif inst.phase == _PENDING:
                deadline = max(inst.since + self.pending_ms, inst.cooldown_until)
                end = self._next(~self.when, i)
                due = self._at_or_after(deadline, i)
                if due is not None and (end is None or due < end):
                    inst.phase, inst.since, inst.raised = _FIRING, int(self.times[due]), False
                    inst.fired = inst.since
                    i = due
                elif end is not None:
                    inst.phase = _IDLE
                    i = end
                else:
                    break
            elif inst.phase == _FIRING:
                if not inst.raised:
                    clear_at = self._next(self.clear, i)
                    k = self._next(self.allowed, i)
                    if k is not None and (clear_at is None or k < clear_at):
                        self._emit("raised", k)
                        inst.raised, inst.notified = True, int(self.times[k])
                        i = k
                        continue
                clear_at = self._next(self.clear, i)
                repeat_at = None
                if inst.raised and self.repeat_ms:
                    repeat_at = self._at_or_after(inst.notified + self.repeat_ms, i)
                if repeat_at is not None and (clear_at is None or repeat_at < clear_at):
                    self._emit("renotified", repeat_at)
                    inst.notified = int(self.times[repeat_at])
                    i = repeat_at + 1
                    continue
                if clear_at is None:
                    break
                inst.phase, inst.since = _HOLDING, int(self.times[clear_at])
                if self.hold_ms == 0:
                    self._cleared(clear_at)
                i = clear_at
            elif inst.phase == _HOLDING:
                again = self._next(self.when, i)
                due = self._at_or_after(inst.since + self.hold_ms, i)
                if again is not None and (due is None or again < due):
                    inst.phase = _FIRING
                    i = again
                elif due is not None:
                    self._cleared(due)
                    i = due
                else:
                    break
        if inst.phase in (_FIRING, _HOLDING):
            self.firing.setdefault(self.rule.id, []).append((inst.fired, 2**62))
        return self.changes

    def _cleared(self, index: int) -> None:
        inst = self.inst
        self.firing.setdefault(self.rule.id, []).append((inst.fired, int(self.times[index])))
        if inst.raised:
            self._emit("cleared", index)
        inst.phase, inst.raised = _IDLE, False
        inst.cooldown_until = int(self.times[index]) + self.cooldown_ms

    def _emit(self, kind: ChangeKind, index: int) -> None:
        time_ms = int(self.times[index])
        details: dict[str, Any] = {"values": self._values(index)}
        self.changes.append(_change(kind, self.vehicle_id, self.c.instance, time_ms, details))

    def _values(self, index: int) -> dict[str, float | None]:
        paths = set(self.c.instance.details)
        if self.c.when is not None:
            paths |= self.c.when.signals
        values = {}
        for path in sorted(paths):
            if path in self.frame._samples:
                value = float(self.frame.value(path)[index])
                values[path] = None if math.isnan(value) else value
        return values
