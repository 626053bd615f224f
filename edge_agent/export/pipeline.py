"""Log files in, decoded table out: the fleet engineer's ``can2care decode``."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..decoder import BatchDecoder
from ..frames import FrameBatch
from ..logs import LogReader, ReadReport
from .writers import SampleWriter

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes) over all inputs."""


@dataclass(frozen=True, slots=True)
class DecodeSummary:
    """What a decode run read and wrote."""

    reports: tuple[ReadReport, ...]
    frames: int
    decoded: int
    unknown: int
    unknown_ids: tuple[int, ...] = field(default=())  # distinct, extended ids + 2**32
    skipped: int = 0
    truncated: int = 0
    samples: int = 0  # decoded
    written: int = 0  # samples written: those of the signals the writer writes (a map's)
    seconds: float = 0.0

    @property
    def bad_lines(self) -> int:
        return sum(report.bad_line_count for report in self.reports)


def _prefetched(
    readers: list[LogReader],
) -> Generator[tuple[LogReader, FrameBatch | None], None, None]:
    """(reader, batch) pairs read one batch ahead by a thread (the readers release the GIL),
    then (reader, None) when a reader is done."""
    items: queue.Queue[tuple[LogReader, FrameBatch | None] | BaseException] = queue.Queue(2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for reader in readers:
                for batch in reader:
                    if stop.is_set():
                        return
                    items.put((reader, batch))
                items.put((reader, None))
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(exc)

    thread = threading.Thread(target=produce, name="log-read", daemon=True)
    thread.start()
    try:
        for _ in readers:
            while True:
                item = items.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item[1] is None:
                    break
    finally:
        stop.set()
        while thread.is_alive():  # let a blocked producer finish
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.05)
        thread.join()


def decode_logs(
    paths: Sequence[Path],
    decoder: BatchDecoder,
    writer: SampleWriter,
    *,
    progress: ProgressCallback | None = None,
    chunk_frames: int = 1 << 18,
) -> DecodeSummary:
    """Decode every log of ``paths`` in order into ``writer`` (which the caller closes).

    ``chunk_frames`` frames a batch: batches well under 32 MB reuse the memory of earlier
    ones (larger ones are mapped and zeroed afresh by the kernel every time).
    """
    start = time.perf_counter()
    readers = [LogReader(path, chunk_frames=chunk_frames) for path in paths]
    total = sum(reader.progress.bytes_total for reader in readers)
    done = 0
    frames = decoded = unknown = skipped = truncated = samples = written = 0
    unknown_ids: set[int] = set()
    batches = _prefetched(readers)
    try:
        for reader, batch in batches:
            if batch is None:
                done += reader.progress.bytes_total
                continue
            result = decoder.decode(batch, reuse=True)
            written += writer.write(result)
            stats = result.stats
            frames += stats.frames
            decoded += stats.decoded
            unknown += stats.unknown
            skipped += stats.skipped
            truncated += stats.truncated
            samples += stats.samples
            if stats.unknown:
                rows = result.frame_messages == -1
                keys = batch.ids[rows].astype(np.int64) + (
                    batch.extended[rows].astype(np.int64) << 32
                )
                unknown_ids.update(int(k) for k in np.unique(keys))
            if progress is not None:
                progress(done + reader.progress.bytes_read, total)
    finally:
        batches.close()  # stops the reading thread before the files close
        for reader in readers:
            reader.close()
    if progress is not None:
        progress(total, total)
    summary = DecodeSummary(
        reports=tuple(reader.report for reader in readers),
        frames=frames,
        decoded=decoded,
        unknown=unknown,
        unknown_ids=tuple(sorted(unknown_ids)),
        skipped=skipped,
        truncated=truncated,
        samples=samples,
        written=written,
        seconds=time.perf_counter() - start,
    )
    log.info(
        "decoded %d of %d frames into %d samples (%d written) in %.2f s",
        decoded,
        frames,
        samples,
        written,
        summary.seconds,
    )
    return summary
