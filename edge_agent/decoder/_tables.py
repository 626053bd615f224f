"""Compile a cantools ``Database`` into flat NumPy tables for the numba kernels.

This is the slow path, run once per database: every decision that depends on the DBC (which
bytes and bits a signal occupies, its conversion, its multiplexer) is made here, so the
kernels only index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cantools.database.conversion import (
    BaseConversion,
    IdentityConversion,
    LinearIntegerConversion,
)
from cantools.j1939 import pgn_from_frame_id

from .errors import UnsupportedSignalError
from .layout import segments

# Conversion kinds, mirroring cantools' choice of conversion class.
CONV_IDENTITY = 0  # value = raw
CONV_INTEGER = 1  # value = raw * int scale + int offset, exact integer arithmetic
CONV_LINEAR = 2  # value = raw * scale + offset in float64
CONV_INT_SCALE = 3  # value = float(raw * int scale) + float offset (exact product, as Python)
CONV_FLOAT = 4  # IEEE float raw: value = float * scale + offset, done by a NumPy pass

# Key of an extended (29-bit) id in the lookup tables: the id plus this bit.
EXTENDED_KEY = 1 << 32


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """What callers need to know about one compiled signal."""

    index: int
    message: str
    name: str
    unit: str | None
    is_float: bool
    is_signed: bool
    length: int
    scale: float
    offset: float
    choices: dict[int, str]
    multiplexer: str | None
    message_index: int
    slot: int  # position within its message's block of slots

    @property
    def full_name(self) -> str:
        return f"{self.message}.{self.name}"


@dataclass(frozen=True, slots=True)
class MessageInfo:
    index: int
    name: str
    frame_id: int
    is_extended: bool
    is_fd: bool
    length: int
    is_j1939: bool
    signals: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Tables:
    """The flat arrays the kernels read (see ``_kernels``)."""

    # message lookup: sorted keys and the message index for each
    keys: npt.NDArray[np.int64]
    key_msg: npt.NDArray[np.int32]
    pgn_keys: npt.NDArray[np.int64]
    pgn_msg: npt.NDArray[np.int32]
    small_ids: npt.NDArray[np.int32]  # standard ids (0-2047): message index, or -1
    # per message
    msg_length: npt.NDArray[np.int32]
    msg_sig_start: npt.NDArray[np.int32]
    msg_sig_count: npt.NDArray[np.int32]
    msg_has_mux: npt.NDArray[np.bool_]
    msg_simple: npt.NDArray[np.bool_]  # every signal on the fast path
    msg_words: npt.NDArray[np.int32]  # simple messages: 8-byte words their signals read
    # per signal, in evaluation order (multiplexers before what they select)
    sig_seg_start: npt.NDArray[np.int32]
    sig_seg_count: npt.NDArray[np.int32]
    sig_need_bytes: npt.NDArray[np.int32]
    sig_length: npt.NDArray[np.int32]
    sig_signed: npt.NDArray[np.bool_]
    sig_float_bits: npt.NDArray[np.int32]
    sig_conv: npt.NDArray[np.int8]
    sig_scale: npt.NDArray[np.float64]
    sig_offset: npt.NDArray[np.float64]
    sig_iscale: npt.NDArray[np.int64]
    sig_ioffset: npt.NDArray[np.int64]
    sig_parent: npt.NDArray[np.int32]  # local index within the message, -1 for none
    sig_mux_start: npt.NDArray[np.int32]
    sig_mux_count: npt.NDArray[np.int32]
    sig_choice_start: npt.NDArray[np.int32]
    sig_choice_count: npt.NDArray[np.int32]
    sig_is_mux: npt.NDArray[np.bool_]
    sig_lo: npt.NDArray[np.int32]  # first byte the signal touches
    sig_window: npt.NDArray[np.bool_]  # its bytes fit one 8-byte window
    sig_little: npt.NDArray[np.bool_]
    sig_lsb: npt.NDArray[np.int32]  # Intel bit number (little) / network bit number (big)
    sig_mask: npt.NDArray[np.uint64]
    # the fast path reads a signal from two adjacent 8-byte words of the payload (loaded
    # little endian for Intel signals, big endian for Motorola ones) as from one 128-bit
    # number: raw = ((lo >> shift) | (hi << (64 - shift))) & mask
    sig_word_lo: npt.NDArray[np.int32]  # the word holding the signal's least significant bit
    sig_word_hi: npt.NDArray[np.int32]  # the next more significant word (or lo again)
    sig_shift: npt.NDArray[np.int32]
    sig_sext: npt.NDArray[np.int32]  # 64 - length for signed signals, else 0
    # segments (signals that do not fit a window): one per byte a signal touches
    seg_byte: npt.NDArray[np.int32]
    seg_shift: npt.NDArray[np.int32]
    seg_bits: npt.NDArray[np.int32]
    seg_out: npt.NDArray[np.int32]
    mux_values: npt.NDArray[np.int64]
    choice_keys: npt.NDArray[np.int64]
    max_signals: int


def _conversion(signal: Any) -> tuple[int, float, float, int, int]:
    """The conversion kind cantools uses for ``signal`` and its parameters."""
    scale, offset = signal.scale, signal.offset
    if signal.is_float:
        identity = scale == 1 and offset == 0
        return (
            CONV_FLOAT,
            1.0 if identity else float(scale),
            0.0 if identity else float(offset),
            0,
            0,
        )
    inner = BaseConversion.factory(
        scale=scale, offset=offset, choices=None, is_float=signal.is_float
    )
    if isinstance(inner, IdentityConversion):
        return CONV_IDENTITY, 1.0, 0.0, 1, 0
    if isinstance(inner, LinearIntegerConversion):
        return CONV_INTEGER, float(scale), float(offset), int(scale), int(offset)
    if isinstance(scale, int) and not signal.is_float:
        # Python multiplies an int raw by an int scale exactly before adding the offset.
        return CONV_INT_SCALE, float(scale), float(offset), scale, 0
    return CONV_LINEAR, float(scale), float(offset), 0, 0


def _float_exact(signal: Any) -> bool:
    """Whether raw * scale + offset in float64 gives exactly cantools' value.

    True for cantools' float-scale conversion always (it computes in floats too), and for its
    integer ones when the product and the offset are exact in a double.
    """
    if signal.length >= 64 or (not signal.is_signed and signal.length > 62):
        return False
    kind = _conversion(signal)[0]
    if kind in (CONV_IDENTITY, CONV_LINEAR):
        return True
    exact = 2.0**53
    return bool(2.0**signal.length * abs(signal.scale) < exact and abs(signal.offset) < exact)


def _evaluation_order(signals: list[Any]) -> list[Any]:
    """Signals ordered so that each multiplexer comes before the signals it selects."""
    by_name = {s.name: s for s in signals}

    def depth(signal: Any) -> int:
        d, seen = 0, set()
        while signal.multiplexer_signal is not None and signal.name not in seen:
            seen.add(signal.name)
            parent = by_name.get(signal.multiplexer_signal)
            if parent is None:
                break
            signal, d = parent, d + 1
        return d

    return sorted(signals, key=depth)  # stable: DBC order within one depth


def compile_database(db: Any) -> tuple[Tables, list[MessageInfo], list[SignalInfo]]:
    """Compile every message of ``db`` (a cantools ``Database``)."""
    messages: list[MessageInfo] = []
    infos: list[SignalInfo] = []
    sig: dict[str, list[Any]] = {
        k: []
        for k in (
            "seg_start",
            "seg_count",
            "need",
            "length",
            "signed",
            "float_bits",
            "conv",
            "scale",
            "offset",
            "iscale",
            "ioffset",
            "parent",
            "mux_start",
            "mux_count",
            "choice_start",
            "choice_count",
            "is_mux",
            "lo",
            "window",
            "little",
            "lsb",
            "mask",
            "word_lo",
            "shift",
            "sext",
            "fast",
        )
    }
    seg: dict[str, list[int]] = {"byte": [], "shift": [], "bits": [], "out": []}
    mux_values: list[int] = []
    choice_keys: list[int] = []
    keys: dict[int, int] = {}
    pgn_keys: dict[int, int] = {}
    msg_length, msg_sig_start, msg_sig_count, msg_has_mux, msg_simple = [], [], [], [], []
    msg_words: list[int] = []
    word_hi: list[int] = []

    for m_index, message in enumerate(db.messages):
        ordered = _evaluation_order(list(message.signals))
        local = {s.name: i for i, s in enumerate(ordered)}
        first = len(infos)
        for signal in ordered:
            full = f"{message.name}.{signal.name}"
            if signal.length > 64 or signal.length < 1:
                raise UnsupportedSignalError(f"signal {full} has {signal.length} bits (1-64)")
            if signal.is_float and signal.length not in (32, 64):
                raise UnsupportedSignalError(f"float signal {full} has {signal.length} bits")
            runs = segments(signal.start, signal.length, signal.byte_order == "little_endian")
            sig["seg_start"].append(len(seg["byte"]))
            sig["seg_count"].append(len(runs))
            for byte, shift, bits, out in runs:
                seg["byte"].append(byte)
                seg["shift"].append(shift)
                seg["bits"].append(bits)
                seg["out"].append(out)
            sig["need"].append(max(r[0] for r in runs) + 1)
            little = signal.byte_order == "little_endian"
            lo = min(r[0] for r in runs)
            sig["lo"].append(lo)
            sig["window"].append(max(r[0] for r in runs) - lo <= 7)
            sig["little"].append(little)
            # LSB position: Intel bit number (little endian) or network bit number (big).
            msb_seq = 8 * (signal.start // 8) + (7 - signal.start % 8)
            sig["lsb"].append(signal.start if little else msb_seq + signal.length - 1)
            sig["mask"].append((1 << signal.length) - 1)
            lsb = sig["lsb"][-1]
            # Intel: bit lsb of the little-endian number; Motorola: network bit lsb, bit
            # 63 - lsb % 64 of its word loaded big endian.
            sig["word_lo"].append(lsb // 64)
            sig["shift"].append(lsb % 64 if little else 63 - lsb % 64)
            sig["sext"].append(64 - signal.length if signal.is_signed else 0)
            # floats: the raw bits here, the value from the NumPy pass
            sig["fast"].append(bool(signal.is_float) or _float_exact(signal))
            sig["length"].append(signal.length)
            sig["signed"].append(bool(signal.is_signed))
            sig["float_bits"].append(signal.length if signal.is_float else 0)
            conv, scale, offset, iscale, ioffset = _conversion(signal)
            sig["conv"].append(conv)
            sig["scale"].append(scale)
            sig["offset"].append(offset)
            sig["iscale"].append(iscale)
            sig["ioffset"].append(ioffset)
            parent = signal.multiplexer_signal
            sig["parent"].append(local.get(parent, -1))
            ids = list(signal.multiplexer_ids or []) if parent in local else []
            sig["mux_start"].append(len(mux_values))
            sig["mux_count"].append(len(ids))
            mux_values.extend(int(v) for v in ids)
            choices = {int(k): str(v) for k, v in (signal.choices or {}).items()}
            sig["choice_start"].append(len(choice_keys))
            sig["choice_count"].append(len(choices) if signal.is_multiplexer else 0)
            sig["is_mux"].append(bool(signal.is_multiplexer))
            if signal.is_multiplexer:
                choice_keys.extend(choices)
            infos.append(
                SignalInfo(
                    index=len(infos),
                    message=message.name,
                    name=signal.name,
                    unit=signal.unit,
                    is_float=bool(signal.is_float),
                    is_signed=bool(signal.is_signed),
                    length=signal.length,
                    scale=float(signal.scale),
                    offset=float(signal.offset),
                    choices=choices,
                    multiplexer=parent,
                    message_index=m_index,
                    slot=len(infos) - first,
                )
            )
        is_j1939 = message.protocol == "j1939"
        key = message.frame_id + (EXTENDED_KEY if message.is_extended_frame else 0)
        keys.setdefault(key, m_index)
        if is_j1939 and message.is_extended_frame:
            pgn = int(pgn_from_frame_id(message.frame_id))  # type: ignore[no-untyped-call]
            pgn_keys.setdefault(pgn, m_index)
        msg_length.append(message.length)
        msg_sig_start.append(first)
        msg_sig_count.append(len(ordered))
        msg_has_mux.append(any(s.multiplexer_signal in local for s in ordered))
        # Multiplexers on the fast path select by their raw value: no conversion, no float.
        plain_muxes = all(
            sig["conv"][i] == CONV_IDENTITY and not sig["float_bits"][i]
            for i in range(first, len(infos))
            if sig["is_mux"][i]
        )
        msg_simple.append(plain_muxes and all(sig["fast"][first:]))
        words = (max(sig["need"][first:], default=1) + 7) // 8 if msg_simple[-1] else 0
        msg_words.append(words)
        for s_index in range(first, len(infos)):
            lo = sig["word_lo"][s_index]
            word_hi.append(
                min(lo + 1, max(words - 1, 0)) if sig["little"][s_index] else max(lo - 1, 0)
            )
        messages.append(
            MessageInfo(
                index=m_index,
                name=message.name,
                frame_id=message.frame_id,
                is_extended=bool(message.is_extended_frame),
                is_fd=bool(message.is_fd),
                length=message.length,
                is_j1939=is_j1939,
                signals=tuple(range(first, len(infos))),
            )
        )

    def arr(values: list[Any], dtype: Any) -> Any:
        return np.asarray(values, dtype=dtype)

    key_list = sorted(keys)
    pgn_list = sorted(pgn_keys)
    small_ids = np.full(2048, -1, np.int32)
    for key in key_list:
        if key < 2048:
            small_ids[key] = keys[key]
    tables = Tables(
        keys=arr(key_list, np.int64),
        key_msg=arr([keys[k] for k in key_list], np.int32),
        pgn_keys=arr(pgn_list, np.int64),
        pgn_msg=arr([pgn_keys[k] for k in pgn_list], np.int32),
        small_ids=small_ids,
        msg_length=arr(msg_length, np.int32),
        msg_sig_start=arr(msg_sig_start, np.int32),
        msg_sig_count=arr(msg_sig_count, np.int32),
        msg_has_mux=arr(msg_has_mux, np.bool_),
        msg_simple=arr(msg_simple, np.bool_),
        msg_words=arr(msg_words, np.int32),
        sig_seg_start=arr(sig["seg_start"], np.int32),
        sig_seg_count=arr(sig["seg_count"], np.int32),
        sig_need_bytes=arr(sig["need"], np.int32),
        sig_length=arr(sig["length"], np.int32),
        sig_signed=arr(sig["signed"], np.bool_),
        sig_float_bits=arr(sig["float_bits"], np.int32),
        sig_conv=arr(sig["conv"], np.int8),
        sig_scale=arr(sig["scale"], np.float64),
        sig_offset=arr(sig["offset"], np.float64),
        sig_iscale=arr(sig["iscale"], np.int64),
        sig_ioffset=arr(sig["ioffset"], np.int64),
        sig_parent=arr(sig["parent"], np.int32),
        sig_mux_start=arr(sig["mux_start"], np.int32),
        sig_mux_count=arr(sig["mux_count"], np.int32),
        sig_choice_start=arr(sig["choice_start"], np.int32),
        sig_choice_count=arr(sig["choice_count"], np.int32),
        sig_is_mux=arr(sig["is_mux"], np.bool_),
        sig_lo=arr(sig["lo"], np.int32),
        sig_window=arr(sig["window"], np.bool_),
        sig_little=arr(sig["little"], np.bool_),
        sig_lsb=arr(sig["lsb"], np.int32),
        sig_mask=arr(sig["mask"], np.uint64),
        sig_word_lo=arr(sig["word_lo"], np.int32),
        sig_word_hi=arr(word_hi, np.int32),
        sig_shift=arr(sig["shift"], np.int32),
        sig_sext=arr(sig["sext"], np.int32),
        seg_byte=arr(seg["byte"], np.int32),
        seg_shift=arr(seg["shift"], np.int32),
        seg_bits=arr(seg["bits"], np.int32),
        seg_out=arr(seg["out"], np.int32),
        mux_values=arr(mux_values, np.int64),
        choice_keys=arr(choice_keys, np.int64),
        max_signals=max(msg_sig_count, default=0),
    )
    return tables, messages, infos
