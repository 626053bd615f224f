"""Where a DBC signal's bits sit in a payload, the way cantools lays them out.

Shared by the decoder (which reads them) and by encoders (the simulator, which writes them):
one definition of little-endian (Intel) and big-endian (Motorola, "sawtooth" start bit)
placement.
"""

from __future__ import annotations

__all__ = ["bit_positions", "segments"]


def bit_positions(start: int, length: int, little_endian: bool) -> list[tuple[int, int]]:
    """(byte, bit in byte) of each raw bit, least significant first, as cantools lays them."""
    if little_endian:
        return [((start + i) // 8, (start + i) % 8) for i in range(length)]
    msb_seq = 8 * (start // 8) + (7 - start % 8)  # network order index of the MSB
    positions = []
    for i in range(length):  # raw bit i is (length - 1 - i) places after the MSB
        seq = msb_seq + (length - 1 - i)
        positions.append((seq // 8, 7 - seq % 8))
    return positions


def segments(start: int, length: int, little_endian: bool) -> list[tuple[int, int, int, int]]:
    """Runs of raw bits inside one byte: (byte, shift in byte, bit count, shift in raw)."""
    runs: list[tuple[int, int, int, int]] = []
    for raw_bit, (byte, bit) in enumerate(bit_positions(start, length, little_endian)):
        if runs:
            last_byte, shift, count, out = runs[-1]
            if last_byte == byte and shift + count == bit and out + count == raw_bit:
                runs[-1] = (byte, shift, count + 1, out)
                continue
        runs.append((byte, bit, 1, raw_bit))
    return runs
