"""The binary COPY stream of ``telemetry_series`` rows, made with NumPy (pure, no I/O).

psycopg's row-by-row binary dumpers handle a Python list element by element; a series row
carries hundreds of samples, so the formatter here lays out all the rows' array elements in
three NumPy buffers (length word and big-endian value per element, as PostgreSQL's binary
array format wants them) and joins them with the few fixed fields of each row.

The layout is PostgreSQL's binary COPY format: signature, flags and extension length, then
per tuple a 16-bit field count and per field a 32-bit length and the value, then -1.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .rows import SeriesRow

__all__ = ["COLUMNS", "series_copy_data"]

# The columns, in the order the stream carries them.
COLUMNS = "vehicle_id, signal_id, sequence, start_time, end_time, n, times, physical, raw"

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT4_OID, _INT8_OID, _FLOAT8_OID = 23, 20, 701

# field count, vehicle id length (the text follows)
_ROW_HEAD = struct.Struct(">hi")
# signal_id, sequence, start_time, end_time, n: each as (length, value)
_FIXED = struct.Struct(">iiiqiqiqii")
# an array field: its length, then ndim, flags, element type, dimension, lower bound
_ARRAY_HEAD = struct.Struct(">iiiiii")

_INT4_ELEMENT = np.dtype([("size", ">i4"), ("value", ">i4")])
_INT8_ELEMENT = np.dtype([("size", ">i4"), ("value", ">i8")])
_FLOAT8_ELEMENT = np.dtype([("size", ">i4"), ("value", ">f8")])


def _elements(arrays: Sequence[np.ndarray], dtype: np.dtype, total: int) -> memoryview:
    out = np.empty(total, dtype=dtype)
    out["size"] = dtype["value"].itemsize
    if total:
        out["value"] = np.concatenate(arrays)
    return memoryview(out.tobytes())


def _microseconds(time: datetime) -> int:
    return (time - _PG_EPOCH) // _MICROSECOND


def series_copy_data(rows: Sequence[SeriesRow], signal_ids: Mapping[str, int]) -> bytes:
    """The complete binary COPY stream of ``rows`` (columns `COLUMNS`)."""
    counts = [row.n for row in rows]
    total = sum(counts)
    times = _elements([row.times for row in rows], _INT4_ELEMENT, total)
    physical = _elements([row.physical for row in rows], _FLOAT8_ELEMENT, total)
    raw = _elements([row.raw for row in rows], _INT8_ELEMENT, total)
    parts: list[bytes | memoryview] = [_SIGNATURE]
    append = parts.append
    at = 0
    for row, n in zip(rows, counts, strict=True):
        vehicle = row.vehicle_id.encode("utf-8")
        append(_ROW_HEAD.pack(9, len(vehicle)))
        append(vehicle)
        append(
            _FIXED.pack(
                4, signal_ids[row.path],
                8, row.sequence,
                8, _microseconds(row.start_time),
                8, _microseconds(row.end_time),
                4, n,
            )
        )  # fmt: skip
        end = at + n
        append(_ARRAY_HEAD.pack(20 + 8 * n, 1, 0, _INT4_OID, n, 1))
        append(times[at * 8 : end * 8])
        append(_ARRAY_HEAD.pack(20 + 12 * n, 1, 0, _FLOAT8_OID, n, 1))
        append(physical[at * 12 : end * 12])
        append(_ARRAY_HEAD.pack(20 + 12 * n, 1, 0, _INT8_OID, n, 1))
        append(raw[at * 12 : end * 12])
        at = end
    append(_TRAILER)
    return b"".join(parts)
