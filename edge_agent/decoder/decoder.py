"""The decoder's public objects: :class:`BatchDecoder` and its results."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..frames import FrameBatch
from . import _kernels
from ._tables import CONV_INT_SCALE, CONV_INTEGER, MessageInfo, SignalInfo, compile_database
from .errors import DecoderError

log = logging.getLogger(__name__)


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
class DecodedBatch:
    """Decoded samples in long form: one entry per (frame, signal), in frame order.

    ``raw`` holds the raw integer (sign-extended for signed signals; the IEEE bit pattern for
    float signals; an unsigned 64-bit value above 2**63-1 wraps negative), ``values`` the
    physical value (raw * scale + offset, value tables not applied).
    """

    rows: npt.NDArray[np.int64]
    signals: npt.NDArray[np.int32]
    raw: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    timestamps: npt.NDArray[np.float64]  # of each entry's frame
    frame_ids: npt.NDArray[np.uint32]  # of each entry's frame
    frame_messages: npt.NDArray[np.int32]  # per input frame: message index, -1 unknown, -2 skipped
    stats: DecodeStats
    signal_infos: tuple[SignalInfo, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def signal(self, full_name: str) -> SignalColumn:
        """The samples of one signal by ``Message.Signal`` name."""
        for info in self.signal_infos:
            if info.full_name == full_name:
                return self._column(info)
        raise KeyError(full_name)

    def columns(self) -> dict[str, SignalColumn]:
        """Every signal that has samples, by ``Message.Signal`` name."""
        order = np.argsort(self.signals, kind="stable")
        sorted_signals = self.signals[order]
        present, starts = np.unique(sorted_signals, return_index=True)
        ends = [*starts[1:], len(order)] if len(order) else []
        out = {}
        for s, start, end in zip(present, starts, ends, strict=True):
            take = order[start:end]
            info = self.signal_infos[int(s)]
            out[info.full_name] = SignalColumn(
                info, self.rows[take], self.timestamps[take], self.raw[take], self.values[take]
            )
        return out

    def _column(self, info: SignalInfo) -> SignalColumn:
        take = np.flatnonzero(self.signals == info.index)
        return SignalColumn(
            info, self.rows[take], self.timestamps[take], self.raw[take], self.values[take]
        )


class BatchDecoder:
    """A cantools ``Database`` compiled for batch decoding; reusable and thread-safe."""

    def __init__(self, database: Any) -> None:
        self.database = database
        self._tables, messages, signals = compile_database(database)
        self.messages: tuple[MessageInfo, ...] = tuple(messages)
        self.signals: tuple[SignalInfo, ...] = tuple(signals)
        self._by_name = {info.full_name: info for info in self.signals}
        log.debug("compiled %d messages, %d signals", len(messages), len(signals))

    def signal_info(self, full_name: str) -> SignalInfo:
        """A signal by ``Message.Signal`` name."""
        try:
            return self._by_name[full_name]
        except KeyError:
            raise DecoderError(f"no signal {full_name!r} in the database") from None

    def decode(self, frames: FrameBatch) -> DecodedBatch:
        """Decode every data frame of ``frames`` whose id the database knows."""
        t = self._tables
        n_frames = len(frames)
        frame_msg = np.empty(n_frames, np.int32)
        bound = _kernels.lookup(
            frames.ids,
            frames.flags,
            t.keys,
            t.key_msg,
            t.pgn_keys,
            t.pgn_msg,
            t.msg_sig_count,
            frame_msg,
        )
        out_row = np.empty(bound, np.int64)
        out_sig = np.empty(bound, np.int32)
        out_raw = np.empty(bound, np.int64)
        out_value = np.empty(bound, np.float64)
        data = frames.data
        if n_frames and int(frames.lengths.max()) > data.shape[1]:
            raise DecoderError(
                f"a frame length ({int(frames.lengths.max())}) exceeds the batch's data width "
                f"({data.shape[1]})"
            )
        count, decoded, truncated = _kernels.decode(
            frame_msg,
            frames.lengths,
            data,
            t.msg_length,
            t.msg_sig_start,
            t.msg_sig_count,
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
            t.seg_byte,
            t.seg_shift,
            t.seg_bits,
            t.seg_out,
            t.mux_values,
            t.choice_keys,
            t.max_signals,
            out_row,
            out_sig,
            out_raw,
            out_value,
        )
        rows, sigs = out_row[:count], out_sig[:count]
        raw, values = out_raw[:count], out_value[:count]
        self._exact_integer_fixups(sigs, raw, values)
        unknown = int(np.count_nonzero(frame_msg == _kernels.UNKNOWN))
        skipped = int(np.count_nonzero(frame_msg == _kernels.SKIPPED))
        stats = DecodeStats(
            frames=n_frames,
            decoded=int(decoded),
            unknown=unknown,
            skipped=skipped,
            truncated=int(truncated),
            samples=int(count),
        )
        return DecodedBatch(
            rows=rows,
            signals=sigs,
            raw=raw,
            values=values,
            timestamps=frames.timestamps[rows],
            frame_ids=frames.ids[rows],
            frame_messages=frame_msg,
            stats=stats,
            signal_infos=self.signals,
        )

    def _exact_integer_fixups(
        self,
        sigs: npt.NDArray[np.int32],
        raw: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Redo, with Python integers, the integer products too large for int64.

        The kernels mark them NaN, which an integer raw value never yields otherwise.
        """
        t = self._tables
        conv = t.sig_conv[sigs]
        suspect = np.flatnonzero(
            np.isnan(values) & ((conv == CONV_INTEGER) | (conv == CONV_INT_SCALE))
        )
        for i in suspect:
            s = int(sigs[i])
            value = int(raw[i])
            if not t.sig_signed[s] and value < 0:
                value += 1 << 64
            product = value * int(t.sig_iscale[s])
            if t.sig_conv[s] == CONV_INTEGER:
                values[i] = float(product + int(t.sig_ioffset[s]))
            else:
                values[i] = float(product) + float(t.sig_offset[s])
