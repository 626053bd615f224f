"""Reading one log file in batches, whatever its format: the package's entry points."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType

from can.io.blf import BLFParseError
from can.message import Message

from ..frames import FrameBatch
from ._candump import iter_candump
from ._errors import UnreadableLogError
from ._formats import LogFormat, detect_format
from ._pycan import MessageBatcher, iter_asc, iter_blf, iter_trc
from ._report import Progress, ReadReport, Tally
from ._source import Source

__all__ = ["DEFAULT_CHUNK_FRAMES", "LogReader", "read_log"]

log = logging.getLogger(__name__)

#: Frames per batch unless asked otherwise.
DEFAULT_CHUNK_FRAMES = 1_000_000
_BLOCK = 8 << 20  # bytes read at a time from a candump file

# What python-can raises when a header (BLF file header, TRC version or columns) is unusable;
# the per-line and per-object steps catch their own errors.
_HEADER_ERRORS = (ValueError, NotImplementedError, struct.error, BLFParseError)


class LogReader:
    """Reads one CAN log file as an iterator of :class:`FrameBatch` chunks.

    The format comes from the suffix (``.log`` candump, ``.asc``, ``.blf``, ``.trc``, each
    optionally ``.gz``).  Bad lines are skipped and counted in :attr:`report`;
    :attr:`progress` says how much of the file has been consumed::

        with LogReader("drive.log.gz") as reader:
            for batch in reader:
                show(reader.progress.fraction)
        print(reader.report)

    The file is opened by the constructor and closed when the batches run out or on
    :meth:`close`.  A reader is iterated once.

    :raises UnsupportedFormatError: for an unknown suffix.
    :raises UnreadableLogError: when the file is missing or cannot be opened, is not gzip
        data although named ``.gz``, or (while iterating) cannot be read or has an unusable
        BLF or TRC header.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        max_bad_lines: int = 100,
    ) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, not {chunk_frames}")
        if max_bad_lines < 0:
            raise ValueError(f"max_bad_lines must not be negative, not {max_bad_lines}")
        self.path = Path(path)
        self.format, self.compressed = detect_format(self.path)
        self.chunk_frames = chunk_frames
        self._tally = Tally(max_bad_lines)
        self._frames = 0
        self._source = Source(self.path, compressed=self.compressed, tally=self._tally)
        self._batches = self._read()

    def __iter__(self) -> Iterator[FrameBatch]:
        return self._batches

    @property
    def progress(self) -> Progress:
        """Bytes of the file consumed so far, of its size on disk, and frames so far."""
        return Progress(self._source.bytes_read, self._source.bytes_total, self._frames)

    @property
    def report(self) -> ReadReport:
        """Frames and bad lines so far (complete once the batches have run out)."""
        return ReadReport(
            path=self.path,
            format=self.format,
            frames=self._frames,
            bad_line_count=self._tally.count,
            bad_lines=tuple(self._tally.first),
        )

    def close(self) -> None:
        """Stop reading and close the file."""
        self._batches.close()
        self._source.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self) -> Generator[FrameBatch, None, None]:
        log.debug("reading %s as %s", self.path, self.format.name)
        try:
            for batch in self._parse():
                self._frames += len(batch)
                log.debug("%s: %d frames so far", self.path, self._frames)
                yield batch
        finally:
            self._source.close()
        if self._tally.count:
            first = self._tally.first
            log.warning(
                "%s: read %d frames, skipped %d bad lines (first %s)",
                self.path, self._frames, self._tally.count, first[0] if first else "not kept",
            )  # fmt: skip
        else:
            log.info("%s: read %d frames", self.path, self._frames)

    def _parse(self) -> Iterator[FrameBatch]:
        if self.format is LogFormat.CANDUMP:
            yield from iter_candump(self._blocks(), self._tally, chunk_frames=self.chunk_frames)
            return
        read = {LogFormat.ASC: iter_asc, LogFormat.TRC: iter_trc, LogFormat.BLF: iter_blf}
        messages = read[self.format](self._source, self._tally)
        batcher = MessageBatcher(self.chunk_frames)
        while True:
            try:
                msg: Message = next(messages)
            except StopIteration:
                break
            except _HEADER_ERRORS as exc:
                raise UnreadableLogError(
                    self.path, f"not a readable {self.format.name} file: {exc}"
                ) from exc
            batch = batcher.add(msg)
            if batch is not None:
                yield batch
        rest = batcher.take()
        if rest is not None:
            yield rest

    def _blocks(self) -> Iterator[bytes]:
        while block := self._source.read(_BLOCK):
            yield block


def read_log(
    path: str | os.PathLike[str], *, max_bad_lines: int = 100
) -> tuple[FrameBatch, ReadReport]:
    """All frames of one log file as a single batch, and the report.

    :raises UnsupportedFormatError, UnreadableLogError: as :class:`LogReader` does.
    """
    with LogReader(path, max_bad_lines=max_bad_lines) as reader:
        batches = list(reader)
    frames = batches[0] if len(batches) == 1 else FrameBatch.concat(batches)
    return frames, reader.report
