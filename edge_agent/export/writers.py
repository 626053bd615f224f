"""Writers of decoded samples: long or wide tables, as CSV or Parquet.

Long form has exactly the columns ``timestamp,frame_id,message,signal,value``, one row per
decoded signal sample in log order; ``timestamp`` is the log's float seconds written as
Python's ``repr`` writes them, ``value`` the physical value (scale and offset applied, value
tables not applied) written as cantools types it: an integer for integer conversions, the
shortest round-trip float otherwise.  Wide form has one row per decoded frame and a column
per signal (``Message.Signal``), empty where the frame does not carry the signal.
"""

from __future__ import annotations

import itertools
import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self

import numba
import numpy as np
import numpy.typing as npt

from ..decoder import BatchDecoder, DecodedBatch
from ..decoder._tables import CONV_IDENTITY, CONV_INTEGER
from . import _kernels
from .errors import ExportError

_REGION = 2 << 20  # bytes of CSV text (worst case) one formatting task writes at most
_BUFFERS_PER_WORKER = 4  # region buffers formatted into or waiting to be written ...
_BUFFERS_MAX = 32  # ... and at most this many in all
_TABLE_BITS = 16  # signals of at most this many raw bits keep the text of each raw value
_TABLE_BUDGET = 64 << 20  # bytes of those tables at most (the shortest signals first)


class SampleWriter(Protocol):
    """Something that takes decoded batches and finally closes its output."""

    def write(self, decoded: DecodedBatch) -> int:
        """Write ``decoded``; the number of samples written (fewer than decoded when only
        some signals are written, as with a signal map)."""
        ...

    def close(self) -> None:
        """Finish the output: a file appears under its name only now, complete."""
        ...

    def discard(self) -> None:
        """Stop and leave no output (an earlier file of the same name stays as it was)."""
        ...


class _Replacement:
    """A new file beside ``path`` that takes its name when complete.

    Until then an earlier file of that name stays as it was, and a run that fails leaves
    it so.  The new file is never one truncated and rewritten: ext4 (``auto_da_alloc``)
    flushes such a file, and one renamed over another, synchronously on close: the earlier
    file is moved aside first, and removed once the new one has its name.  The new file
    takes the earlier one's permissions.  A name that is a symlink or not a regular file is
    written in place.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part: Path | None = None
        earlier_mode = None
        if path.is_symlink() or (path.exists() and not path.is_file()):
            self.name = path
        else:
            self.part = self._beside("part")
            self.name = self.part
            if path.exists():
                earlier_mode = path.stat().st_mode & 0o7777
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if self.part else os.O_TRUNC)
        self.fd = os.open(self.name, flags, 0o666)
        if earlier_mode is not None:  # not left to the umask
            os.fchmod(self.fd, earlier_mode)

    def _beside(self, kind: str) -> Path:
        return self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.{kind}")

    def commit(self) -> None:
        """Give the new file its name (the caller has closed it)."""
        if self.part is None:
            return
        earlier = None
        if self.path.exists():
            earlier = self._beside("old")
            self.path.rename(earlier)
        try:
            self.part.rename(self.path)
        except BaseException:
            if earlier is not None:
                earlier.rename(self.path)
            raise
        if earlier is not None:
            earlier.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.part is not None:
            self.part.unlink(missing_ok=True)


Rename = dict[tuple[str, str], tuple[str, float, float]]
"""(message, signal) -> (name to write, scale, offset): a signal map applied on output."""


@dataclass(frozen=True, slots=True, eq=False)
class _Columns:
    """Per signal of the decoder: how (and whether) it is written."""

    names: list[str]  # the signal column's text (the DBC name, or the mapped name)
    message: npt.NDArray[np.int32]  # the signal's message (index)
    kinds: npt.NDArray[np.int8]
    scale: npt.NDArray[np.float64]
    offset: npt.NDArray[np.float64]
    column: npt.NDArray[np.int64]  # wide column of each signal, -1 when not written
    wide_names: list[str]  # wide column headers, in column order
    slots: list[npt.NDArray[np.intp]]  # per message: the slots of its written signals
    every: bool  # every signal is written

    @classmethod
    def build(cls, decoder: BatchDecoder, rename: Rename | None) -> _Columns:
        t = decoder._tables
        n = len(decoder.signals)
        kinds = np.full(n, _kernels.VALUE_FLOAT, np.int8)
        scale, offset = np.ones(n), np.zeros(n)
        names: list[str] = []
        wide_names: list[str] = []
        column = np.full(n, -1, np.int64)
        for info in decoder.signals:
            conv = int(t.sig_conv[info.index])
            if conv == CONV_IDENTITY and not info.is_float:
                unsigned64 = not info.is_signed and info.length == 64
                kinds[info.index] = (
                    _kernels.VALUE_RAW_UINT if unsigned64 else _kernels.VALUE_RAW_INT
                )
            elif conv == CONV_INTEGER:
                kinds[info.index] = _kernels.VALUE_INT
            name, full = info.name, info.full_name
            if rename is not None:
                target = rename.get((info.message, info.name))
                if target is None:
                    kinds[info.index] = _kernels.VALUE_SKIP
                    names.append(name)
                    continue
                name = full = target[0]
                if (target[1], target[2]) != (1.0, 0.0):
                    kinds[info.index] = _kernels.VALUE_MAPPED_FLOAT
                    scale[info.index], offset[info.index] = target[1], target[2]
            names.append(name)
            column[info.index] = len(wide_names)
            wide_names.append(full)
        slots = [
            np.array([decoder.signals[i].slot for i in m.signals if column[i] >= 0], np.intp)
            for m in decoder.messages
        ]
        every = bool((column >= 0).all())
        message = np.array([info.message_index for info in decoder.signals], np.int32)
        return cls(names, message, kinds, scale, offset, column, wide_names, slots, every)

    def count(self, decoded: DecodedBatch) -> int:
        """The samples of ``decoded`` that are written: those of the signals not skipped."""
        if self.every:
            return decoded.stats.samples
        total = 0
        for m, info in enumerate(decoded.messages):
            frames, slots = int(decoded.message_frames[m]), self.slots[m]
            if frames and len(slots):
                width, start = len(info.signals), int(decoded.message_slot0[m])
                block = decoded.present[start : start + frames * width].reshape(width, frames)
                total += int(np.count_nonzero(block[slots]))
        return total


def _decimal_step(scale: float, offset: float) -> tuple[int, int, int] | None:
    """(scale, offset, places): ``scale`` and ``offset`` as integers over ``10**places``,
    the fewest places up to seven that make both whole; None when none do."""
    exact_scale, exact_offset = Decimal(repr(scale)), Decimal(repr(offset))
    for places in range(8):
        unit = Decimal(10) ** places
        a, b = exact_scale * unit, exact_offset * unit
        if a == a.to_integral_value() and b == b.to_integral_value():
            if a and abs(a) < 2**20 and abs(b) < 2**50:
                return int(a), int(b), places
            return None
    return None


class _ValueTexts:
    """Each sample's value text, made column by column before the rows are written.

    Formatting a float the way ``repr`` does costs far more than copying its text, and a
    quantised signal takes few distinct raw values: each signal of at most
    ``_TABLE_BITS`` bits keeps the text of every raw value it has had, in ``table``.
    """

    def __init__(self, decoder: BatchDecoder, columns: _Columns) -> None:
        n = len(decoder.signals)
        self.base, self.mask = np.full(n, -1, np.int64), np.zeros(n, np.uint64)
        entries = 0
        for info in sorted(decoder.signals, key=lambda info: info.length):
            if (
                info.is_float
                or info.length > _TABLE_BITS
                or columns.kinds[info.index] == _kernels.VALUE_SKIP
            ):
                continue
            size = 1 << info.length
            if (entries + size) * _kernels.TABLE_ENTRY > _TABLE_BUDGET:
                break
            self.base[info.index], self.mask[info.index] = entries, size - 1
            entries += size
        # Zeroed (every entry "not seen"); the kernel maps the pages as they are touched.
        self.table = np.zeros(entries * _kernels.TABLE_ENTRY + 8, np.uint8)
        self.decimal_scale, self.decimal_offset = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.decimal_places = np.zeros(n, np.int64)
        for info in decoder.signals:
            if info.is_float or columns.kinds[info.index] != _kernels.VALUE_FLOAT:
                continue
            step = _decimal_step(info.scale, info.offset)
            if step is not None:
                self.decimal_scale[info.index], self.decimal_offset[info.index] = step[:2]
                self.decimal_places[info.index] = step[2]
        self.texts = np.empty(0, np.uint8)
        self._decoder = decoder
        self._columns = columns

    def make(self, decoded: DecodedBatch, pool: ThreadPoolExecutor, parts: int) -> None:
        """Fill ``texts`` for ``decoded``, ``TEXT_ENTRY`` bytes a slot, in ``parts`` tasks of
        about equal samples, each a run of whole signals."""
        size = (len(decoded.present) + 1) * _kernels.TEXT_ENTRY
        if len(self.texts) < size:
            self.texts = np.empty(size + size // 4, np.uint8)
        signal_message = self._columns.message
        if not len(signal_message):  # a database without signals
            return
        weight = np.cumsum(decoded.message_frames[signal_message] + 1)
        cuts = np.searchsorted(weight, np.linspace(0, weight[-1], parts + 1)[1:-1], "right")
        edges = np.unique(np.concatenate(([0], cuts, [len(weight)])))
        tasks = [
            pool.submit(self._make, decoded, int(lo), int(hi))
            for lo, hi in itertools.pairwise(edges)
        ]
        for task in tasks:
            task.result()

    def _make(self, decoded: DecodedBatch, first: int, end: int) -> None:
        columns = self._columns
        _kernels.format_values(
            first,
            end,
            columns.message,
            self._decoder._tables.msg_sig_start,
            decoded.message_slot0,
            decoded.message_frames,
            decoded.present,
            decoded.values,
            decoded.raw,
            columns.kinds,
            columns.scale,
            columns.offset,
            self.decimal_scale,
            self.decimal_offset,
            self.decimal_places,
            self.base,
            self.mask,
            self.table,
            self.texts,
        )


def _packed(names: list[str]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Names as one byte array plus offsets (``starts[i]:starts[i + 1]``)."""
    encoded = [name.encode() for name in names]
    starts = np.zeros(len(encoded) + 1, np.int64)
    starts[1:] = np.cumsum([len(e) for e in encoded])
    # Eight bytes of padding: the kernels copy names eight bytes at a time.
    return np.frombuffer(b"".join(encoded) + bytes(8), np.uint8).copy(), starts


class _CsvWriter:
    """Formats each batch in tasks on a pool of threads (the kernels release the GIL) and
    writes their text in order from another thread, while the next batch is decoded."""

    def __init__(
        self, target: Path | BinaryIO, decoder: BatchDecoder, columns: _Columns, header: str
    ) -> None:
        self._output: _Replacement | None = None
        if isinstance(target, str | os.PathLike):
            self._output = _Replacement(Path(target))
            self._file: BinaryIO = open(self._output.fd, "wb")  # noqa: SIM115
        else:
            self._file = target
        try:
            self._file.write(header.encode() + b"\n")
            self._texts = _ValueTexts(decoder, columns)
        except BaseException:
            if self._output is not None:
                self._file.close()
                self._output.discard()
            raise
        self._decoder = decoder
        self._columns = columns
        self._workers = max(1, numba.get_num_threads())
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="csv-format")
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-write")
        count = min(_BUFFERS_PER_WORKER * self._workers, _BUFFERS_MAX)
        self._buffers = [np.empty(0, np.uint8) for _ in range(count)]
        self._pending: list[Future[None] | None] = [None] * count
        self._regions = 0  # regions formatted so far: region i uses buffer i % count

    def _write_when_formatted(self, formatted: Future[int], buffer: npt.NDArray[np.uint8]) -> None:
        self._file.write(buffer[: formatted.result()].data)

    def _drain(self, decoded: DecodedBatch, frame_bounds: npt.NDArray[np.int64], run: Any) -> None:
        """Format ``decoded`` in tasks of frame ranges, each within one region, and have
        their text written in order.

        ``frame_bounds`` is each frame's worst-case text size; ``run(lo, hi, out)`` formats
        frames ``lo`` to ``hi`` into ``out`` and returns the bytes written.  Returns when
        every task is done with ``decoded`` (its text may still be being written).
        """
        if not len(frame_bounds):
            return
        self._texts.make(decoded, self._pool, 4 * self._workers)
        region = _REGION + int(frame_bounds.max())
        cumulative = np.cumsum(frame_bounds)
        cuts = np.searchsorted(
            cumulative, np.arange(_REGION, int(cumulative[-1]), _REGION), side="right"
        )
        edges = np.unique(np.concatenate(([0], cuts, [len(frame_bounds)])))
        tasks = []
        for lo, hi in itertools.pairwise(edges):
            which = self._regions % len(self._buffers)
            self._regions += 1
            self._wait(which)
            if len(self._buffers[which]) < region:
                self._buffers[which] = np.empty(region, np.uint8)
            buffer = self._buffers[which]
            task = self._pool.submit(run, int(lo), int(hi), buffer)
            tasks.append(task)
            self._pending[which] = self._io.submit(self._write_when_formatted, task, buffer)
        for task in tasks:
            task.result()

    def _frame_columns(self, decoded: DecodedBatch) -> tuple[Any, ...]:
        """The arrays both row kernels take first: per frame its message, slot, timestamp
        and id; per message its first signal, signal count and frames in ``decoded``."""
        t = self._decoder._tables
        frames = decoded.frames
        return (
            decoded.frame_messages,
            decoded.frame_slots,
            frames.timestamps,
            frames.ids,
            t.msg_sig_start,
            t.msg_sig_count,
            decoded.message_frames,
        )

    def _wait(self, which: int) -> None:
        pending = self._pending[which]
        if pending is not None:
            self._pending[which] = None
            pending.result()  # re-raises a formatting or write error here

    def _finish(self) -> None:
        try:
            for which in range(len(self._pending)):
                self._wait(which)
        finally:
            self._pool.shutdown()
            self._io.shutdown()
            if self._output is None:
                self._file.flush()
            else:
                self._file.close()

    def close(self) -> None:
        try:
            self._finish()
            if self._output is not None:
                self._output.commit()
        except BaseException:
            if self._output is not None:
                self._output.discard()
            raise

    def discard(self) -> None:
        try:
            self._finish()
        finally:
            if self._output is not None:
                self._output.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


class LongCsvWriter(_CsvWriter):
    """``timestamp,frame_id,message,signal,value`` rows."""

    def __init__(
        self, target: Path | BinaryIO, decoder: BatchDecoder, rename: Rename | None = None
    ) -> None:
        columns = _Columns.build(decoder, rename)
        super().__init__(target, decoder, columns, "timestamp,frame_id,message,signal,value")
        self._names, self._name_start = _packed(
            [f"{s.message},{name}," for s, name in zip(decoder.signals, columns.names, strict=True)]
        )
        longest = int(np.diff(self._name_start).max(initial=0))
        self._row_bound = 48 + 1 + 10 + 1 + longest + 48 + 1  # floats: 24 + 20 of scratch

    def write(self, decoded: DecodedBatch) -> int:
        t = self._decoder._tables
        known = decoded.frame_messages >= 0
        bounds = (
            np.where(known, t.msg_sig_count[np.where(known, decoded.frame_messages, 0)], 0).astype(
                np.int64
            )
            * self._row_bound
        )
        per_frame = self._frame_columns(decoded)

        def run(lo: int, hi: int, out: npt.NDArray[np.uint8]) -> int:
            return int(
                _kernels.format_long(
                    lo, hi, *per_frame, self._texts.texts, self._names, self._name_start, out, 0
                )
            )

        self._drain(decoded, bounds, run)
        return self._columns.count(decoded)


class WideCsvWriter(_CsvWriter):
    """``timestamp,frame_id,message,<Message.Signal>...`` rows, one per decoded frame."""

    def __init__(
        self, target: Path | BinaryIO, decoder: BatchDecoder, rename: Rename | None = None
    ) -> None:
        columns = _Columns.build(decoder, rename)
        header = ",".join(["timestamp", "frame_id", "message", *columns.wide_names])
        super().__init__(target, decoder, columns, header)
        self._msg_names, self._msg_name_start = _packed([m.name for m in decoder.messages])
        longest = int(np.diff(self._msg_name_start).max(initial=0))
        self._row_bound = (
            48
            + 1
            + 10
            + 1
            + longest
            + len(columns.wide_names)
            + 48 * max(1, decoder._tables.max_signals)
            + 1
        )

    def write(self, decoded: DecodedBatch) -> int:
        bounds = (decoded.frame_messages >= 0).astype(np.int64) * self._row_bound
        per_frame = self._frame_columns(decoded)

        def run(lo: int, hi: int, out: npt.NDArray[np.uint8]) -> int:
            return int(
                _kernels.format_wide(
                    lo,
                    hi,
                    *per_frame,
                    len(self._columns.wide_names),
                    self._columns.column,
                    self._texts.texts,
                    self._msg_names,
                    self._msg_name_start,
                    out,
                    0,
                )
            )

        self._drain(decoded, bounds, run)
        return self._columns.count(decoded)


class ParquetWriter:
    """The same tables as Parquet (needs pyarrow: the ``parquet`` extra)."""

    def __init__(
        self,
        target: Path,
        decoder: BatchDecoder,
        *,
        wide: bool = False,
        rename: Rename | None = None,
    ) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ExportError(
                f"{target}: writing Parquet needs pyarrow: pip install 'can2care[parquet]'"
            ) from exc
        self._pa = pa
        self._decoder = decoder
        self._wide = wide
        self._columns = _Columns.build(decoder, rename)
        self._messages = pa.array([m.name for m in decoder.messages])
        self._signal_names = pa.array(self._columns.names)
        fields = [
            pa.field("timestamp", pa.float64()),
            pa.field("frame_id", pa.int64()),
            pa.field("message", pa.dictionary(pa.int32(), pa.string())),
        ]
        if wide:
            fields += [pa.field(name, pa.float64()) for name in self._columns.wide_names]
        else:
            fields += [
                pa.field("signal", pa.dictionary(pa.int32(), pa.string())),
                pa.field("value", pa.float64()),
            ]
        self._schema = pa.schema(fields)
        self._output = _Replacement(target)
        os.close(self._output.fd)  # pyarrow opens the file itself
        try:
            self._writer = pq.ParquetWriter(str(self._output.name), self._schema)
        except BaseException:
            self._output.discard()
            raise

    def _values(
        self, signals: npt.NDArray[np.int32], values: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        mapped = self._columns.kinds[signals] == _kernels.VALUE_MAPPED_FLOAT
        if not mapped.any():
            return values
        return np.where(
            mapped, values * self._columns.scale[signals] + self._columns.offset[signals], values
        )

    def write(self, decoded: DecodedBatch) -> int:
        pa = self._pa
        frames = decoded.frames
        if self._wide:
            rows = np.flatnonzero(decoded.frame_messages >= 0)
            columns: list[Any] = [
                frames.timestamps[rows],
                frames.ids[rows].astype(np.int64),
                pa.DictionaryArray.from_arrays(decoded.frame_messages[rows], self._messages),
            ]
            index_of = np.full(len(frames), -1, np.int64)
            index_of[rows] = np.arange(len(rows))
            wide: list[Any] = [None] * len(self._columns.wide_names)
            for info in self._decoder.signals:
                position = int(self._columns.column[info.index])
                if position < 0:
                    continue
                data = np.zeros(len(rows))
                mask = np.ones(len(rows), np.bool_)
                if decoded.message_frames[info.message_index]:
                    column = decoded.column(info)
                    where = index_of[column.rows]
                    data[where] = self._values(
                        np.full(len(where), info.index, np.int32), column.values
                    )
                    mask[where] = False
                wide[position] = pa.array(data, mask=mask)
            columns += wide
        else:
            samples = decoded.long_form()
            keep = self._columns.kinds[samples.signals] != _kernels.VALUE_SKIP
            rows, signals = samples.rows[keep], samples.signals[keep]
            columns = [
                frames.timestamps[rows],
                frames.ids[rows].astype(np.int64),
                pa.DictionaryArray.from_arrays(self._columns.message[signals], self._messages),
                pa.DictionaryArray.from_arrays(signals, self._signal_names),
                self._values(signals, samples.values[keep]),
            ]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self._schema))
        return self._columns.count(decoded)

    def close(self) -> None:
        try:
            self._writer.close()
            self._output.commit()
        except BaseException:
            self._output.discard()
            raise

    def discard(self) -> None:
        try:
            self._writer.close()
        finally:
            self._output.discard()


def open_writer(
    path: Path, decoder: BatchDecoder, *, wide: bool = False, rename: Rename | None = None
) -> SampleWriter:
    """A writer chosen by the suffix of ``path``: ``.csv`` or ``.parquet``.

    With ``rename`` only the signals it names are written, under their new names and with
    its linear transform applied (this is how a signal map's VSS paths reach the output).
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if wide:
            return WideCsvWriter(path, decoder, rename)
        return LongCsvWriter(path, decoder, rename)
    if suffix in (".parquet", ".pq"):
        return ParquetWriter(path, decoder, wide=wide, rename=rename)
    raise ExportError(
        f"{path}: unknown output format {suffix or '(no suffix)'!r}; use .csv or .parquet"
    )
