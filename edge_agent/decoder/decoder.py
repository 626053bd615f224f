"""The decoder's public objects: :class:`BatchDecoder` and its results."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..frames import FrameBatch, FrameFlag
from . import _kernels
from ._tables import CONV_INT_SCALE, CONV_INTEGER, MessageInfo, SignalInfo, Tables
from ._tables import compile_database as _compile
from .errors import DecoderError

log = logging.getLogger(__name__)

# Frames per parallel work item of the lookup and assign passes: large enough to amortise
# scheduling, small enough to balance the threads.
_CHUNK = 65536
# Slots per work item of the decode pass (a tile of one message's frames): a tile's slots
# stay in the core's cache while its message's signals are decoded one after another, and
# tiles of equal work keep the threads balanced.
_TILE_SLOTS = 4096


@dataclass(frozen=True, slots=True)
class _Kernels:
    lookup: Any
    assign: Any
    decode_simple: Any

    @classmethod
    def parallel(cls) -> _Kernels:
        k = _kernels
        return cls(k.lookup, k.assign, k.decode_simple)

    @classmethod
    def serial(cls) -> _Kernels:
        k = _kernels
        return cls(k.lookup_serial, k.assign_serial, k.decode_simple_serial)


@dataclass(frozen=True, slots=True)
class DecodeStats:
    """What happened to a batch's frames."""

    frames: int  # frames in the batch
    decoded: int  # frames of a known message (decoded, maybe partly)
    unknown: int  # data frames whose id matches no message
    skipped: int  # remote and error frames
    truncated: int  # decoded frames shorter than their message's DBC length
    samples: int  # signal values produced


@dataclass(frozen=True, slots=True, eq=False)
class SignalColumn:
    """One signal's samples, in frame order."""

    info: SignalInfo
    rows: npt.NDArray[np.int64]  # indices into the decoded FrameBatch
    timestamps: npt.NDArray[np.float64]
    raw: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class LongForm:
    """Every sample in frame order: one entry per (frame, present signal)."""

    rows: npt.NDArray[np.int64]
    signals: npt.NDArray[np.int32]  # index into BatchDecoder.signals
    raw: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedBatch:
    """A decoded batch, stored as one block of slots per message.

    Each decoded frame owns a slot per signal of its message.  A message's block holds one
    column per signal, in the message's signal order, each as long as the message has frames
    in the batch: the frame at position p of the message (``message_rows``) has signal k's
    sample at ``message_slot0[m] + k * message_frames[m] + p``, and ``frame_slots`` gives
    each frame its slot of signal 0.  So a signal's samples are contiguous (see
    :meth:`signal`).  ``raw``
    holds raw integers (sign-extended for signed signals; the IEEE bit pattern for floats; an
    unsigned 64-bit value above 2**63-1 wraps negative), ``values`` physical values (raw *
    scale + offset, value tables not applied), ``present`` whether a slot holds a sample (a
    signal multiplexed out, or beyond a short frame's data, does not).
    """

    frames: FrameBatch
    frame_messages: npt.NDArray[np.int32]  # per frame: message index, -1 unknown, -2 skipped
    frame_slots: npt.NDArray[np.int64]  # per frame: slot of signal 0, -1 when not decoded
    message_rows: npt.NDArray[np.int64]  # frame rows grouped by message, in frame order
    message_row0: npt.NDArray[np.int64]  # per message: first entry in message_rows
    message_frames: npt.NDArray[np.int64]  # per message: decoded frames
    message_slot0: npt.NDArray[np.int64]  # per message: first slot
    raw: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    present: npt.NDArray[np.bool_]
    stats: DecodeStats
    messages: tuple[MessageInfo, ...]
    signals: tuple[SignalInfo, ...]
    _tables: Tables

    def __len__(self) -> int:
        return self.stats.samples

    def signal(self, full_name: str) -> SignalColumn:
        """The samples of one signal, by ``Message.Signal`` name."""
        for info in self.signals:
            if info.full_name == full_name:
                return self.column(info)
        raise KeyError(full_name)

    def columns(self) -> dict[str, SignalColumn]:
        """Every signal that has samples, by ``Message.Signal`` name."""
        out = {}
        for info in self.signals:
            if self.message_frames[info.message_index]:
                column = self.column(info)
                if len(column.rows):
                    out[info.full_name] = column
        return out

    def _block(self, info: SignalInfo, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        count = int(self.message_frames[info.message_index])
        start = int(self.message_slot0[info.message_index]) + info.slot * count
        return array[start : start + count]

    def column(self, info: SignalInfo) -> SignalColumn:
        """The samples of one signal, by its :class:`SignalInfo`."""
        m = info.message_index
        row0 = int(self.message_row0[m])
        rows = self.message_rows[row0 : row0 + int(self.message_frames[m])]
        present = self._block(info, self.present)
        raw = self._block(info, self.raw)
        values = self._block(info, self.values)
        if not present.all():
            rows, raw, values = rows[present], raw[present], values[present]
        else:
            raw, values = raw.copy(), values.copy()
        return SignalColumn(info, rows, self.frames.timestamps[rows], raw, values)

    def long_form(self) -> LongForm:
        """Every sample in frame order (within a frame: multiplexers first, then DBC order)."""
        n = self.stats.samples
        rows = np.empty(n, np.int64)
        signals = np.empty(n, np.int32)
        slots = np.empty(n, np.int64)
        t = self._tables
        _kernels.long_form(
            self.frame_messages,
            self.frame_slots,
            t.msg_sig_start,
            t.msg_sig_count,
            self.message_frames,
            self.present,
            rows,
            signals,
            slots,
        )
        return LongForm(rows, signals, self.raw[slots], self.values[slots])


class BatchDecoder:
    """A cantools ``Database`` compiled for batch decoding.

    ``decode`` is thread-safe and returns arrays of its own.  ``decode(frames, reuse=True)``
    decodes into buffers the decoder keeps and grows, sparing the allocation (and the first
    touch of fresh memory) on every batch of a stream: its result is valid only until the
    next ``reuse=True`` call, and such calls must not run concurrently.
    """

    def __init__(self, database: Any, *, parallel: bool = True) -> None:
        self.database = database
        # Large batches decode on every core; ``parallel=False`` keeps to the calling thread
        # (small micro-batches, as the edge agent's, gain nothing from the thread pool).
        self._parallel = parallel
        self._kernels = _Kernels.parallel() if parallel else _Kernels.serial()
        self._tables, messages, signals = _compile(database)
        self.messages: tuple[MessageInfo, ...] = tuple(messages)
        self.signals: tuple[SignalInfo, ...] = tuple(signals)
        self._by_name = {info.full_name: info for info in self.signals}
        t = self._tables
        self._float_signals = [i for i in self.signals if t.sig_float_bits[i.index]]
        self._integer_signals = np.flatnonzero(
            (t.sig_conv == CONV_INTEGER) | (t.sig_conv == CONV_INT_SCALE)
        )
        self._buffers: dict[str, npt.NDArray[Any]] = {}
        self._tile_frames = np.maximum(_TILE_SLOTS // np.maximum(t.msg_sig_count, 1), 16).astype(
            np.int64
        )
        log.debug("compiled %d messages, %d signals", len(messages), len(signals))

    def warm_up(self) -> None:
        """Load every kernel a batch can need now, not on the first frames: decode an empty
        batch, then one zero-filled frame of each message (the results are dropped)."""
        self.decode(FrameBatch.empty())
        rows = [
            (
                0.0,
                m.frame_id,
                (FrameFlag.EXTENDED if m.is_extended else 0) | (FrameFlag.FD if m.is_fd else 0),
                bytes(min(m.length, 64)),  # a J1939 DBC may declare longer transfers
            )
            for m in self.messages
        ]
        if rows:
            self.decode(FrameBatch.from_rows(rows))

    def signal_info(self, full_name: str) -> SignalInfo:
        """A signal by ``Message.Signal`` name."""
        try:
            return self._by_name[full_name]
        except KeyError:
            raise DecoderError(f"no signal {full_name!r} in the database") from None

    def _array(self, name: str, size: int, dtype: Any, reuse: bool) -> npt.NDArray[Any]:
        if not reuse:
            return np.empty(size, dtype)
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < size:
            buffer = np.empty(max(size, 2 * len(buffer) if buffer is not None else 0), dtype)
            self._buffers[name] = buffer
        return buffer[:size]

    def decode(self, frames: FrameBatch, *, reuse: bool = False) -> DecodedBatch:
        """Decode every data frame of ``frames`` whose id the database knows.

        With ``reuse`` the result lives in the decoder's buffers (see the class).
        """
        t = self._tables
        k = self._kernels
        n_frames = len(frames)
        if n_frames and int(frames.lengths.max()) > frames.data.shape[1]:
            raise DecoderError(
                f"a frame length ({int(frames.lengths.max())}) exceeds the batch's data width "
                f"({frames.data.shape[1]})"
            )
        n_msg = len(self.messages)
        chunk = _CHUNK if self._parallel else max(n_frames, 1)
        counts = np.zeros(((n_frames + chunk - 1) // chunk, n_msg + 2), np.int64)
        frame_msg = self._array("frame_msg", n_frames, np.int32, reuse)
        k.lookup(
            frames.ids,
            frames.flags,
            frames.lengths,
            t.small_ids,
            t.keys,
            t.key_msg,
            t.pgn_keys,
            t.pgn_msg,
            t.msg_length,
            chunk,
            frame_msg,
            counts,
        )
        per_chunk = counts[:, :n_msg]
        msg_frames = per_chunk.sum(axis=0)
        unknown = int(counts[:, n_msg].sum())
        truncated = int(counts[:, n_msg + 1].sum())
        msg_row0 = np.cumsum(msg_frames) - msg_frames
        slots_per_msg = msg_frames * t.msg_sig_count
        msg_slot0 = np.cumsum(slots_per_msg) - slots_per_msg
        chunk_row0 = msg_row0 + (np.cumsum(per_chunk, axis=0) - per_chunk)
        decoded = int(msg_frames.sum())
        n_slots = int(slots_per_msg.sum())
        frame_slot = self._array("frame_slot", n_frames, np.int64, reuse)
        message_rows = self._array("message_rows", decoded, np.int64, reuse)
        words_per_msg = msg_frames * t.msg_words
        msg_word0 = np.cumsum(words_per_msg) - words_per_msg
        words = self._array("words", int(words_per_msg.sum()), np.uint64, reuse)
        word_lengths = self._array("word_lengths", decoded, np.uint8, reuse)
        raw = self._array("raw", n_slots, np.int64, reuse)
        values = self._array("values", n_slots, np.float64, reuse)
        present = self._array("present", n_slots, np.bool_, reuse)
        general = np.zeros((len(counts), 2), np.int64)
        k.assign(
            frame_msg,
            frames.lengths,
            frames.data,
            msg_frames,
            msg_slot0,
            msg_row0,
            t.msg_simple,
            t.msg_words,
            msg_word0,
            chunk_row0,
            chunk,
            t.msg_sig_start,
            t.msg_sig_count,
            t.msg_has_mux,
            t.sig_seg_start,
            t.sig_seg_count,
            t.sig_need_bytes,
            t.sig_length,
            t.sig_signed,
            t.sig_float_bits,
            t.sig_conv,
            t.sig_scale,
            t.sig_offset,
            t.sig_iscale,
            t.sig_ioffset,
            t.sig_parent,
            t.sig_mux_start,
            t.sig_mux_count,
            t.sig_choice_start,
            t.sig_choice_count,
            t.sig_is_mux,
            t.sig_lo,
            t.sig_window,
            t.sig_little,
            t.sig_lsb,
            t.sig_mask,
            t.seg_byte,
            t.seg_shift,
            t.seg_bits,
            t.seg_out,
            t.mux_values,
            t.choice_keys,
            t.max_signals,
            frame_slot,
            message_rows,
            words,
            word_lengths,
            raw,
            values,
            present,
            general,
        )
        msg_tile0 = np.zeros(n_msg + 1, np.int64)
        tile_frames = self._tile_frames
        np.cumsum((msg_frames + tile_frames - 1) // tile_frames, out=msg_tile0[1:])
        tile_samples = np.zeros(int(msg_tile0[-1]), np.int64)
        if msg_frames[t.msg_simple].any():
            k.decode_simple(
                msg_tile0,
                tile_frames,
                msg_frames,
                msg_row0,
                msg_slot0,
                t.msg_simple,
                t.msg_words,
                msg_word0,
                t.msg_sig_start,
                t.msg_sig_count,
                words,
                word_lengths,
                t.sig_need_bytes,
                t.sig_little,
                t.sig_word_lo,
                t.sig_word_hi,
                t.sig_shift,
                t.sig_mask,
                t.sig_sext,
                t.sig_scale,
                t.sig_offset,
                t.sig_parent,
                t.sig_mux_start,
                t.sig_mux_count,
                t.mux_values,
                raw,
                values,
                present,
                tile_samples,
            )
        samples = int(tile_samples.sum()) + int(general[:, 0].sum())
        inexact = int(general[:, 1].sum())
        stats = DecodeStats(
            frames=n_frames,
            decoded=decoded,
            unknown=unknown,
            skipped=n_frames - decoded - unknown,
            truncated=truncated,
            samples=samples,
        )
        result = DecodedBatch(
            frames=frames,
            frame_messages=frame_msg,
            frame_slots=frame_slot,
            message_rows=message_rows,
            message_row0=msg_row0,
            message_frames=msg_frames,
            message_slot0=msg_slot0,
            raw=raw,
            values=values,
            present=present,
            stats=stats,
            messages=self.messages,
            signals=self.signals,
            _tables=t,
        )
        self._convert_floats(result)
        if inexact:
            self._exact_integer_fixups(result)
        return result

    def _convert_floats(self, result: DecodedBatch) -> None:
        """Values of float signals from their raw IEEE bits, column by column."""
        t = self._tables
        for info in self._float_signals:
            if not result.message_frames[info.message_index]:
                continue
            raw = result._block(info, result.raw)
            values = result._block(info, result.values)
            present = result._block(info, result.present)
            bits = np.where(present, raw, 0)
            with np.errstate(all="ignore"):  # NaN and infinity are values like any other
                if info.length == 32:
                    floats = (bits & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
                    floats = floats.astype(np.float64)
                else:
                    floats = bits.view(np.float64)
                scale, offset = t.sig_scale[info.index], t.sig_offset[info.index]
                if not (scale == 1.0 and offset == 0.0):  # cantools' identity: no arithmetic
                    floats = floats * scale + offset
            values[:] = floats

    def _exact_integer_fixups(self, result: DecodedBatch) -> None:
        """Redo, with Python integers, the integer products too large for int64.

        The kernel marks them NaN, which an integer raw value never yields otherwise.
        """
        t = self._tables
        for s in self._integer_signals:
            info = self.signals[int(s)]
            if not result.message_frames[info.message_index]:
                continue
            values = result._block(info, result.values)
            suspect = np.flatnonzero(np.isnan(values) & result._block(info, result.present))
            raw = result._block(info, result.raw)
            for i in suspect:
                value = int(raw[i])
                if not t.sig_signed[s] and value < 0:
                    value += 1 << 64
                product = value * int(t.sig_iscale[s])
                if t.sig_conv[s] == CONV_INTEGER:
                    values[i] = float(product + int(t.sig_ioffset[s]))
                else:
                    values[i] = float(product) + float(t.sig_offset[s])
