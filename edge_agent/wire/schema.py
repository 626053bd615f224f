"""The wire schema: a catalogue's VSS signals numbered for the wire, and their conversions.

The edge and the cloud build the same schema from the same catalogue, so a signal travels as
a small number and a raw integer; its VSS path, unit, scaling and value table come from here.
Signals are numbered 0 to n-1 by VSS path in code-point order, the order of the catalogue id's
canonical document (docs/signal-map.md), so the catalogue id fixes the numbering too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from .errors import UnknownSignalError, WireError

if TYPE_CHECKING:
    from dbc import Catalogue, SignalMapping

__all__ = ["SignalKind", "SignalSpec", "WireSchema"]

SignalKind: TypeAlias = Literal["int", "float32", "float64"]

_CATALOGUE_ID = re.compile(r"[0-9a-f]{16}")
_EXACT = 2.0**53  # integers up to this magnitude are exact in a float64


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One signal as the wire knows it.

    ``kind`` is ``"int"`` for an integer signal (the raw value is the integer) and
    ``"float32"``/``"float64"`` for an IEEE signal (``SIG_VALTYPE_``; the raw value is the bit
    pattern). ``length``, ``is_signed``, ``scale`` and ``offset`` are the DBC's; ``vss_scale``
    and ``vss_offset`` the signal map's transform; ``unit`` the unit of the VSS value;
    ``choices`` the DBC value table (empty if none).
    """

    number: int
    vss: str
    message: str
    signal: str
    kind: SignalKind
    is_signed: bool
    length: int
    scale: float
    offset: float
    vss_scale: float
    vss_offset: float
    unit: str | None
    choices: Mapping[int, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", MappingProxyType(dict(self.choices)))

    @property
    def raw_min(self) -> int:
        """The smallest raw value (as the decoder gives it: int64, unsigned 64 bits wrap)."""
        if self.is_signed or self.length == 64:
            return -(1 << (self.length - 1))
        return 0

    @property
    def raw_max(self) -> int:
        """The largest raw value (as the decoder gives it: int64, unsigned 64 bits wrap)."""
        if self.is_signed or self.length == 64:
            return (1 << (self.length - 1)) - 1
        return (1 << self.length) - 1


class WireSchema:
    """The numbered signals of one catalogue (see the module docstring).

    Build it with `from_catalogue`; the constructor takes the specs directly (numbered 0 to
    n-1 in order) for tests and tools.
    """

    __slots__ = ("_by_vss", "catalogue_id", "signals")

    def __init__(self, catalogue_id: str, signals: Iterable[SignalSpec]) -> None:
        if not isinstance(catalogue_id, str) or not _CATALOGUE_ID.fullmatch(catalogue_id):
            raise WireError(f"a catalogue id is 16 lower-case hex digits, not {catalogue_id!r}")
        self.catalogue_id = catalogue_id
        self.signals: tuple[SignalSpec, ...] = tuple(signals)
        self._by_vss: dict[str, SignalSpec] = {}
        for number, spec in enumerate(self.signals):
            _check_spec(spec, number)
            if spec.vss in self._by_vss:
                raise WireError(f"VSS path {spec.vss!r} appears twice")
            self._by_vss[spec.vss] = spec

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> WireSchema:
        """The schema of a catalogue's mapped signals."""
        database = catalogue.database
        specs = []
        for number, vss in enumerate(sorted(catalogue.mappings)):
            mapping = catalogue.mappings[vss]
            signal = database.get_message_by_name(mapping.message).get_signal_by_name(
                mapping.signal
            )
            specs.append(_spec(number, mapping, signal))
        return cls(catalogue.catalogue_id, specs)

    def __repr__(self) -> str:
        return f"WireSchema({self.catalogue_id}, {len(self.signals)} signals)"

    def spec(self, vss: str) -> SignalSpec:
        """A signal by VSS path. Raises `UnknownSignalError` (a KeyError) naming the path."""
        try:
            return self._by_vss[vss]
        except KeyError:
            raise UnknownSignalError(
                f"no signal {vss!r} in the schema of catalogue {self.catalogue_id}"
            ) from None

    def signal(self, number: int) -> SignalSpec:
        """A signal by number. Raises `UnknownSignalError` (a KeyError) naming the number."""
        if isinstance(number, int | np.integer) and 0 <= number < len(self.signals):
            return self.signals[number]
        raise UnknownSignalError(
            f"no signal number {number} in the schema of catalogue {self.catalogue_id} "
            f"({len(self.signals)} signals)"
        )

    def physical(self, number: int, raw: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """VSS values of raw values: DBC scale and offset, then the map's transform.

        Equal, bit for bit, to the decoder's values followed by the map's transform. Float
        signals reinterpret the raw bit pattern; integer signals whose products exceed 2**53
        are computed with exact integer arithmetic where the DBC's factor is a whole number,
        as the decoder does.
        """
        spec = self.signal(number)
        array = np.asarray(raw, dtype=np.int64)
        with np.errstate(all="ignore"):  # NaN and infinity are values like any other
            if spec.kind == "int":
                values = _integer_physical(spec, array)
            else:
                if spec.kind == "float32":
                    bits = (array & 0xFFFFFFFF).astype(np.uint32)
                    values = bits.view(np.float32).astype(np.float64)
                else:
                    values = array.view(np.float64).copy()
                if not (spec.scale == 1.0 and spec.offset == 0.0):
                    values = values * spec.scale + spec.offset
            if spec.vss_scale != 1.0 or spec.vss_offset != 0.0:
                values = values * spec.vss_scale + spec.vss_offset
        return values

    def label(self, number: int, raw: int) -> str | None:
        """The value-table name of a raw value, if the signal has one for it."""
        spec = self.signal(number)
        key = int(raw)
        if key < 0 and not spec.is_signed:
            key += 1 << 64
        return spec.choices.get(key)


def _spec(number: int, mapping: SignalMapping, signal: Any) -> SignalSpec:
    """The spec of a mapped signal; ``signal`` is its cantools ``Signal``."""
    kind: SignalKind = "int"
    if signal.is_float:
        if signal.length not in (32, 64):
            name = f"{mapping.message}.{mapping.signal}"
            raise WireError(f"float signal {name} has {signal.length} bits (32 or 64)")
        kind = "float32" if signal.length == 32 else "float64"
    return SignalSpec(
        number=number,
        vss=mapping.vss,
        message=mapping.message,
        signal=mapping.signal,
        kind=kind,
        is_signed=bool(signal.is_signed),
        length=int(signal.length),
        scale=float(signal.scale),
        offset=float(signal.offset),
        vss_scale=float(mapping.scale),
        vss_offset=float(mapping.offset),
        unit=mapping.unit,
        choices={int(k): str(v) for k, v in (signal.choices or {}).items()},
    )


def _check_spec(spec: SignalSpec, number: int) -> None:
    where = f"signal {number} ({spec.vss})"
    if spec.number != number:
        raise WireError(f"{where} has number {spec.number}; signals are numbered 0 to n-1")
    if spec.kind == "int":
        if not 1 <= spec.length <= 64:
            raise WireError(f"{where} has {spec.length} bits (1 to 64)")
    elif spec.kind in ("float32", "float64"):
        if spec.length != (32 if spec.kind == "float32" else 64):
            raise WireError(f"{where} is a {spec.kind} of {spec.length} bits")
    else:
        raise WireError(f"{where} has kind {spec.kind!r} (int, float32 or float64)")
    numbers = (spec.scale, spec.offset, spec.vss_scale, spec.vss_offset)
    if not all(math.isfinite(x) for x in numbers) or spec.vss_scale == 0.0:
        raise WireError(f"{where}: scales and offsets are finite, the VSS scale is not 0")


def _integer_physical(spec: SignalSpec, raw: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """DBC conversion of integer raw values, as cantools computes it (see `physical`)."""
    unsigned64 = not spec.is_signed and spec.length == 64
    values = raw.view(np.uint64).astype(np.float64) if unsigned64 else raw.astype(np.float64)
    scale, offset = spec.scale, spec.offset
    if scale == 1.0 and offset == 0.0:
        return values
    exact = 2.0**spec.length * abs(scale) < _EXACT and abs(offset) < _EXACT
    if not scale.is_integer() or exact:
        out: npt.NDArray[np.float64] = values * scale + offset
        return out
    # A whole factor on wide values: Python integers, as cantools multiplies them.
    iscale, whole_offset = int(scale), offset.is_integer()
    result = np.empty(len(raw), np.float64)
    for i, r in enumerate(raw.tolist()):
        if unsigned64 and r < 0:
            r += 1 << 64
        product = r * iscale
        try:
            if whole_offset:
                result[i] = float(product + int(offset))
            else:
                result[i] = float(product) + offset
        except OverflowError:
            result[i] = math.copysign(math.inf, product)
    return result
