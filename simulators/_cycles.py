"""Drive cycles: seeded speed profiles on a fixed time grid (pure functions of their inputs).

A profile is built from knots (accelerate to a target speed, cruise, maybe stop and idle),
interpolated linearly and smoothed with a one-second moving average, so acceleration is
bounded and jerk-limited. Every profile starts and ends at standstill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._types import FloatArray

__all__ = ["CYCLES", "MOVE_END", "MOVE_START", "speed_profile"]

CYCLES = ("urban", "highway", "wltp", "parking")

#: The vehicle starts moving this long after the start, and is stopped this long before the end.
MOVE_START = 5.0
MOVE_END = 6.0

_SMOOTH = 1.0  # seconds of the moving average


@dataclass(frozen=True, slots=True)
class _Phase:
    speed_kmh: tuple[float, float]  # target speeds
    cruise_s: tuple[float, float]
    stop_probability: float
    idle_s: tuple[float, float]
    accel: tuple[float, float]  # m/s^2
    decel: tuple[float, float]  # m/s^2, positive


_URBAN = _Phase((20, 50), (8, 40), 0.6, (5, 30), (1.0, 1.8), (1.0, 2.2))
_SUBURBAN = _Phase((40, 75), (15, 60), 0.3, (5, 20), (0.8, 1.5), (0.8, 1.8))
_RURAL = _Phase((60, 95), (20, 90), 0.1, (5, 15), (0.6, 1.2), (0.6, 1.5))
_HIGHWAY = _Phase((95, 130), (30, 150), 0.0, (5, 10), (0.5, 1.1), (0.5, 1.2))


def _phase(cycle: str, fraction: float) -> _Phase:
    if cycle == "urban":
        return _URBAN
    if cycle == "highway":
        return _HIGHWAY if fraction > 0.03 else _SUBURBAN
    # WLTP-like: low, medium, high and extra-high speed phases in turn
    for limit, phase in ((0.3, _URBAN), (0.55, _SUBURBAN), (0.8, _RURAL)):
        if fraction < limit:
            return phase
    return _HIGHWAY


def speed_profile(cycle: str, t: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Speed in m/s at the times ``t`` (a regular grid from 0) for one drive cycle."""
    if cycle not in CYCLES:
        raise ValueError(f"unknown drive cycle {cycle!r} (expected one of {', '.join(CYCLES)})")
    duration = float(t[-1]) if len(t) else 0.0
    end = duration - MOVE_END - _SMOOTH
    if cycle == "parking" or end - MOVE_START < 10.0:
        return np.zeros_like(t)
    final_decel = 1.5
    knots_t, knots_v = [0.0, MOVE_START], [0.0, 0.0]
    now, v = MOVE_START, 0.0
    while True:
        phase = _phase(cycle, now / duration)
        target = rng.uniform(*phase.speed_kmh) / 3.6
        rate = rng.uniform(*(phase.accel if target > v else phase.decel))
        ramp = abs(target - v) / rate
        cruise = rng.uniform(*phase.cruise_s)
        if now + ramp + cruise + target / final_decel > end:
            break
        now += ramp
        knots_t.append(now)
        knots_v.append(target)
        now += cruise
        knots_t.append(now)
        knots_v.append(target)
        v = target
        if rng.random() < phase.stop_probability:
            now += v / rng.uniform(*phase.decel)
            knots_t.append(now)
            knots_v.append(0.0)
            idle = rng.uniform(*phase.idle_s)
            now += idle
            knots_t.append(now)
            knots_v.append(0.0)
            v = 0.0
    if v > 0.0:
        now += v / final_decel
        knots_t.append(now)
        knots_v.append(0.0)
    knots_t.append(max(duration, now))
    knots_v.append(0.0)
    speed = np.interp(t, knots_t, knots_v)
    return _smooth(speed, t)


def _smooth(values: FloatArray, t: FloatArray) -> FloatArray:
    if len(t) < 3:
        return values
    width = max(1, round(_SMOOTH / float(t[1] - t[0])))
    kernel = np.full(width, 1.0 / width)
    out: FloatArray = np.convolve(values, kernel, mode="same")
    out[out < 1e-9] = 0.0
    return out
