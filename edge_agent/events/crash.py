"""Crash detection: an airbag deployment or an acceleration pulse above a threshold.

A crash is the rising edge of the airbag signal (value >= 1), or the first sample of any
configured acceleration signal whose magnitude exceeds the threshold, outside the cooldown of
the previous crash; the configuration may name no airbag signal, or no acceleration signal.
The event carries the vehicle's identity and propulsion (configuration), the time, the latest
position and heading and the two positions before it (kept at least `POSITION_SPACING_MS`
apart), the occupied seats, the peak acceleration and delta-v up to the crash instant (the
event is sent at once, so it says what is known then), and a severity: the crash ECU's when
the catalogue has one, else from the peak acceleration (`MINOR` below 60 m/s^2, `MODERATE`
below 100 m/s^2, `SEVERE` above).
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import Problem
from ..sampling import WatchedSamples, concat_watched, of_signals
from ..wire import CrashEvent, Position, WireSchema

if TYPE_CHECKING:
    from ..config import CrashConfig, VehicleConfig

__all__ = ["POSITION_SPACING_MS", "CrashDetector", "EventConfigError", "crash_problems"]

log = logging.getLogger(__name__)

POSITION_SPACING_MS = 1000
LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
DELTA_V = "Vehicle.Private.Crash.DeltaV"
SEATS = "Vehicle.Cabin.Seat.*.IsOccupied"
# Peak-acceleration bands of the fallback severity, m/s^2.
MODERATE_FROM = 60.0
SEVERE_FROM = 100.0
# The state events report is brought up to date after this much data (see `feed`).
ABSORB_EVERY_MS = 250
# Acceleration samples this long before the crash (and at it) count towards its peak.
PEAK_WINDOW_MS = 200


_EMPTY = WatchedSamples(
    np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
)


class EventConfigError(Exception):
    """A signal the crash configuration names is not in the catalogue."""


@dataclass(frozen=True, slots=True)
class _Signals:
    airbag: int | None
    severity: int | None
    accelerations: tuple[int, ...]
    latitude: int | None
    longitude: int | None
    heading: int | None
    delta_v: int | None
    seats: tuple[int, ...]


class CrashDetector:
    """Turns watched samples into crash events (not thread-safe)."""

    def __init__(
        self,
        schema: WireSchema,
        crash: CrashConfig,
        vehicle: VehicleConfig,
        *,
        next_sequence: Callable[[], int] | None = None,
    ) -> None:
        """Raises `EventConfigError` when ``crash`` names a signal the catalogue lacks
        (`crash_problems`)."""
        self.schema = schema
        self.config = crash
        self.vehicle = vehicle
        self._s, problems = _find_signals(schema, crash)
        if problems:
            raise EventConfigError("; ".join(str(problem) for problem in problems))
        # The latest sample of every signal, by wire number.
        n = len(schema.signals)
        self._seen = np.zeros(n, np.bool_)
        self._latest_t = np.zeros(n, np.int64)
        self._latest_value = np.zeros(n, np.float64)
        self._latest_raw = np.zeros(n, np.int64)
        self._accel = np.array(sorted(set(self._s.accelerations)), np.int64)
        self._reported = np.zeros(n, np.bool_)
        for number in self.watch:
            self._reported[number] = number not in self._s.accelerations
        self._pending: list[WatchedSamples] = []
        self._alarms_set = False  # whether the sampler counts this detector's alarms
        self._recent = _EMPTY  # the samples absorbed last (the peak looks back into them)
        self._positions: deque[Position] = deque(maxlen=3)
        self._airbag_on = False
        self._last_crash: int | None = None
        self._count = 0
        self._next_sequence = next_sequence or self._count_up

    def alarms_counted(self) -> None:
        """Say that the sampler feeding this detector counts `alarms` (see `feed`)."""
        self._alarms_set = True

    def _count_up(self) -> int:
        self._count += 1
        return self._count

    @property
    def watch(self) -> tuple[int, ...]:
        s = self._s
        numbers = {*s.accelerations, *s.seats}
        numbers.update(
            n
            for n in (s.airbag, s.severity, s.latitude, s.longitude, s.heading, s.delta_v)
            if n is not None
        )
        return tuple(sorted(numbers))

    @property
    def alarms(self) -> dict[int, float]:
        """Thresholds for `Sampler.alarm`: a batch with no sample beyond them holds no crash
        (the airbag at 1 is beyond 0.5), so `feed` skips looking at it."""
        out = {} if self._s.airbag is None else {self._s.airbag: 0.5}
        for number in self._s.accelerations:
            out[number] = self.config.acceleration_threshold
        return out

    def feed(self, watched: WatchedSamples) -> list[CrashEvent]:
        """Crashes in one batch of watched samples, in time order.

        Each batch is checked for a crash at once; the state an event reports (latest
        values, positions) is brought up to date every ``ABSORB_EVERY_MS`` of data and
        whenever a crash is found, so a quiet batch costs a few array comparisons.
        """
        if not self.config.enabled or not len(watched):
            return []
        if not watched.alarms and not self._airbag_on and self._alarms_set:
            candidates: list[tuple[int, str]] = []  # nothing beyond a threshold: no crash
        else:
            candidates = self._candidates(watched)
        self._pending.append(watched)
        if not candidates:
            if int(watched.times_ms[-1]) - int(self._pending[0].times_ms[0]) >= ABSORB_EVERY_MS:
                self._absorb_pending()
            return []
        batch = concat_watched(self._pending)
        self._pending = []
        recent = self._recent
        events = []
        sig, times, values, raw = batch.signals, batch.times_ms, batch.values, batch.raw
        done = 0
        cooldown = round(self.config.cooldown_s * 1000)
        for t, trigger in candidates:
            if self._last_crash is not None and t - self._last_crash < cooldown:
                continue
            # bring the state up to the crash instant (samples at the crash time included)
            upto = int(np.searchsorted(times, t, side="right")) if _sorted(times) else len(times)
            self._absorb(sig[done:upto], times[done:upto], values[done:upto], raw[done:upto])
            done = max(done, upto)
            self._last_crash = t
            events.append(self._event(t, trigger, concat_watched([recent, batch])))
        self._absorb(sig[done:], times[done:], values[done:], raw[done:])
        self._recent = batch
        return events

    def _absorb_pending(self) -> None:
        batch = concat_watched(self._pending)
        self._pending = []
        self._absorb(batch.signals, batch.times_ms, batch.values, batch.raw)
        self._recent = batch

    def _candidates(self, watched: WatchedSamples) -> list[tuple[int, str]]:
        s = self._s
        out: list[tuple[int, str]] = []
        on = None if s.airbag is None else watched.signals == s.airbag
        if on is not None and on.any():
            deployed = watched.values[on] >= 1.0
            previous = np.concatenate(([self._airbag_on], deployed[:-1]))
            self._airbag_on = bool(deployed[-1])
            out.extend((int(t), "airbag") for t in watched.times_ms[on][deployed & ~previous])
        over = np.abs(watched.values) > self.config.acceleration_threshold
        if over.any():
            over &= of_signals(watched.signals, self._accel)
            out.extend((int(t), "acceleration") for t in watched.times_ms[over])
        out.sort()
        return out

    def _absorb(
        self, sig: np.ndarray, times: np.ndarray, values: np.ndarray, raw: np.ndarray
    ) -> None:
        if not len(sig):
            return
        # Only the signals an event reports need their latest values; the accelerations,
        # most of the samples, are read from the batches themselves.
        keep = self._reported[sig]
        sig, times, values, raw = sig[keep], times[keep], values[keep], raw[keep]
        if not len(sig):
            return
        self._track_positions(sig, times, values)
        numbers, from_end = np.unique(sig[::-1], return_index=True)
        last = len(sig) - 1 - from_end
        self._seen[numbers] = True
        self._latest_t[numbers] = times[last]
        self._latest_value[numbers] = values[last]
        self._latest_raw[numbers] = raw[last]

    def _track_positions(self, sig: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        """Positions at least POSITION_SPACING_MS apart: each latitude sample with the
        longitude latest at its instant (from this slice or an earlier one)."""
        s = self._s
        if s.latitude is None or s.longitude is None:
            return
        lat_rows = np.flatnonzero(sig == s.latitude)
        if not len(lat_rows):
            return
        lat_times = times[lat_rows]
        lon_rows = np.flatnonzero(sig == s.longitude)
        due = self._positions[-1].time_ms + POSITION_SPACING_MS if self._positions else None
        k = 0
        while k < len(lat_rows):
            if due is not None:
                k += int(np.searchsorted(lat_times[k:], due, side="left"))
                if k >= len(lat_rows):
                    break
            i = int(lat_rows[k])
            j = int(np.searchsorted(lon_rows, i, side="right")) - 1
            if j >= 0:
                lon = float(values[lon_rows[j]])
            elif self._seen[s.longitude]:
                lon = float(self._latest_value[s.longitude])
            else:
                k += 1
                continue
            t = int(lat_times[k])
            if _valid_position(float(values[i]), lon):
                self._positions.append(Position(float(values[i]), lon, t))
            due = t + POSITION_SPACING_MS
            k += 1

    def _value(self, number: int | None) -> float | None:
        if number is None or not self._seen[number]:
            return None
        return float(self._latest_value[number])

    def _event(self, t: int, trigger: str, watched: WatchedSamples) -> CrashEvent:
        s = self._s
        # Only what is known at the crash instant: the event goes out now, and what it says
        # must not depend on how the frames were batched.
        dt = t - watched.times_ms
        near = of_signals(watched.signals, self._accel) & (dt >= 0) & (dt <= PEAK_WINDOW_MS)
        peak = float(np.abs(watched.values[near]).max()) if near.any() else None
        severity = None
        if s.severity is not None and self._seen[s.severity]:
            severity = self.schema.label(s.severity, int(self._latest_raw[s.severity]))
            if severity in (None, "NO_CRASH"):
                severity = None
        if severity is None:
            severity = _severity_from(peak)
        lat, lon = self._value(s.latitude), self._value(s.longitude)
        position = None
        previous: tuple[Position, ...] = ()
        if (
            _valid_position(lat, lon)
            and lat is not None
            and lon is not None
            and s.latitude is not None
        ):
            position = Position(lat, lon, int(self._latest_t[s.latitude]))
            previous = tuple(p for p in reversed(self._positions) if p.time_ms < position.time_ms)[
                :2
            ]
        occupants = None
        seen = [float(self._latest_value[n]) for n in s.seats if self._seen[n]]
        if seen:
            occupants = sum(1 for v in seen if v >= 1.0)
        event = CrashEvent(
            vehicle_id=self.vehicle.id,
            vin=self.vehicle.vin,
            sequence=self._next_sequence(),
            time_ms=t,
            trigger=trigger,  # type: ignore[arg-type]
            severity=severity,
            position=position,
            heading_deg=self._value(s.heading),
            previous_positions=previous,
            propulsion=self.vehicle.propulsion,
            occupants=occupants,
            peak_acceleration=peak,
            delta_v=self._value(s.delta_v),
            catalogue_id=self.schema.catalogue_id,
        )
        log.warning("crash detected at %d ms (%s, %s)", t, trigger, severity)
        return event


def crash_problems(schema: WireSchema, crash: CrashConfig) -> list[Problem]:
    """Each signal ``crash`` names that the catalogue lacks, as a problem of its key
    (``crash.airbag_signal``, ``crash.severity_signal``, ``crash.acceleration_signals``)."""
    return _find_signals(schema, crash)[1]


def _find_signals(schema: WireSchema, crash: CrashConfig) -> tuple[_Signals, list[Problem]]:
    paths = {s.vss: s.number for s in schema.signals}
    problems: list[Problem] = []

    def named(key: str, path: str | None) -> int | None:
        if path is None:
            return None
        if path not in paths:
            instead = "leave it out" if key == "acceleration_signals" else '"" for none'
            problems.append(
                Problem(
                    f"crash.{key}",
                    f"{path!r} is not a VSS path of catalogue {schema.catalogue_id} "
                    f"(name one of its paths, {instead}, or set crash.enabled = false)",
                )
            )
            return None
        return paths[path]

    airbag = named("airbag_signal", crash.airbag_signal)
    severity = named("severity_signal", crash.severity_signal)
    accelerations = [named("acceleration_signals", p) for p in crash.acceleration_signals]
    signals = _Signals(
        airbag=airbag,
        severity=severity,
        accelerations=tuple(n for n in accelerations if n is not None),
        latitude=paths.get(LATITUDE),
        longitude=paths.get(LONGITUDE),
        heading=paths.get(HEADING),
        delta_v=paths.get(DELTA_V),
        seats=tuple(n for p, n in paths.items() if fnmatch.fnmatchcase(p, SEATS)),
    )
    return signals, problems


def _severity_from(peak: float | None) -> str:
    if peak is None or peak < MODERATE_FROM:
        return "MINOR"
    return "MODERATE" if peak < SEVERE_FROM else "SEVERE"


def _valid_position(lat: float | None, lon: float | None) -> bool:
    """A position a rescue service can use (a GNSS receiver without a fix may send zeros
    or out-of-range values: the event then carries no position rather than a wrong one)."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and (lat, lon) != (0.0, 0.0)


def _sorted(times: np.ndarray) -> bool:
    return bool(len(times) < 2 or (np.diff(times) >= 0).all())
