"""The telemetry body: series directory, time, integer and float sections (see codec).

Each section is coded and decoded as one NumPy pass over all its series, so the cost of a
body hardly depends on how many series it holds. The decoder checks everything it reads and
raises `MalformedPayloadError` through the `Section` it is given, which knows whether offsets
count in the payload (a stored body) or in the decompressed body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _varint
from ._varint import VarintError
from .errors import MalformedPayloadError
from .schema import SignalSpec, WireSchema

__all__ = ["Column", "Section", "decode_body", "encode_body"]

_BYTES_AT_LEAST = {"int": 1, "float32": 4, "float64": 8}  # per sample, in the value sections
_EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One series' signal, times and raw values, checked against the signal."""

    spec: SignalSpec
    times: npt.NDArray[np.int64]
    raw: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Section:
    """Where offsets found in some bytes point: the payload itself or the decompressed body."""

    name: str
    shift: int = 0

    def error(self, problem: str, offset: int) -> MalformedPayloadError:
        return MalformedPayloadError(problem, offset + self.shift, self.name)


# -- encoding -------------------------------------------------------------------------------


def encode_body(columns: list[Column], base: int) -> bytes:
    """The body of checked columns whose times count from ``base``."""
    directory: list[int] = []
    time_codes: list[npt.NDArray[np.int64]] = []
    int_codes: list[npt.NDArray[np.int64]] = []
    float_bytes: list[bytes] = []
    last_with: dict[bytes, int] = {}  # a times array's bytes -> last series that had it
    base_array = np.array([base], np.int64)
    for i, column in enumerate(columns):
        times, raw, kind = column.times, column.raw, column.spec.kind
        n, reference = len(times), 0
        if n:
            key = times.tobytes()
            if key in last_with:
                reference = i - last_with[key]
            else:
                codes = np.empty(n, np.int64)
                codes[:1] = times[:1] - base_array  # int64 arithmetic wraps on both sides
                if n > 1:
                    steps = np.diff(times)
                    codes[1] = steps[0]
                    codes[2:] = np.diff(steps)
                time_codes.append(codes)
            last_with[key] = i
            if kind == "int":
                codes = np.empty(n, np.int64)
                codes[0] = raw[0]
                codes[1:] = np.diff(raw)
                int_codes.append(codes)
            elif kind == "float32":
                float_bytes.append((raw & 0xFFFFFFFF).astype("<u4").tobytes())
            else:
                float_bytes.append(raw.astype("<i8").tobytes())
        directory += (column.spec.number, n, reference)
    return b"".join(
        (
            _varint.encode_uint(len(columns)),
            _varint.encode_array(np.array(directory, np.uint64)),
            _varint.encode_array(_varint.zigzag(_concat(time_codes))),
            _varint.encode_array(_varint.zigzag(_concat(int_codes))),
            *float_bytes,
        )
    )


def _concat(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


# -- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """A directory entry, checked against the schema and the series before it."""

    spec: SignalSpec
    count: int
    reference: int


def decode_body(body: bytes, schema: WireSchema, base: int, section: Section) -> list[Column]:
    """The series of a body, in directory order."""
    data = np.frombuffer(body, np.uint8)
    ends = _varint.varint_ends(data)

    def read(pos: int, count: int, what: str) -> _varint.Block:
        try:
            return _varint.read_array(data, ends, pos, count)
        except VarintError as exc:
            raise section.error(f"{what}: {exc.problem}", exc.offset) from None

    try:
        count, pos = _varint.read_uint(body, 0)
    except VarintError as exc:
        raise section.error(f"series count: {exc.problem}", exc.offset) from None
    if 3 * count > len(body) - pos:
        raise section.error(f"{count:,} series cannot fit in a body of {len(body):,} bytes", 0)
    block = read(pos, 3 * count, "series directory")
    entries = _directory(block, count, schema, section)
    pos = block.end
    need = sum(e.count * _BYTES_AT_LEAST[e.spec.kind] for e in entries)
    need += sum(e.count for e in entries if not e.reference)
    if need > len(body) - pos:
        raise section.error(
            f"the series need at least {need:,} bytes, {len(body) - pos:,} are left", pos
        )
    own = [e for e in entries if e.count and not e.reference]
    block = read(pos, sum(e.count for e in own), "time section")
    times = _times(block, own, base, section)
    ints = [e for e in entries if e.count and e.spec.kind == "int"]
    block = read(block.end, sum(e.count for e in ints), "integer section")
    raws = _integers(block, ints, section)
    pos = block.end

    float_size = sum(
        e.count * _BYTES_AT_LEAST[e.spec.kind] for e in entries if e.spec.kind != "int"
    )
    if pos + float_size > len(body):
        raise section.error(
            f"truncated float section: {float_size:,} bytes needed, {len(body) - pos:,} left",
            len(body),
        )
    if pos + float_size < len(body):
        raise section.error(
            f"{len(body) - pos - float_size:,} trailing bytes after the last section",
            pos + float_size,
        )
    return _assemble(body, entries, times, raws, pos)


def _directory(
    block: _varint.Block, count: int, schema: WireSchema, section: Section
) -> list[_Entry]:
    entries: list[_Entry] = []
    owners: dict[int, int] = {}
    for i, (number, samples, reference) in enumerate(block.values.reshape(count, 3).tolist()):
        at = block.offset(3 * i)
        if number >= len(schema.signals):
            raise section.error(
                f"series {i}: unknown signal number {number} (catalogue "
                f"{schema.catalogue_id} has {len(schema.signals)} signals)",
                at,
            )
        if number in owners:
            raise section.error(
                f"series {i}: signal {number} already has series {owners[number]}", at
            )
        owners[number] = i
        if reference and (samples == 0 or reference > i or entries[i - reference].count != samples):
            raise section.error(
                f"series {i}: time reference {reference} does not name an earlier series "
                f"of {samples} samples",
                block.offset(3 * i + 2),
            )
        entries.append(_Entry(schema.signals[number], samples, reference))
    return entries


def _starts(entries: list[_Entry]) -> npt.NDArray[np.int64]:
    """Where each entry's samples start in its section's concatenation."""
    starts = np.zeros(len(entries), np.int64)
    np.cumsum([e.count for e in entries[:-1]], out=starts[1:])
    return starts


def _segment_cumsum(values: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]) -> None:
    """Cumulative sums restarting at each of ``starts``, in place (int64, wrapping).

    Each segment's first value is reduced by the sum of the segment before it, so one
    cumulative sum over everything restarts at every segment; segments must not be empty.
    """
    if len(starts) > 1:
        values[starts[1:]] -= np.add.reduceat(values, starts)[:-1]
    np.cumsum(values, out=values)


def _times(
    block: _varint.Block, entries: list[_Entry], base: int, section: Section
) -> npt.NDArray[np.int64]:
    """Timestamps of the series with times of their own, concatenated."""
    if not entries:
        return _EMPTY
    codes = _varint.unzigzag(block.values)  # per series: t0 - base, first step, step changes
    starts = _starts(entries)
    firsts = codes[starts].copy()
    codes[starts] = 0
    _segment_cumsum(codes, starts)  # steps
    codes[starts] = firsts
    _segment_cumsum(codes, starts)  # times - base
    codes += np.int64(base)
    backwards = codes[1:] < codes[:-1]
    backwards[starts[1:] - 1] = False
    if backwards.any():
        k = int(np.argmax(backwards)) + 1
        s = int(np.searchsorted(starts, k, side="right")) - 1
        spec = entries[s].spec
        raise section.error(
            f"signal {spec.number} ({spec.vss}): time goes backwards at sample "
            f"{k - int(starts[s])}",
            block.offset(k),
        )
    return codes


def _integers(
    block: _varint.Block, entries: list[_Entry], section: Section
) -> npt.NDArray[np.int64]:
    """Raw values of the integer series, concatenated, checked against their signals' bits."""
    if not entries:
        return _EMPTY
    raw = _varint.unzigzag(block.values)  # per series: first value, then deltas
    starts = _starts(entries)
    _segment_cumsum(raw, starts)
    low = np.minimum.reduceat(raw, starts)
    high = np.maximum.reduceat(raw, starts)
    for s, e in enumerate(entries):
        if low[s] < e.spec.raw_min or high[s] > e.spec.raw_max:
            values = raw[starts[s] : starts[s] + e.count]
            k = int(np.argmax((values < e.spec.raw_min) | (values > e.spec.raw_max)))
            raise section.error(
                f"signal {e.spec.number} ({e.spec.vss}): raw value {int(values[k])} is "
                f"outside {e.spec.raw_min}..{e.spec.raw_max}",
                block.offset(int(starts[s]) + k),
            )
    return raw


def _assemble(
    body: bytes,
    entries: list[_Entry],
    times: npt.NDArray[np.int64],
    raws: npt.NDArray[np.int64],
    float_pos: int,
) -> list[Column]:
    out: list[Column] = []
    t_at = i_at = 0
    for i, e in enumerate(entries):
        n, kind = e.count, e.spec.kind
        if not n:
            out.append(Column(e.spec, _EMPTY.copy(), _EMPTY.copy()))
            continue
        if e.reference:
            series_times = out[i - e.reference].times.copy()
        else:
            series_times, t_at = times[t_at : t_at + n], t_at + n
        if kind == "int":
            raw, i_at = raws[i_at : i_at + n], i_at + n
        else:
            dtype = "<i8" if kind == "float64" else "<i4" if e.spec.is_signed else "<u4"
            raw = np.frombuffer(body, dtype, n, float_pos).astype(np.int64)
            float_pos += n * _BYTES_AT_LEAST[kind]
        out.append(Column(e.spec, series_times, raw))
    return out
