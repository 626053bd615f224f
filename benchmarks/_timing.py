"""Timing shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest of ``runs`` timings of ``work`` (this machine is shared and noisy)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(rounds: int, *works: Callable[[], object]) -> list[list[float]]:
    """Timings of each of ``works``, run in turn ``rounds`` times (``result[work][round]``).

    Taking turns lets the project's code and its baseline see the same moments of a shared
    machine, whose speed drifts from one minute to the next.
    """
    times: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for i, work in enumerate(works):
            start = time.perf_counter()
            work()
            times[i].append(time.perf_counter() - start)
    return times
