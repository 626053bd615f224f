"""The demo's fleet: labelled drives of a mixed EV and combustion fleet in recent time.

::

    drives = build_demo_fleet(50, seed=0, duration_s=3600.0, end_time=time.time() + 60)

Each vehicle gets one drive of the labelled suite (`simulators.suite`): in turn a crash, a
breakdown, an EV running out of charge, a slow puncture, a draining 12 V battery, a service
coming due, and about a third hard-negative drives (potholes, hard braking, GNSS dropouts, a
cold morning, a jump start) that must raise no rescue alert. Only drives that fit in
``duration_s`` are used (a slow puncture or a draining battery is then a faster one), each
placed at a random start so that it ends by ``end_time``. The vehicle id (its VIN) is
``C2CDEMO`` + the seed's last three digits + the vehicle's number.

Engine overheating is left out: its rule ignores data older than an hour against the
evaluation's wall clock, and a drive early in a long demo window would be older than that.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from .suite import SuiteDrive, build_suite

__all__ = [
    "DEMO_KINDS",
    "HARD_NEGATIVE",
    "MIN_DURATION_S",
    "VIN_PREFIX",
    "build_demo_fleet",
    "demo_kind",
]

#: The positive kinds the demo shows, in the order vehicles take them.
DEMO_KINDS = (
    "crash",
    "breakdown",
    "ev_out_of_charge",
    "slow_puncture",
    "lv_drain",
    "service_due",
)
HARD_NEGATIVE = "hard negative"
#: Every demo vehicle's id (its VIN) starts with this.
VIN_PREFIX = "C2CDEMO"
#: The shortest window: a draining 12 V battery shows in 50 minutes at the fastest.
MIN_DURATION_S = 3600.0
_NEGATIVE_EVERY = 3  # every third vehicle drives a hard-negative drive
_CHUNK = 400  # suite drives built at a time while looking for drives that fit


def demo_kind(drive: SuiteDrive) -> str:
    """The drive's positive kind, or `HARD_NEGATIVE`."""
    if drive.hard_negative:
        return HARD_NEGATIVE
    return next(s.kind for s in drive.scenarios if s.spec.label == "positive")


def build_demo_fleet(
    vehicles: int, seed: int = 0, *, duration_s: float = 3600.0, end_time: float
) -> tuple[SuiteDrive, ...]:
    """``vehicles`` drives (see the module docstring), deterministic for ``seed`` apart from
    their placement before ``end_time`` (epoch seconds)."""
    if vehicles < 1:
        raise ValueError(f"vehicles must be at least 1, not {vehicles}")
    if duration_s < MIN_DURATION_S:
        raise ValueError(f"duration_s must be at least {MIN_DURATION_S:g} (an hour)")
    wanted: dict[str, int] = defaultdict(int)
    order: list[str] = []
    positive = 0
    for i in range(vehicles):
        if i % _NEGATIVE_EVERY == _NEGATIVE_EVERY - 1:
            kind = HARD_NEGATIVE
        else:
            kind = DEMO_KINDS[positive % len(DEMO_KINDS)]
            positive += 1
        order.append(kind)
        wanted[kind] += 1
    pool = _fitting_drives(dict(wanted), seed, duration_s)
    rng = np.random.default_rng([seed, 0xDE30])
    start_earliest = end_time - duration_s
    out = []
    for i, kind in enumerate(order):
        drive = pool[kind].pop(0)
        slack = duration_s - drive.config.duration
        start = start_earliest + float(rng.uniform(0.0, slack))
        config = dataclasses.replace(
            drive.config, vin=f"{VIN_PREFIX}{seed % 1000:03d}{i:07d}", start_time=round(start, 3)
        )
        out.append(SuiteDrive(config, drive.scenarios))
    return tuple(out)


def _fitting_drives(
    wanted: dict[str, int], seed: int, duration_s: float
) -> dict[str, list[SuiteDrive]]:
    pool: dict[str, list[SuiteDrive]] = defaultdict(list)
    chunk = 0
    while any(len(pool[k]) < n for k, n in wanted.items()):
        if chunk > 1_000:  # pragma: no cover - every kind fits in an hour now and then
            raise ValueError(f"too few suite drives fit in {duration_s} s")
        for drive in build_suite(_CHUNK, seed * 10_007 + chunk):
            kind = demo_kind(drive)
            if kind in wanted and drive.config.duration <= duration_s:
                pool[kind].append(drive)
        chunk += 1
    return pool
