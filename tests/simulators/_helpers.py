"""Shared helpers: simulate a drive and decode its frames through the project's decoder."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dbc import demo_catalogue
from edge_agent.decoder import BatchDecoder, DecodedBatch
from simulators import Drive, Scenario, TrafficGenerator, VehicleConfig, simulate


@functools.cache
def decoder() -> BatchDecoder:
    return BatchDecoder(demo_catalogue().database)


def run(config: VehicleConfig, scenarios: Sequence[Scenario] = ()) -> tuple[Drive, DecodedBatch]:
    drive = simulate(config, scenarios)
    frames = TrafficGenerator(drive.trace, demo_catalogue().database).all_frames()
    return drive, decoder().decode(frames)


def around(decoded: DecodedBatch, name: str, start: float, end: float) -> npt.NDArray[np.float64]:
    """Decoded values of ``Message.Signal`` with timestamps in [start, end)."""
    column = decoded.signal(name)
    keep = (column.timestamps >= start) & (column.timestamps < end)
    values: npt.NDArray[np.float64] = column.values[keep]
    return values
