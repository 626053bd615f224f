"""python-can messages of every kind of frame, for the tests of buses and frame sources."""

from __future__ import annotations

import can

from edge_agent.frames import FrameFlag

# What each of `every_kind`'s messages is as a FrameBatch row: flags and length.
EVERY_KIND_FLAGS = [
    0,
    FrameFlag.EXTENDED | FrameFlag.REMOTE,
    FrameFlag.ERROR,
    FrameFlag.FD | FrameFlag.BRS | FrameFlag.ESI,
    FrameFlag.EXTENDED | FrameFlag.FD,
]
EVERY_KIND_LENGTHS = [2, 6, 0, 64, 12]


def every_kind() -> list[can.Message]:
    """A classic frame of 2 bytes, a remote frame (extended id, asking for 6 bytes), an error
    frame, a CAN FD frame of 64 bytes with both FD flags, an extended CAN FD frame of 12 bytes;
    timestamps 1 to 5."""
    return [
        can.Message(timestamp=1.0, arbitration_id=0x123, data=b"\x01\x02", is_extended_id=False),
        can.Message(
            timestamp=2.0,
            arbitration_id=0x1ABCDEF0,
            is_extended_id=True,
            is_remote_frame=True,
            dlc=6,
        ),
        can.Message(timestamp=3.0, arbitration_id=0x0, is_error_frame=True, is_extended_id=False),
        can.Message(
            timestamp=4.0,
            arbitration_id=0x2B0,
            is_fd=True,
            bitrate_switch=True,
            error_state_indicator=True,
            data=bytes(range(64)),
            is_extended_id=False,
        ),
        can.Message(
            timestamp=5.0, arbitration_id=0x1F0, is_fd=True, data=bytes(12), is_extended_id=True
        ),
    ]
