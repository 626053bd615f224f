"""Frames as comparable rows, from python-can messages and from :class:`FrameBatch`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import can

from edge_agent.frames import FrameBatch, FrameFlag

#: timestamp, id, extended, remote, error, fd, brs, esi, rx, length, payload, channel
Row = tuple[float, int, bool, bool, bool, bool, bool, bool, bool, int, bytes, str | None]


def message_row(msg: can.Message) -> Row:
    """A python-can message's fields; a remote frame's length is its DLC, with no payload."""
    channel = None if msg.channel is None else str(msg.channel)
    length = msg.dlc if msg.is_remote_frame else len(msg.data)
    return (
        msg.timestamp,
        msg.arbitration_id,
        msg.is_extended_id,
        msg.is_remote_frame,
        msg.is_error_frame,
        msg.is_fd,
        msg.bitrate_switch,
        msg.error_state_indicator,
        msg.is_rx,
        length,
        bytes(msg.data),
        channel,
    )


def batch_rows(batch: FrameBatch) -> list[Row]:
    """The batch's frames; also checks the zero padding beyond each payload."""
    rows: list[Row] = []
    for i in range(len(batch)):
        flags = FrameFlag(int(batch.flags[i]))
        remote = FrameFlag.REMOTE in flags
        length = int(batch.lengths[i])
        padding = batch.data[i, 0 if remote else length :]
        assert not padding.any(), f"row {i}: bytes beyond the payload are not zero"
        chan = int(batch.channels[i])
        name = batch.channel_names[chan] if chan >= 0 else None
        if name is not None and name.isdigit():
            name = str(int(name))  # python-can turns an all-digit channel name into an int
        rows.append(
            (
                float(batch.timestamps[i]),
                int(batch.ids[i]),
                FrameFlag.EXTENDED in flags,
                remote,
                FrameFlag.ERROR in flags,
                FrameFlag.FD in flags,
                FrameFlag.BRS in flags,
                FrameFlag.ESI in flags,
                FrameFlag.RX in flags,
                length,
                b"" if remote else batch.payload(i),
                name,
            )
        )
    return rows


def python_can_rows(path: Path | str, **kwargs: object) -> tuple[list[Row], Exception | None]:
    """What python-can's ``LogReader`` reads, up to the error that stops it (if one does)."""
    rows: list[Row] = []
    reader = can.LogReader(path, **kwargs)
    try:
        for msg in reader:
            rows.append(message_row(msg))
    except Exception as exc:  # python-can stops here; the rows so far are what it read
        return rows, exc
    finally:
        reader.stop()
    return rows, None


def rows_of(batches: Iterable[FrameBatch]) -> list[Row]:
    return [row for batch in batches for row in batch_rows(batch)]
