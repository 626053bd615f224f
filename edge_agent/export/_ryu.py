"""Shortest round-trip formatting of float64 values in numba, as Python's ``repr`` does.

The digits come from Ryu (Ulf Adams, "Ryū: fast float-to-string conversion", PLDI 2018): the
shortest decimal that reads back as the same double, the closest one when several are that
short.  The layout follows CPython's ``float.__repr__``: positional for decimal exponents
from -4 to 15 (``12.0``, ``0.0001``), scientific otherwise (``1e+16``, ``1.5e-05``), and
``nan``, ``inf``, ``-inf``.

The 128-bit multiplier tables are computed exactly with Python integers when this module
is imported and compiled into the kernels as constants; the kernels emulate 64x64->128-bit
products with 32-bit halves.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}

_POW5_INV_BITCOUNT = 125
_POW5_BITCOUNT = 125
_MASK64 = (1 << 64) - 1
_FAST_DECIMALS = 7


def _tables() -> tuple[Any, Any, Any, Any]:
    inv_lo, inv_hi, pow_lo, pow_hi = [], [], [], []
    for i in range(342):
        pow5 = 5**i
        length = pow5.bit_length()
        inv = ((1 << (length - 1 + _POW5_INV_BITCOUNT)) // pow5) + 1
        inv_lo.append(inv & _MASK64)
        inv_hi.append(inv >> 64)
    for i in range(326):
        pow5 = 5**i
        length = pow5.bit_length()
        shifted = (
            pow5 >> (length - _POW5_BITCOUNT)
            if length >= _POW5_BITCOUNT
            else (pow5 << (_POW5_BITCOUNT - length))
        )
        pow_lo.append(shifted & _MASK64)
        pow_hi.append(shifted >> 64)
    return tuple(np.array(v, dtype=np.uint64) for v in (inv_lo, inv_hi, pow_lo, pow_hi))  # type: ignore[return-value]


POW5_INV_LO, POW5_INV_HI, POW5_LO, POW5_HI = _tables()

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@numba.njit(**_JIT)
def _umul128(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    b00 = a_lo * b_lo
    b01 = a_lo * b_hi
    b10 = a_hi * b_lo
    b11 = a_hi * b_hi
    mid1 = b10 + (b00 >> _S32)
    mid2 = b01 + (mid1 & _M32)
    hi = b11 + (mid1 >> _S32) + (mid2 >> _S32)
    lo = ((mid2 & _M32) << _S32) | (b00 & _M32)
    return lo, hi


@numba.njit(**_JIT)
def _mul_shift64(m: np.uint64, mul_lo: np.uint64, mul_hi: np.uint64, j: int) -> np.uint64:
    """(m * mul) >> j for a 128-bit ``mul`` and 64 < j < 128."""
    low1, high1 = _umul128(m, mul_hi)
    _, high0 = _umul128(m, mul_lo)
    total = high0 + low1
    if total < high0:
        high1 += np.uint64(1)
    dist = np.uint64(j - 64)
    return (high1 << (np.uint64(64) - dist)) | (total >> dist)


@numba.njit(**_JIT)
def _pow5bits(e: int) -> int:
    return ((e * 1217359) >> 19) + 1


@numba.njit(**_JIT)
def _pow5_factor(value: np.uint64) -> int:
    count = 0
    while value > 0 and value % np.uint64(5) == 0:
        value //= np.uint64(5)
        count += 1
    return count


@numba.njit(**_JIT)
def shortest(bits: np.uint64) -> tuple[np.uint64, int]:
    """Ryu's d2d for a finite, non-zero double's bits (sign ignored): (digits, exponent)."""
    mantissa = bits & np.uint64((1 << 52) - 1)
    exponent = int((bits >> np.uint64(52)) & np.uint64(0x7FF))
    if exponent == 0:
        e2 = 1 - 1023 - 52 - 2
        m2 = mantissa
    else:
        e2 = exponent - 1023 - 52 - 2
        m2 = (np.uint64(1) << np.uint64(52)) | mantissa
    accept_bounds = (m2 & np.uint64(1)) == 0
    mv = np.uint64(4) * m2
    mm_shift = np.uint64(1) if (mantissa != 0 or exponent <= 1) else np.uint64(0)
    vm_trailing = False
    vr_trailing = False
    if e2 >= 0:
        q = ((e2 * 78913) >> 18) - (1 if e2 > 3 else 0)
        e10 = q
        k = _POW5_INV_BITCOUNT + _pow5bits(q) - 1
        i = -e2 + q + k
        vr = _mul_shift64(np.uint64(4) * m2, POW5_INV_LO[q], POW5_INV_HI[q], i)
        vp = _mul_shift64(np.uint64(4) * m2 + np.uint64(2), POW5_INV_LO[q], POW5_INV_HI[q], i)
        vm = _mul_shift64(
            np.uint64(4) * m2 - np.uint64(1) - mm_shift, POW5_INV_LO[q], POW5_INV_HI[q], i
        )
        if q <= 21:
            if mv % np.uint64(5) == 0:
                vr_trailing = _pow5_factor(mv) >= q
            elif accept_bounds:
                vm_trailing = _pow5_factor(mv - np.uint64(1) - mm_shift) >= q
            else:
                vp -= np.uint64(1) if _pow5_factor(mv + np.uint64(2)) >= q else np.uint64(0)
    else:
        q = ((-e2 * 732923) >> 20) - (1 if -e2 > 1 else 0)
        e10 = q + e2
        i = -e2 - q
        k = _pow5bits(i) - _POW5_BITCOUNT
        j = q - k
        vr = _mul_shift64(np.uint64(4) * m2, POW5_LO[i], POW5_HI[i], j)
        vp = _mul_shift64(np.uint64(4) * m2 + np.uint64(2), POW5_LO[i], POW5_HI[i], j)
        vm = _mul_shift64(np.uint64(4) * m2 - np.uint64(1) - mm_shift, POW5_LO[i], POW5_HI[i], j)
        if q <= 1:
            vr_trailing = True
            if accept_bounds:
                vm_trailing = mm_shift == np.uint64(1)
            else:
                vp -= np.uint64(1)
        elif q < 63:
            vr_trailing = (mv & ((np.uint64(1) << np.uint64(q)) - np.uint64(1))) == 0
    removed = 0
    last_removed = np.uint64(0)
    ten = np.uint64(10)
    if vm_trailing or vr_trailing:
        while vp // ten > vm // ten:
            vm_trailing = vm_trailing and vm % ten == 0
            vr_trailing = vr_trailing and last_removed == 0
            last_removed = vr % ten
            vr //= ten
            vp //= ten
            vm //= ten
            removed += 1
        if vm_trailing:
            while vm % ten == 0:
                vr_trailing = vr_trailing and last_removed == 0
                last_removed = vr % ten
                vr //= ten
                vp //= ten
                vm //= ten
                removed += 1
        if vr_trailing and last_removed == 5 and vr % np.uint64(2) == 0:
            last_removed = np.uint64(4)
        up = (vr == vm and (not accept_bounds or not vm_trailing)) or last_removed >= 5
        output = vr + (np.uint64(1) if up else np.uint64(0))
    else:
        round_up = False
        while vp // ten > vm // ten:
            round_up = vr % ten >= 5
            vr //= ten
            vp //= ten
            vm //= ten
            removed += 1
        output = vr + (np.uint64(1) if (vr == vm or round_up) else np.uint64(0))
    return output, e10 + removed


_POW10 = np.array([10.0**p for p in range(_FAST_DECIMALS + 1)])


@numba.njit(**_JIT)
def _few_decimals(value: float) -> tuple[np.uint64, int]:
    """(digits, exponent) when ``value`` (> 0) is exactly the double nearest to a decimal
    with at most _FAST_DECIMALS fraction digits; (0, 0) when not.

    Take the most fraction digits P (up to _FAST_DECIMALS) that keep value * 10**P below
    2**51.  There one decimal step 10**-P is wider than the interval of decimals that read
    back as ``value``, so at most one m / 10**P can: the integer m nearest value * 10**P,
    and a correctly rounded division decides whether it does.  If it does, every shorter
    decimal that reads back is m with trailing zeros removed, so those give the shortest
    digits.  Scaled CAN values (0.01 km/h, 0.1 kPa) and log timestamps (microseconds) take
    this path in one try; the rest go on to Ryu's.
    """
    p = _FAST_DECIMALS
    scaled = value * _POW10[p]
    while scaled >= 2.0**51:
        if p == 0:
            return np.uint64(0), 0
        p -= 1
        scaled = value * _POW10[p]
    m = np.rint(scaled)
    if m == 0.0 or abs(scaled - m) > scaled * 1e-15 or m / _POW10[p] != value:
        return np.uint64(0), 0
    digits = np.uint64(m)
    exponent = -p
    while digits % np.uint64(10) == 0:
        digits //= np.uint64(10)
        exponent += 1
    return digits, exponent


_MICROS_LIMIT = 2.0**51 / 1e6


@numba.njit(**_JIT)
def split_micros(value: float) -> tuple[np.int64, np.uint64]:
    """(whole seconds, microseconds) when ``value`` is at least 1 and exactly the double
    nearest to a decimal with at most six fraction digits, as log timestamps are; (-1, 0)
    when not.  ``repr`` then writes the whole seconds, ``.`` and the microseconds without
    their trailing zeros (``_few_decimals`` explains why)."""
    if not 1.0 <= value < _MICROS_LIMIT:
        return np.int64(-1), np.uint64(0)
    scaled = value * 1e6
    m = np.rint(scaled)
    if abs(scaled - m) > scaled * 1e-15 or m / 1e6 != value:
        return np.int64(-1), np.uint64(0)
    micros = np.uint64(m)
    return np.int64(micros // np.uint64(1_000_000)), micros % np.uint64(1_000_000)


@numba.njit(**_JIT)
def write_fraction(fraction: np.uint64, places: int, out: Any, at: int) -> int:
    """Write the digits after the point of ``fraction / 10**places`` (``fraction`` below
    ``10**places``) at ``out[at:]``, without trailing zeros (``0`` for none); return the new
    end."""
    if fraction == 0:
        out[at] = 48
        return at + 1
    n = places
    while fraction % np.uint64(10) == 0:
        fraction //= np.uint64(10)
        n -= 1
    for i in range(n - 1, -1, -1):
        out[at + i] = np.uint8(48 + fraction % np.uint64(10))
        fraction //= np.uint64(10)
    return at + n


_POW10_INT = np.array([10**p for p in range(_FAST_DECIMALS + 1)], np.uint64)


@numba.njit(**_JIT)
def write_decimal(number: np.int64, places: int, value: float, out: Any, at: int) -> int:
    """Write ``repr(value)`` at ``out[at:]`` when ``value`` is exactly the double nearest to
    ``number / 10**places`` (``places`` up to _FAST_DECIMALS) and ``repr`` writes it
    positionally; return the new end, or -1 (nothing written) when not.

    A signal's scale and offset in decimal give ``number`` from its raw value with integer
    arithmetic, so its value is written without searching for its digits: the same
    uniqueness as in ``_few_decimals`` makes ``number`` without trailing zeros the
    shortest digits.
    """
    if number == 0 or not -(2**51) < number < 2**51 or number / _POW10[places] != value:
        return -1
    if abs(value) < 1e-4:
        return -1
    if number < 0:
        out[at] = 45  # '-'
        at += 1
        number = -number
    unit = _POW10_INT[places]
    whole = np.uint64(number) // unit
    fraction = np.uint64(number) % unit
    at = write_uint(whole, out, at)
    out[at] = 46  # '.'
    return write_fraction(fraction, places, out, at + 1)


@numba.njit(**_JIT)
def write_uint(value: np.uint64, out: Any, at: int) -> int:
    """Write ``value`` in decimal at ``out[at:]``; return the new end."""
    n = 1
    probe = value // np.uint64(10)
    while probe:
        n += 1
        probe //= np.uint64(10)
    pos = at + n
    while True:
        pos -= 1
        out[pos] = np.uint8(48 + value % np.uint64(10))
        value //= np.uint64(10)
        if value == 0:
            return at + n


@numba.njit(**_JIT)
def write_int(value: np.int64, out: Any, at: int) -> int:
    """Write ``value`` in decimal at ``out[at:]``; return the new end."""
    if value < 0:
        out[at] = 45  # '-'
        return write_uint(np.uint64(-(value + 1)) + np.uint64(1), out, at + 1)
    return write_uint(np.uint64(value), out, at)


@intrinsic
def _bitcast(typingctx: Any, value: Any) -> Any:
    """float64 -> uint64 reinterpretation of the same 64 bits (an LLVM bitcast)."""
    signature = types.uint64(types.float64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.uint64))

    return signature, codegen


@numba.njit(**_JIT)
def float_bits(value: float) -> np.uint64:
    """The IEEE bits of ``value``."""
    return _bitcast(np.float64(value))  # type: ignore[call-arg]


@numba.njit(**_JIT)
def write_float(value: float, out: Any, at: int) -> int:
    """Write ``repr(value)`` at ``out[at:]`` (at most 24 bytes); return the new end."""
    if value != value:
        out[at] = 110  # 'nan'
        out[at + 1] = 97
        out[at + 2] = 110
        return at + 3
    bits = float_bits(value)
    if bits >> np.uint64(63):
        out[at] = 45
        at += 1
    if value == np.inf or value == -np.inf:
        out[at] = 105  # 'inf'
        out[at + 1] = 110
        out[at + 2] = 102
        return at + 3
    if value == 0.0:
        out[at] = 48
        out[at + 1] = 46
        out[at + 2] = 48
        return at + 3
    magnitude = abs(value)
    if magnitude < 1e16 and magnitude == np.floor(magnitude):
        # A whole number below 10**16: repr writes its digits and ".0".
        digits, exp10 = np.uint64(magnitude), 0
    else:
        digits, exp10 = _few_decimals(magnitude)
    if digits == 0:
        digits, exp10 = shortest(bits & np.uint64(0x7FFFFFFFFFFFFFFF))
    # The digits go backwards from out[at + 44] first, then move into place: positional and
    # scientific layouts both only ever move them left or not at all.
    first = at + 44
    while True:
        first -= 1
        out[first] = np.uint8(48 + digits % np.uint64(10))
        digits //= np.uint64(10)
        if digits == 0:
            break
    n = at + 44 - first
    scratch = out
    decimal_exponent = exp10 + n - 1  # of the first digit
    if -4 <= decimal_exponent < 16:
        if decimal_exponent < 0:  # 0.000ddd
            out[at] = 48
            out[at + 1] = 46
            at += 2
            for _ in range(-decimal_exponent - 1):
                out[at] = 48
                at += 1
            for i in range(n):
                out[at + i] = scratch[first + i]
            return at + n
        whole = decimal_exponent + 1
        for i in range(min(whole, n)):
            out[at + i] = scratch[first + i]
        at += min(whole, n)
        for _ in range(whole - n):
            out[at] = 48
            at += 1
        out[at] = 46  # '.'
        at += 1
        if n > whole:
            for i in range(whole, n):
                out[at] = scratch[first + i]
                at += 1
        else:
            out[at] = 48
            at += 1
        return at
    out[at] = scratch[first]
    at += 1
    if n > 1:
        out[at] = 46
        at += 1
        for i in range(1, n):
            out[at] = scratch[first + i]
            at += 1
    out[at] = 101  # 'e'
    out[at + 1] = 45 if decimal_exponent < 0 else 43
    at += 2
    magnitude = -decimal_exponent if decimal_exponent < 0 else decimal_exponent
    if magnitude < 10:
        out[at] = 48
        at += 1
    return write_int(np.int64(magnitude), out, at)
