"""Every log of python-can's own test set reads to the frames python-can reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.logs import LogReader, read_log
from tests.corpus import corpus_dir, corpus_files

from ._compare import python_can_rows, rows_of

LOGS = [p for p in corpus_files("python-can-logs", "*") if p.name != "LICENSE"]


def test_corpus_is_present() -> None:
    folder = corpus_dir("python-can-logs")  # skips, saying why, when absent
    assert {p.suffix for p in LOGS} >= {".asc", ".blf", ".trc", ".gz"}, folder


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_reads_what_python_can_reads(path: Path) -> None:
    expected, failure = python_can_rows(path)
    batch, report = read_log(path)
    ours = rows_of([batch])
    assert report.frames == len(batch)
    if failure is None:
        assert ours == expected
        assert report.ok, report
    else:
        # python-can stops at the first line it cannot read: what it read before that must
        # match, and every frame after it is still read here, with the line reported.
        assert ours[: len(expected)] == expected
        assert len(ours) >= len(expected)
        assert not report.ok


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_small_chunks_read_the_same_frames(path: Path) -> None:
    whole, _ = read_log(path)
    with LogReader(path, chunk_frames=3) as reader:
        batches = list(reader)
    assert all(len(b) <= 3 for b in batches)
    assert rows_of(batches) == rows_of([whole])
    assert reader.progress.bytes_read == reader.progress.bytes_total == path.stat().st_size
