"""What the storage tests store: times, float32 raw values and a crash of the demo catalogue."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from dbc import demo_catalogue
from edge_agent.wire import CrashEvent, Position, WireSchema

T0_MS = 1_772_366_400_000  # 2026-03-01 12:00 UTC
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RECEIVED = T0 + timedelta(seconds=12)


def float32_raw(*values: float) -> npt.NDArray[np.int64]:
    """Raw values of an IEEE float32 signal: the bit patterns of ``values``."""
    return np.array([struct.unpack("<i", struct.pack("<f", v))[0] for v in values], np.int64)


def crash(vehicle_id: str = "veh-1", sequence: int = 4) -> CrashEvent:
    """A crash event of the demo catalogue."""
    return CrashEvent(
        vehicle_id=vehicle_id,
        vin="WVWZZZ1JZXW000001",
        sequence=sequence,
        time_ms=T0_MS + 500,
        trigger="airbag",
        severity="SEVERE",
        position=Position(48.1374, 11.5755, T0_MS),
        heading_deg=90.0,
        previous_positions=(),
        propulsion="BEV",
        occupants=2,
        peak_acceleration=85.0,
        delta_v=32.5,
        catalogue_id=WireSchema.from_catalogue(demo_catalogue()).catalogue_id,
    )
