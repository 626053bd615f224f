"""Batches of CAN frames in columnar form: the one shape every frame source produces.

A :class:`FrameBatch` holds ``n`` frames as parallel NumPy arrays, so that the decoder can
take a whole batch in one call without touching a Python object per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

import numpy as np
import numpy.typing as npt

__all__ = ["FrameBatch", "FrameFlag"]


class FrameFlag(IntFlag):
    """Bits of :attr:`FrameBatch.flags`."""

    EXTENDED = 0x01  # 29-bit identifier
    FD = 0x02  # CAN FD frame
    REMOTE = 0x04  # remote transmission request
    ERROR = 0x08  # error frame
    BRS = 0x10  # CAN FD bit rate switch
    ESI = 0x20  # CAN FD error state indicator
    RX = 0x40  # received (not transmitted) where the source says so


@dataclass(frozen=True, slots=True, eq=False)
class FrameBatch:
    """``n`` CAN frames.

    * ``timestamps``: float64 seconds, as the source gives them (log time or receive time);
    * ``ids``: uint32 arbitration ids (11 or 29 bits, no flag bits);
    * ``flags``: uint8 :class:`FrameFlag` bits;
    * ``lengths``: uint8 payload lengths in bytes (0 to 64); a remote frame's is the length
      it requests, with no payload (its data is zero);
    * ``data``: uint8 array of shape ``(n, width)``, ``width >= max(lengths)`` and at least 8,
      zero beyond each frame's length;
    * ``channels``: int16 index into ``channel_names`` (-1 when the source names none).
    """

    timestamps: npt.NDArray[np.float64]
    ids: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint8]
    lengths: npt.NDArray[np.uint8]
    data: npt.NDArray[np.uint8]
    channels: npt.NDArray[np.int16]
    channel_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.timestamps)
        for name in ("ids", "flags", "lengths", "channels"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"FrameBatch.{name} has {len(getattr(self, name))} rows, not {n}")
        if self.data.ndim != 2 or self.data.shape[0] != n or self.data.shape[1] < 8:
            raise ValueError(f"FrameBatch.data must have shape ({n}, >=8), not {self.data.shape}")

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def extended(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = (self.flags & FrameFlag.EXTENDED) != 0
        return mask

    @classmethod
    def empty(cls, width: int = 8) -> FrameBatch:
        return cls(
            timestamps=np.empty(0, np.float64),
            ids=np.empty(0, np.uint32),
            flags=np.empty(0, np.uint8),
            lengths=np.empty(0, np.uint8),
            data=np.zeros((0, width), np.uint8),
            channels=np.empty(0, np.int16),
        )

    @classmethod
    def from_rows(
        cls,
        rows: list[tuple[float, int, int, bytes]],
        *,
        channels: list[int] | None = None,
        channel_names: tuple[str, ...] = (),
    ) -> FrameBatch:
        """Build a batch from ``(timestamp, id, flags, payload)`` tuples (tests, small inputs)."""
        n = len(rows)
        width = max([8, *(len(r[3]) for r in rows)])
        data = np.zeros((n, width), np.uint8)
        for i, (_, _, _, payload) in enumerate(rows):
            data[i, : len(payload)] = np.frombuffer(payload, np.uint8)
        return cls(
            timestamps=np.array([r[0] for r in rows], np.float64),
            ids=np.array([r[1] for r in rows], np.uint32),
            flags=np.array([r[2] for r in rows], np.uint8),
            lengths=np.array([len(r[3]) for r in rows], np.uint8),
            data=data,
            channels=np.array(channels if channels is not None else [-1] * n, np.int16),
            channel_names=channel_names,
        )

    def slice(self, start: int, stop: int) -> FrameBatch:
        """Frames ``start`` to ``stop`` (views, not copies)."""
        return FrameBatch(
            timestamps=self.timestamps[start:stop],
            ids=self.ids[start:stop],
            flags=self.flags[start:stop],
            lengths=self.lengths[start:stop],
            data=self.data[start:stop],
            channels=self.channels[start:stop],
            channel_names=self.channel_names,
        )

    def payload(self, i: int) -> bytes:
        """Frame ``i``'s payload as bytes."""
        return bytes(self.data[i, : int(self.lengths[i])])

    @staticmethod
    def concat(batches: list[FrameBatch]) -> FrameBatch:
        """One batch of all frames in order; channel names are merged."""
        if not batches:
            return FrameBatch.empty()
        names: list[str] = []
        channel_parts = []
        for batch in batches:
            remap = np.array([_index(names, n) for n in batch.channel_names] + [-1], np.int16)
            channel_parts.append(remap[batch.channels])  # -1 indexes the trailing -1
        width = max(b.data.shape[1] for b in batches)
        data = np.zeros((sum(len(b) for b in batches), width), np.uint8)
        row = 0
        for b in batches:
            data[row : row + len(b), : b.data.shape[1]] = b.data
            row += len(b)
        return FrameBatch(
            timestamps=np.concatenate([b.timestamps for b in batches]),
            ids=np.concatenate([b.ids for b in batches]),
            flags=np.concatenate([b.flags for b in batches]),
            lengths=np.concatenate([b.lengths for b in batches]),
            data=data,
            channels=np.concatenate(channel_parts),
            channel_names=tuple(names),
        )


def _index(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)
