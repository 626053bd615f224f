"""Recorded drives that fleet vehicles play back as telemetry batches.

Each drive of the mix is simulated once, its CAN traffic generated and decoded once with the
edge agent's batch decoder, and the decoded samples of every mapped (VSS) signal thinned
evenly to the fleet's sample rate. The samples are then cut into slots of one batch
interval, so a vehicle's batch is a slot of its drive: one addition moves the slot's times to
the vehicle's clock, and the series are views of shared arrays. What the wire codec encodes
are real decoded samples; only the encoding is left to do per batch.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_agent.wire import Series, TelemetryBatch, WireSchema

from .._types import IntArray
from ..drive import simulate
from ..errors import FleetError, SimulatorError
from ..scenarios import KINDS, Scenario
from ..traffic import TrafficGenerator
from ..vehicle import VehicleConfig
from ._config import MixEntry

__all__ = ["Playback", "build_playbacks", "drive_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class Playback:
    """One drive cut into ``slots`` slots of ``slot_ms``.

    ``times`` (ms from the start of each sample's slot) and ``raw`` hold every kept sample,
    ordered by slot, signal and time; ``cuts[k]`` lists slot k's series as (signal number,
    start, end) into them, ``spans[k]`` the slot's (start, end).
    """

    name: str
    catalogue_id: str
    slot_ms: int
    times: IntArray
    raw: IntArray
    spans: tuple[tuple[int, int], ...]
    cuts: tuple[tuple[tuple[int, int, int], ...], ...]
    samples_per_s: float  # as kept: the fleet's rate, or the drive's full rate if lower

    @property
    def slots(self) -> int:
        return len(self.spans)

    def batch(self, slot: int, base_ms: int, sequence: int) -> TelemetryBatch:
        """Slot ``slot`` (modulo the drive's slots) as batch ``sequence``, its times moved so
        that the slot starts at ``base_ms``."""
        k = slot % len(self.spans)
        a0, a1 = self.spans[k]
        times = self.times[a0:a1] + base_ms
        raw = self.raw[a0:a1]
        series = tuple(
            Series(signal, times[a - a0 : b - a0], raw[a - a0 : b - a0])
            for signal, a, b in self.cuts[k]
        )
        return TelemetryBatch(self.catalogue_id, sequence, series)


def drive_config(
    entry: MixEntry, trace_s: float, seed: int
) -> tuple[VehicleConfig, list[Scenario]]:
    """The drive of a mix entry: a plain drive of its cycle, or an EV (combustion when the
    scenario needs it) on a cycle that suits the scenario, which starts a quarter of the way in
    (``cold_morning`` at 0, as it must)."""
    if entry.profile not in KINDS:
        variant = entry.variant or "ev"
        return VehicleConfig(variant=variant, cycle=entry.profile, duration=trace_s, seed=seed), []
    spec = KINDS[entry.profile]
    if spec.variant is not None and entry.variant not in (None, spec.variant):
        raise FleetError(f"mix: {entry.profile!r} needs the {spec.variant} variant")
    variant = entry.variant or ("combustion" if spec.variant == "combustion" else "ev")
    cycle = "parking" if spec.cycle == "parking" else "urban"
    at = 0.0 if entry.profile == "cold_morning" else float(round(trace_s / 4))
    config = VehicleConfig(variant=variant, cycle=cycle, duration=trace_s, seed=seed)
    return config, [Scenario(entry.profile, at=at)]


def build_playbacks(
    mix: Sequence[MixEntry],
    schema: WireSchema,
    *,
    samples_per_s: float,
    slot_ms: int,
    trace_s: float,
    seed: int,
) -> list[Playback]:
    """A playback of each drive of ``mix`` (raises `FleetError` for a drive that cannot be
    simulated, e.g. a scenario that does not fit the drive)."""
    from dbc import demo_catalogue
    from edge_agent.decoder import BatchDecoder

    catalogue = demo_catalogue()
    if catalogue.catalogue_id != schema.catalogue_id:
        raise FleetError("the fleet plays drives of the demo vehicle; give its schema")
    decoder = BatchDecoder(catalogue.database)
    playbacks = []
    for entry in mix:
        drive_seed = zlib.crc32(f"{seed}:{entry.name}".encode())
        config, scenarios = drive_config(entry, trace_s, drive_seed)
        try:
            drive = simulate(config, scenarios)
        except SimulatorError as exc:
            raise FleetError(f"mix: {entry.name}: {exc}") from exc
        frames = TrafficGenerator(drive.trace, catalogue.database).all_frames()
        decoded = decoder.decode(frames)
        columns = []
        for spec in schema.signals:
            column = decoded.column(decoder.signal_info(f"{spec.message}.{spec.signal}"))
            if len(column.raw):
                t_ms = np.rint((column.timestamps - config.start_time) * 1000.0).astype(np.int64)
                columns.append((spec.number, t_ms, np.asarray(column.raw, dtype=np.int64)))
        playbacks.append(_cut(entry.name, schema, columns, samples_per_s, slot_ms, trace_s))
    return playbacks


def _cut(
    name: str,
    schema: WireSchema,
    columns: list[tuple[int, IntArray, IntArray]],
    samples_per_s: float,
    slot_ms: int,
    trace_s: float,
) -> Playback:
    slots = int(trace_s * 1000) // slot_ms
    end_ms = slots * slot_ms
    full_rate = sum(int(np.count_nonzero(t < end_ms)) for _, t, _ in columns) / (end_ms / 1000)
    fraction = min(1.0, samples_per_s / full_rate) if full_rate else 0.0
    if samples_per_s > full_rate:
        log.warning(
            "drive %s has %.0f samples/s at full rate; its vehicles send all of them",
            name,
            full_rate,
        )
    signals, times, raws = [], [], []
    for number, t, raw in columns:
        keep = t < end_ms
        t, raw = t[keep], raw[keep]
        n = len(t)
        m = round(n * fraction)
        if m == 0:
            continue
        index = (np.arange(m, dtype=np.int64) * n) // m
        signals.append(np.full(m, number, dtype=np.int64))
        times.append(t[index])
        raws.append(raw[index])
    if not times:
        raise FleetError(f"drive {name} has no samples at {samples_per_s} samples/s")
    signal = np.concatenate(signals)
    time = np.concatenate(times)
    slot = time // slot_ms
    order = np.lexsort((time, signal, slot))
    signal, time, slot = signal[order], time[order], slot[order]
    raw_all = np.concatenate(raws)[order]
    rel = time - slot * slot_ms
    # where (slot, signal) changes: a series starts
    change = np.flatnonzero((np.diff(slot) != 0) | (np.diff(signal) != 0)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(time)]))
    per_slot: list[list[tuple[int, int, int]]] = [[] for _ in range(slots)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        per_slot[int(slot[a])].append((int(signal[a]), a, b))
    bounds = np.searchsorted(slot, np.arange(slots + 1))
    spans = tuple((int(bounds[k]), int(bounds[k + 1])) for k in range(slots))
    kept = len(time) / (end_ms / 1000)
    log.debug("drive %s: %d slots, %.1f samples/s kept", name, slots, kept)
    return Playback(
        name,
        schema.catalogue_id,
        slot_ms,
        rel,
        raw_all,
        spans,
        tuple(tuple(c) for c in per_slot),
        kept,
    )
