"""The sampler: which decoded samples go on the wire, by each signal's policy.

Policies come from the agent configuration (`edge_agent.config.SamplingConfig`): a default
and rules that match VSS paths with glob patterns, later rules winning. Modes:

* ``all``: every sample;
* ``interval``: the first sample of every ``period_s`` window (windows aligned on the epoch);
* ``on_change``: a sample whose raw value differs from the last one sent;
* ``deadband``: a sample whose value (VSS units) differs from the last one sent by more than
  ``deadband``;
* ``off``: nothing.

``on_change`` and ``deadband`` take ``min_interval_s`` (no two sends closer than this; a
change held back is sent when the interval has passed and the value still differs) and
``max_interval_s`` (send at least this often while samples arrive). A heartbeat sends, every
``heartbeat_s`` of data time, the latest sample of each signal seen since its last send.

Time is the frames' time (event time), so a replayed log samples like the live bus did.
The work per sample is one numba kernel (`_kernels.select`); this module keeps the state
arrays and groups what was selected into wire `Series`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..config import Problem
from ..wire import Series, WireSchema
from . import _kernels as k
from .errors import SamplingError

if TYPE_CHECKING:
    from ..config import SamplingConfig, SamplingPolicy
    from ..decoder import BatchDecoder, DecodedBatch

__all__ = [
    "SampleStats",
    "Sampler",
    "WatchedSamples",
    "concat_watched",
    "group_series",
    "of_signals",
    "resolve_policies",
    "rule_problems",
]

log = logging.getLogger(__name__)

_MODES = {
    "off": k.MODE_OFF,
    "all": k.MODE_ALL,
    "interval": k.MODE_INTERVAL,
    "on_change": k.MODE_ON_CHANGE,
    "deadband": k.MODE_DEADBAND,
}


@dataclass(frozen=True, slots=True, eq=False)
class WatchedSamples:
    """Full-rate samples of the watched signals in one batch, in frame order."""

    signals: npt.NDArray[np.int64]  # wire numbers
    times_ms: npt.NDArray[np.int64]
    raw: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # VSS units
    alarms: int = 0  # samples beyond their signal's alarm threshold (see `Sampler.alarm`)

    def __len__(self) -> int:
        return len(self.signals)


def of_signals(
    signals: npt.NDArray[np.int64], numbers: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Which of ``signals`` are among ``numbers``: ``np.isin`` for a handful of numbers,
    without its set-up cost (it matters on every micro-batch)."""
    mask: npt.NDArray[np.bool_] = np.zeros(len(signals), np.bool_)
    for number in numbers:
        mask |= signals == number
    return mask


def concat_watched(parts: list[WatchedSamples]) -> WatchedSamples:
    """Several batches' watched samples as one, in order."""
    if len(parts) == 1:
        return parts[0]
    return WatchedSamples(
        np.concatenate([p.signals for p in parts]),
        np.concatenate([p.times_ms for p in parts]),
        np.concatenate([p.raw for p in parts]),
        np.concatenate([p.values for p in parts]),
    )


@dataclass(frozen=True, slots=True)
class SampleStats:
    decoded: int  # samples of mapped signals seen
    selected: int  # samples selected to send (heartbeats included)
    clamped: int  # samples whose time went backwards and was held at the last one


def resolve_policies(schema: WireSchema, sampling: SamplingConfig) -> list[SamplingPolicy]:
    """Each wire signal's policy: the default, overridden by the last matching rule.

    Raises `SamplingError` when a rule pattern matches no signal of the catalogue
    (`rule_problems`).
    """
    policies, problems = _match_rules(schema, sampling)
    if problems:
        raise SamplingError("; ".join(str(problem) for problem in problems))
    return policies


def rule_problems(schema: WireSchema, sampling: SamplingConfig) -> list[Problem]:
    """Each rule pattern that matches no signal of the catalogue, as a problem of its key
    (``sampling.rule[0].signals``): a typo would otherwise silently leave the default in
    force."""
    return _match_rules(schema, sampling)[1]


def _match_rules(
    schema: WireSchema, sampling: SamplingConfig
) -> tuple[list[SamplingPolicy], list[Problem]]:
    policies = [sampling.default] * len(schema.signals)
    problems: list[Problem] = []
    for index, rule in enumerate(sampling.rules):
        for pattern in rule.signals:
            matched = [s.number for s in schema.signals if fnmatch.fnmatchcase(s.vss, pattern)]
            if not matched:
                problems.append(
                    Problem(
                        f"sampling.rule[{index}].signals",
                        f"pattern {pattern!r} matches no VSS path of catalogue "
                        f"{schema.catalogue_id}",
                    )
                )
            for n in matched:
                policies[n] = rule.policy
    return policies, problems


class Sampler:
    """Selects samples from decoded batches; not thread-safe (one per agent)."""

    def __init__(
        self,
        schema: WireSchema,
        decoder: BatchDecoder,
        sampling: SamplingConfig,
        *,
        watch: Iterable[int] = (),
    ) -> None:
        self.schema = schema
        n = len(schema.signals)
        by_name = {(s.message, s.signal): s.number for s in schema.signals}
        self._sig_wire = np.array(
            [by_name.get((info.message, info.name), -1) for info in decoder.signals], np.int64
        )
        policies = resolve_policies(schema, sampling)
        self._mode = np.array([_MODES[p.mode] for p in policies], np.int64)
        self._period_ms = np.array([_ms(p.period_s) for p in policies], np.int64)
        self._deadband = np.array([p.deadband or 0.0 for p in policies], np.float64)
        self._min_ms = np.array([_ms(p.min_interval_s) for p in policies], np.int64)
        self._max_ms = np.array([_ms(p.max_interval_s) for p in policies], np.int64)
        self._vss_scale = np.array([s.vss_scale for s in schema.signals], np.float64)
        self._vss_offset = np.array([s.vss_offset for s in schema.signals], np.float64)
        self._watched = np.zeros(n, np.bool_)
        self._alarm = np.full(n, np.nan)
        for number in watch:
            self._watched[number] = True
        self._heartbeat_ms = _ms(sampling.heartbeat_s)
        self._next_heartbeat: int | None = None
        self._state = np.zeros((n, k.ST_WIDTH), np.int64)
        self._fstate = np.zeros((n, k.FST_WIDTH), np.float64)
        self._chunks: list[tuple[npt.NDArray[np.int64], ...]] = []
        self._pending = 0
        self._buffers: dict[str, npt.NDArray[Any]] = {}
        self._decoded = self._selected = self._clamped = 0

    @property
    def pending(self) -> int:
        """Samples selected and not yet taken."""
        return self._pending

    @property
    def stats(self) -> SampleStats:
        return SampleStats(self._decoded, self._selected, self._clamped)

    def watch(self, numbers: Iterable[int]) -> None:
        """Also copy these signals' samples, at full rate, to `feed`'s result."""
        for number in numbers:
            self._watched[number] = True

    def alarm(self, number: int, threshold: float) -> None:
        """Count, in `feed`'s result, the samples of a signal whose magnitude (VSS units)
        exceeds ``threshold``: the lowest threshold set for a signal counts."""
        current = self._alarm[number]
        self._alarm[number] = threshold if np.isnan(current) else min(current, threshold)

    def _buffer(self, name: str, size: int, dtype: Any) -> npt.NDArray[Any]:
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < size:
            buffer = np.empty(max(size, 1024), dtype)
            self._buffers[name] = buffer
        return buffer

    def feed(self, decoded: DecodedBatch) -> WatchedSamples:
        """Select from one decoded batch; returns the watched signals' samples."""
        size = decoded.stats.samples
        out_sig = self._buffer("out_sig", size, np.int64)
        out_t = self._buffer("out_t", size, np.int64)
        out_raw = self._buffer("out_raw", size, np.int64)
        all_sig = self._buffer("all_sig", size, np.int64)
        all_t = self._buffer("all_t", size, np.int64)
        all_raw = self._buffer("all_raw", size, np.int64)
        all_value = self._buffer("all_value", size, np.float64)
        tables = decoded._tables
        n_out, n_all, clamped, mapped, alarms = k.select(
            decoded.frame_messages,
            decoded.frame_slots,
            decoded.frames.timestamps,
            tables.msg_sig_start,
            tables.msg_sig_count,
            decoded.message_frames,
            decoded.present,
            decoded.raw,
            decoded.values,
            self._sig_wire,
            self._mode,
            self._period_ms,
            self._deadband,
            self._min_ms,
            self._max_ms,
            self._vss_scale,
            self._vss_offset,
            self._watched,
            self._state,
            self._fstate,
            out_sig,
            out_t,
            out_raw,
            all_sig,
            all_t,
            all_raw,
            all_value,
            self._alarm,
        )
        if n_out:
            self._chunks.append(
                (out_sig[:n_out].copy(), out_t[:n_out].copy(), out_raw[:n_out].copy())
            )
            self._pending += n_out
            self._selected += n_out
        self._clamped += clamped
        if clamped:
            log.debug("%d samples had times before their signal's previous sample", clamped)
        if len(decoded.frames):
            self._maybe_heartbeat(int(np.round(decoded.frames.timestamps[-1] * 1000.0)))
        watched = WatchedSamples(
            all_sig[:n_all].copy(),
            all_t[:n_all].copy(),
            all_raw[:n_all].copy(),
            all_value[:n_all].copy(),
            alarms,
        )
        self._decoded += mapped
        return watched

    def _maybe_heartbeat(self, now_ms: int) -> None:
        if self._heartbeat_ms <= 0:
            return
        if self._next_heartbeat is None:
            self._next_heartbeat = now_ms + self._heartbeat_ms
            return
        if now_ms < self._next_heartbeat:
            return
        self._next_heartbeat = now_ms + self._heartbeat_ms
        self.heartbeat()

    def heartbeat(self) -> int:
        """Send the latest sample of every signal seen since its last send; returns how many."""
        st = self._state
        due = np.flatnonzero(
            (st[:, k.ST_SEEN] == 1)
            & ((st[:, k.ST_SENT] == 0) | (st[:, k.ST_SEEN_T] > st[:, k.ST_SENT_T]))
            & (self._mode != k.MODE_OFF)
        )
        if not len(due):
            return 0
        times = st[due, k.ST_SEEN_T].copy()
        raws = st[due, k.ST_SEEN_RAW].copy()
        st[due, k.ST_SENT] = 1
        st[due, k.ST_SENT_T] = times
        st[due, k.ST_SENT_RAW] = raws
        periods = self._period_ms[due]
        st[due, k.ST_BUCKET] = np.where(periods > 0, times // np.maximum(periods, 1), 0)
        self._fstate[due, k.FST_SENT_VALUE] = self._fstate[due, k.FST_SEEN_VALUE]
        self._chunks.append((due.astype(np.int64), times, raws))
        self._pending += len(due)
        self._selected += len(due)
        return len(due)

    def take(self) -> tuple[Series, ...]:
        """The selected samples since the last call, one `Series` per signal."""
        if not self._chunks:
            return ()
        sig = np.concatenate([c[0] for c in self._chunks])
        t = np.concatenate([c[1] for c in self._chunks])
        raw = np.concatenate([c[2] for c in self._chunks])
        self._chunks.clear()
        self._pending = 0
        return group_series(sig, t, raw)


def group_series(
    sig: npt.NDArray[np.int64], t: npt.NDArray[np.int64], raw: npt.NDArray[np.int64]
) -> tuple[Series, ...]:
    """Long-form samples (in time order per signal) as one `Series` per signal."""
    if not len(sig):
        return ()
    order = np.argsort(sig, kind="stable")
    sig, t, raw = sig[order], t[order], raw[order]
    starts = np.flatnonzero(np.diff(sig, prepend=-1))
    ends = np.append(starts[1:], len(sig))
    return tuple(
        Series(int(sig[a]), t[a:b].copy(), raw[a:b].copy())
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    )


def _ms(seconds: float | None) -> int:
    return 0 if not seconds else round(seconds * 1000.0)
