"""Where simulated or recorded frames go: log files and python-can buses.

``.log`` (candump, optionally ``.log.gz``) is written by our own vectorised writer; ``.asc``
and ``.blf`` by python-can's writers. `send_frames` puts frames on any python-can bus with
their recorded timing, scaled by a speed-up factor, or as fast as the bus takes them.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import can

from edge_agent.frames import FrameBatch, FrameFlag

from .candump import write_candump
from .errors import SimulatorError

__all__ = ["SendStats", "frame_messages", "send_frames", "write_log"]

log = logging.getLogger(__name__)

_LOG_SUFFIXES = (".log", ".log.gz", ".asc", ".blf")


def frame_messages(batch: FrameBatch) -> Iterator[can.Message]:
    """The frames of ``batch`` as python-can messages."""
    names = batch.channel_names
    for i in range(len(batch)):
        flags = int(batch.flags[i])
        channel = int(batch.channels[i])
        yield can.Message(
            timestamp=float(batch.timestamps[i]),
            arbitration_id=int(batch.ids[i]),
            is_extended_id=bool(flags & FrameFlag.EXTENDED),
            is_remote_frame=bool(flags & FrameFlag.REMOTE),
            is_error_frame=bool(flags & FrameFlag.ERROR),
            is_fd=bool(flags & FrameFlag.FD),
            bitrate_switch=bool(flags & FrameFlag.BRS),
            error_state_indicator=bool(flags & FrameFlag.ESI),
            dlc=int(batch.lengths[i]),
            data=batch.payload(i),
            channel=names[channel] if 0 <= channel < len(names) else None,
            check=False,
        )


def write_log(path: str | os.PathLike[str], batches: Iterable[FrameBatch]) -> int:
    """Write frames to a log file chosen by suffix; returns the number of frames written."""
    target = Path(path)
    name = target.name.lower()
    if not name.endswith(_LOG_SUFFIXES):
        raise SimulatorError(
            f"{target}: unsupported log suffix (expected {', '.join(_LOG_SUFFIXES)})"
        )
    frames = 0
    try:
        if name.endswith((".log", ".log.gz")):
            with ExitStack() as stack:
                stream = cast(
                    BinaryIO,
                    stack.enter_context(gzip.open(target, "wb", compresslevel=6))
                    if name.endswith(".gz")
                    else stack.enter_context(target.open("wb")),
                )
                for batch in batches:
                    write_candump(stream, batch)
                    frames += len(batch)
            return frames
        writer: Any = can.Logger(str(target))
        try:
            for batch in batches:
                for message in frame_messages(batch):
                    writer.on_message_received(message)
                frames += len(batch)
        finally:
            writer.stop()
    except OSError as exc:
        raise SimulatorError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    return frames


@dataclass(frozen=True, slots=True)
class SendStats:
    frames: int
    seconds: float  # wall-clock time taken
    log_seconds: float  # span of the frames' own timestamps


def send_frames(
    bus: can.BusABC,
    batches: Iterable[FrameBatch],
    *,
    speed: float | None = 1.0,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> SendStats:
    """Send frames on ``bus`` keeping their timing at ``speed`` x (None: as fast as possible).

    ``progress`` is called with the number of frames sent since its last call.
    """
    if speed is not None and speed <= 0:
        raise SimulatorError(f"speed must be positive, not {speed}")
    start = clock()
    first: float | None = None
    last = 0.0
    sent = 0
    for batch in batches:
        for message in frame_messages(batch):
            if first is None:
                first = message.timestamp
            last = message.timestamp
            if speed is not None:
                ahead = (message.timestamp - first) / speed - (clock() - start)
                if ahead > 0.001:
                    sleep(ahead)
            bus.send(message)
            sent += 1
        if progress is not None:
            progress(len(batch))
    elapsed = clock() - start
    log.info("sent %d frames in %.3f s", sent, elapsed)
    return SendStats(sent, elapsed, 0.0 if first is None else last - first)
