"""CAN traffic of a simulated drive: every message of the DBC at its cycle time.

Each message is sent every ``GenMsgCycleTime`` ms from a seeded random phase (so the bus load
is spread, as ECUs that start at different moments spread it) with a small timing jitter
(normal, 50 us, at most 200 us). A frame carries the trace's values at its send time. Alive
counters (4-bit ``*Counter`` signals) count frames; checksums (8-bit ``*Checksum`` signals in
the last byte) are CRC-8 SAE J1850 over the bytes before them. The DTC report cycles through
its slots (0: the count, then one slot per active DTC); the cell statistics rotate through the
six battery modules. The EV variant sends no ``ECM_*`` frames, the combustion variant no
``BMS_*`` or ``OBC_*`` frames. The bus stays awake while parked (the telematics unit keeps
it so), so parked drives send the same messages.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.frames import FrameBatch, FrameFlag

from ._types import FloatArray, IntArray, U8Array
from .encoder import FrameEncoder, MessageCodec
from .vehicle import DT, Trace

__all__ = ["TrafficGenerator", "crc8"]

_MODULES = 6


@functools.cache
def _crc_table() -> npt.NDArray[np.uint8]:
    table = np.zeros(256, np.uint8)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[byte] = crc
    return table


def crc8(data: U8Array) -> npt.NDArray[np.uint8]:
    """CRC-8 SAE J1850 (poly 0x1D, init and final XOR 0xFF) of each row of ``data``."""
    table = _crc_table()
    crc = np.full(data.shape[0], 0xFF, np.uint8)
    for column in range(data.shape[1]):
        crc = table[crc ^ data[:, column]]
    out: npt.NDArray[np.uint8] = crc ^ np.uint8(0xFF)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class _Schedule:
    codec: MessageCodec
    times: FloatArray  # seconds from the drive's start, increasing


class TrafficGenerator:
    """The frames of one simulated drive, generated in time order, chunk by chunk."""

    def __init__(self, trace: Trace, database: Any, *, channel: str = "can0") -> None:
        self.trace = trace
        self.channel = channel
        encoder = FrameEncoder(database)
        rng = np.random.default_rng([trace.config.seed, 0x7AF])
        duration = float(trace.t[-1])
        self._schedules: list[_Schedule] = []
        for codec in encoder.messages.values():
            if not codec.cycle_time or not self._sent(codec.name):
                continue
            cycle = codec.cycle_time / 1000.0
            phase = rng.uniform(0.0, cycle)
            count = int(np.floor((duration - phase) / cycle)) + 1
            jitter = np.clip(rng.normal(0.0, 50e-6, count), -200e-6, 200e-6)
            times = np.clip(phase + np.arange(count) * cycle + jitter, 0.0, duration)
            self._schedules.append(_Schedule(codec, times))
        offsets = np.random.default_rng([trace.config.seed, 0xCE11])
        self._cell_dv = offsets.normal(0.0, 0.004, (_MODULES, 16))
        self._cell_dt = offsets.normal(0.0, 0.6, (_MODULES, 8))
        self._dtcs = sorted(trace.dtcs, key=lambda d: d.start)

    def _sent(self, name: str) -> bool:
        if self.trace.config.variant == "ev":
            return not name.startswith("ECM_")
        return not name.startswith(("BMS_", "OBC_"))

    @property
    def frame_count(self) -> int:
        return sum(len(s.times) for s in self._schedules)

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(s.codec.name for s in self._schedules)

    def batches(self, chunk_seconds: float = 60.0) -> Iterator[FrameBatch]:
        """The drive's frames in time order, ``chunk_seconds`` of traffic per batch."""
        duration = float(self.trace.t[-1])
        start = 0.0
        while start <= duration:
            end = start + chunk_seconds
            batch = self._chunk(start, end if end <= duration else np.inf)
            if len(batch):
                yield batch
            start = end

    def all_frames(self) -> FrameBatch:
        return self._chunk(0.0, np.inf)

    def _chunk(self, start: float, end: float) -> FrameBatch:
        parts = []
        for schedule in self._schedules:
            lo, hi = np.searchsorted(schedule.times, (start, end))
            if hi > lo:
                parts.append(self._frames(schedule, int(lo), int(hi)))
        if not parts:
            return FrameBatch.empty()
        width = max(p[4].shape[1] for p in parts)
        data = np.zeros((sum(len(p[0]) for p in parts), width), np.uint8)
        row = 0
        for p in parts:
            data[row : row + len(p[0]), : p[4].shape[1]] = p[4]
            row += len(p[0])
        times = np.concatenate([p[0] for p in parts])
        order = np.argsort(times, kind="stable")
        return FrameBatch(
            timestamps=times[order] + self.trace.config.start_time,
            ids=np.concatenate([p[1] for p in parts])[order],
            flags=np.concatenate([p[2] for p in parts])[order],
            lengths=np.concatenate([p[3] for p in parts])[order],
            data=data[order],
            channels=np.zeros(len(times), np.int16),
            channel_names=(self.channel,),
        )

    def _frames(
        self, schedule: _Schedule, lo: int, hi: int
    ) -> tuple[FloatArray, Any, Any, Any, U8Array]:
        codec = schedule.codec
        times = schedule.times[lo:hi]
        n = len(times)
        k: IntArray = np.arange(lo, hi, dtype=np.int64)
        idx = np.clip(np.rint(times / DT).astype(np.int64), 0, len(self.trace.t) - 1)
        values: dict[str, Any] = {}
        channels = self.trace.channels
        checksum = None
        for signal in codec.signals:
            full = f"{codec.name}.{signal.name}"
            if signal.name.endswith("Counter") and signal.length == 4:
                values[signal.name] = k % 16
            elif signal.name.endswith("Checksum") and signal.length == 8:
                checksum = signal
            elif full in channels:
                values[signal.name] = channels[full][idx]
        if codec.name == "BMS_CellStats":
            self._cells(values, k, idx)
        elif codec.name == "GW_DtcReport":
            self._dtc_slots(values, k, times)
        data = codec.encode(values, n)
        if checksum is not None:
            byte = checksum.runs[0][0]
            data[:, byte] = crc8(data[:, :byte])
        flags = FrameFlag(0)
        if codec.is_extended:
            flags |= FrameFlag.EXTENDED
        if codec.is_fd:
            flags |= FrameFlag.FD | FrameFlag.BRS
        return (
            times,
            np.full(n, codec.frame_id, np.uint32),
            np.full(n, int(flags), np.uint8),
            np.full(n, codec.length, np.uint8),
            data,
        )

    def _cells(self, values: dict[str, Any], k: IntArray, idx: IntArray) -> None:
        module = k % _MODULES
        values["CellModuleIndex"] = module
        volts = self.trace.channels.get("cell_voltage_v")
        temps = self.trace.channels.get("cell_temp_c")
        if volts is None or temps is None:
            return
        for cell in range(16):
            values[f"CellVoltage{cell + 1:02d}"] = volts[idx] + self._cell_dv[module, cell]
        for cell in range(8):
            values[f"CellTemp{cell + 1:02d}"] = temps[idx] + self._cell_dt[module, cell]

    def _dtc_slots(self, values: dict[str, Any], k: IntArray, times: FloatArray) -> None:
        count = np.zeros(len(k), np.int64)
        for dtc in self._dtcs:
            count += times >= dtc.start
        count = np.minimum(count, 32)
        slot = k % (count + 1)
        values["DtcSlot"] = slot
        values["DtcCount"] = count
        values["MilOn"] = (count > 0).astype(np.int64)
        code = np.zeros(len(k))
        status = np.zeros(len(k))
        severity = np.zeros(len(k))
        source = np.zeros(len(k))
        for j, dtc in enumerate(self._dtcs[:32]):
            rows = slot == j + 1
            code[rows], status[rows] = dtc.code, dtc.status
            severity[rows], source[rows] = dtc.severity, dtc.source_ecu
        values |= {
            "DtcCode": code,
            "DtcStatus": status,
            "DtcSeverity": severity,
            "DtcSourceEcu": source,
        }
