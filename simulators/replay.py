"""Replay a recorded CAN log onto a python-can bus with its original timing (1x, Nx, or full
speed): anything `edge_agent.logs.LogReader` reads (candump, ASC, BLF, TRC, gzip'd or not)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import can

from edge_agent.frames import FrameBatch
from edge_agent.logs import LogError, LogReader

from .errors import ReplayError
from .outputs import SendStats, send_frames

__all__ = ["replay_log"]

log = logging.getLogger(__name__)


def replay_log(
    path: str | os.PathLike[str],
    bus: can.BusABC,
    *,
    speed: float | None = 1.0,
    progress: Callable[[float], None] | None = None,
    chunk_frames: int = 50_000,
) -> SendStats:
    """Send every frame of the log at ``path`` on ``bus``; ``speed`` None: as fast as possible.

    ``progress`` is called with the fraction of the file consumed, after each chunk.
    """
    try:
        reader = LogReader(path, chunk_frames=chunk_frames)
    except LogError as exc:
        raise ReplayError(str(exc)) from exc

    def batches() -> Iterator[FrameBatch]:
        try:
            for batch in reader:
                yield batch
                if progress is not None:
                    progress(reader.progress.fraction)
        except LogError as exc:
            raise ReplayError(str(exc)) from exc

    try:
        stats = send_frames(bus, batches(), speed=speed)
    finally:
        reader.close()
    if reader.report.bad_line_count:
        log.warning("%s: %d bad lines skipped", path, reader.report.bad_line_count)
    return stats
