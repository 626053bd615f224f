"""Shared by the agent's tests: a simulated drive of the demo vehicle, decoded."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Sequence

from dbc import Catalogue, demo_catalogue
from edge_agent.decoder import BatchDecoder
from edge_agent.frames import FrameBatch
from edge_agent.wire import WireSchema
from simulators import Scenario, TrafficGenerator, VehicleConfig, simulate


@functools.cache
def catalogue() -> Catalogue:
    return demo_catalogue()


@functools.cache
def schema() -> WireSchema:
    return WireSchema.from_catalogue(catalogue())


@functools.cache
def decoder() -> BatchDecoder:
    return BatchDecoder(catalogue().database)


def drive_frames(
    duration: float = 120.0,
    *,
    cycle: str = "urban",
    seed: int = 3,
    scenarios: Sequence[Scenario] = (),
) -> FrameBatch:
    drive = simulate(VehicleConfig(cycle=cycle, duration=duration, seed=seed), scenarios)
    return TrafficGenerator(drive.trace, catalogue().database).all_frames()


@functools.cache
def urban_frames() -> FrameBatch:
    return drive_frames()


def split(frames: FrameBatch, cuts: Sequence[int]) -> list[FrameBatch]:
    """``frames`` cut at the given row numbers."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(frames)}), len(frames)]
    return [frames.slice(a, b) for a, b in itertools.pairwise(bounds)]


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
