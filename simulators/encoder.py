"""A vectorised CAN encoder: physical values in, payload bytes out, a whole column at a time.

`FrameEncoder` compiles a cantools ``Database`` once (for each signal: the runs of bits it
occupies, its conversion, its range, its multiplexer) and `MessageCodec.encode` turns arrays of
physical values into an ``(n, length)`` uint8 array of payloads. Per value it does what
cantools' ``Message.encode(..., scaling=True)`` does: ``raw = round((value - offset) / scale)``
in float64 with Python's rounding (half to even), IEEE bits for float signals. Unlike cantools,
which refuses a value outside the signal's ``[minimum, maximum]``, a value out of range is
clamped to it (and then to what the raw bits can hold), and a non-finite value encodes as the
range's low end: a simulator must never stop on one sample.

Multiplexed messages take the multiplexer's value per row; a signal of a branch is written
only in rows whose multiplexer selects it. A signal left out of ``values`` is written as raw 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.decoder.layout import segments

from ._types import U8Array

__all__ = ["FrameEncoder", "MessageCodec", "SignalCodec"]


@dataclass(frozen=True, slots=True)
class SignalCodec:
    """One signal compiled for encoding."""

    name: str
    length: int
    is_signed: bool
    is_float: bool
    scale: float
    offset: float
    minimum: float | None
    maximum: float | None
    runs: tuple[tuple[int, int, int, int], ...]  # (byte, shift in byte, bits, shift in raw)
    multiplexer: str | None
    mux_ids: tuple[int, ...]

    @property
    def raw_range(self) -> tuple[int, int]:
        if self.is_signed:
            return -(1 << (self.length - 1)), (1 << (self.length - 1)) - 1
        return 0, (1 << self.length) - 1

    def to_raw(self, values: npt.ArrayLike) -> npt.NDArray[np.uint64]:
        """Raw bit patterns (two's complement, IEEE for floats) of physical values."""
        v = np.array(values, dtype=np.float64, ndmin=1)
        low = self.minimum if self.minimum is not None else -np.inf
        high = self.maximum if self.maximum is not None else np.inf
        if self.minimum is not None or self.maximum is not None:
            v = np.clip(v, low, high)
        v = np.where(np.isfinite(v), v, low if np.isfinite(low) else 0.0)
        if self.is_float:
            if self.scale != 1 or self.offset != 0:
                v = (v - self.offset) / self.scale
            if self.length == 32:
                return v.astype(np.float32).view(np.uint32).astype(np.uint64)
            return v.view(np.uint64).copy()
        if self.scale != 1 or self.offset != 0:
            v = (v - self.offset) / self.scale
        lo, hi = self.raw_range
        raw = np.clip(np.rint(v), lo, hi)
        if self.length == 64 and not self.is_signed:
            return raw.astype(np.uint64)
        ints = raw.astype(np.int64)
        mask = np.uint64((1 << self.length) - 1)
        return ints.view(np.uint64) & mask


@dataclass(frozen=True, slots=True)
class MessageCodec:
    """One message compiled for encoding."""

    name: str
    frame_id: int
    is_extended: bool
    is_fd: bool
    length: int
    cycle_time: int | None
    signals: tuple[SignalCodec, ...]
    multiplexer: str | None

    def signal(self, name: str) -> SignalCodec:
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(f"{self.name}.{name}")

    def encode(self, values: Mapping[str, npt.ArrayLike], n: int) -> U8Array:
        """Payloads of ``n`` frames; each value is an array of ``n`` or a scalar."""
        data = np.zeros((n, self.length), np.uint8)
        mux_values: dict[str, npt.NDArray[np.int64]] = {}
        for signal in self.signals:
            if signal.name not in values:
                continue
            raw = np.broadcast_to(signal.to_raw(values[signal.name]), (n,))
            if signal.multiplexer is not None:
                selector = mux_values.get(signal.multiplexer)
                if selector is None:
                    continue
                raw = np.where(np.isin(selector, signal.mux_ids), raw, np.uint64(0))
            if any(s.multiplexer == signal.name for s in self.signals):
                mux_values[signal.name] = np.broadcast_to(
                    np.rint(np.asarray(values[signal.name], np.float64)).astype(np.int64), (n,)
                )
            _place(data, raw, signal.runs)
        return data


def _place(
    data: U8Array, raw: npt.NDArray[np.uint64], runs: tuple[tuple[int, int, int, int], ...]
) -> None:
    for byte, shift, bits, out in runs:
        part = (raw >> np.uint64(out)) & np.uint64((1 << bits) - 1)
        data[:, byte] |= (part << np.uint64(shift)).astype(np.uint8)


class FrameEncoder:
    """A cantools ``Database`` compiled for vectorised encoding, one `MessageCodec` per message."""

    def __init__(self, database: Any) -> None:
        self.messages: dict[str, MessageCodec] = {}
        for message in database.messages:
            self.messages[message.name] = _compile(message)

    def message(self, name: str) -> MessageCodec:
        return self.messages[name]


def _order(signals: list[Any]) -> list[Any]:
    """Multiplexers before the signals they select (stable otherwise)."""
    names = {s.name: s for s in signals}

    def depth(signal: Any) -> int:
        d = 0
        while signal.multiplexer_signal is not None and d < len(names):
            signal = names.get(signal.multiplexer_signal, signal)
            d += 1
        return d

    return sorted(signals, key=depth)


def _compile(message: Any) -> MessageCodec:
    codecs = []
    multiplexer = None
    for s in _order(list(message.signals)):
        little = s.byte_order == "little_endian"
        if s.is_multiplexer and s.multiplexer_signal is None:
            multiplexer = s.name
        codecs.append(
            SignalCodec(
                name=s.name,
                length=s.length,
                is_signed=s.is_signed,
                is_float=s.is_float,
                scale=s.scale,
                offset=s.offset,
                minimum=None if s.minimum is None else float(s.minimum),
                maximum=None if s.maximum is None else float(s.maximum),
                runs=tuple(segments(s.start, s.length, little)),
                multiplexer=s.multiplexer_signal,
                mux_ids=tuple(s.multiplexer_ids or ()),
            )
        )
    return MessageCodec(
        name=message.name,
        frame_id=message.frame_id,
        is_extended=message.is_extended_frame,
        is_fd=message.is_fd,
        length=message.length,
        cycle_time=message.cycle_time,
        signals=tuple(codecs),
        multiplexer=multiplexer,
    )
