"""Choosing a format, errors that name the file, reports, progress and logging."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest

from edge_agent.logs import (
    BadLine,
    LogError,
    LogFormat,
    LogReader,
    Progress,
    UnreadableLogError,
    UnsupportedFormatError,
    read_log,
)

LINES = "".join(f"({i}.5) can0 1{i % 10}0#11{i % 10}2\n" for i in range(50))


@pytest.mark.parametrize(
    ("name", "fmt", "compressed"),
    [
        ("a.log", LogFormat.CANDUMP, False),
        ("a.LOG", LogFormat.CANDUMP, False),
        ("a.b.asc", LogFormat.ASC, False),
        ("a.blf.gz", LogFormat.BLF, True),
        ("a.trc.GZ", LogFormat.TRC, True),
    ],
)
def test_the_suffix_chooses_the_format(
    tmp_path: Path, name: str, fmt: LogFormat, compressed: bool
) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if compressed else b"")
    with LogReader(path) as reader:
        assert (reader.format, reader.compressed) == (fmt, compressed)


@pytest.mark.parametrize("name", ["a.csv", "a.gz", "a.log.zip", "log", "a.mf4.gz"])
def test_unknown_suffixes_are_refused_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(UnsupportedFormatError, match=name) as caught:
        LogReader(path)
    assert isinstance(caught.value, LogError) and isinstance(caught.value, ValueError)
    assert caught.value.path == path


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.log"
    with pytest.raises(UnreadableLogError, match=r"nowhere\.log: no such file") as caught:
        read_log(path)
    assert isinstance(caught.value, OSError) and caught.value.path == path


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "dir.asc"
    path.mkdir()
    with pytest.raises(UnreadableLogError, match=r"dir\.asc: is a directory"):
        LogReader(path)


def test_a_gz_file_that_is_not_gzip_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "plain.log.gz"
    path.write_text(LINES)
    with pytest.raises(UnreadableLogError, match=r"plain\.log\.gz: not a gzip file"):
        LogReader(path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.blf", b"", "not a readable BLF file"),
        ("text.blf", b"NOPE, not a BLF file at all" * 8, "not a readable BLF file"),
        ("huge.blf", b"LOGG\xff\xff\xff\x7f" + b"\0" * 200, "header size 2147483647"),
        ("nocols.trc", b";$FILEVERSION=2.0\n;$STARTTIME=1\n 1 1.0 DT 1 0100 Rx - 1 00\n", "column"),
    ],
)
def test_unusable_headers_make_the_file_unreadable(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableLogError, match=match) as caught:
        read_log(path)
    assert name in str(caught.value)


@pytest.mark.parametrize("name", ["empty.log", "empty.asc", "empty.trc", "empty.log.gz"])
def test_empty_text_logs_have_no_frames(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
    batch, report = read_log(path)
    assert len(batch) == 0 and report.frames == 0 and report.ok
    assert batch.data.shape == (0, 8)


def test_report_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "some.log"
    path.write_text(LINES + "oops\n")
    with LogReader(path, chunk_frames=20) as reader:
        assert reader.progress == Progress(0, path.stat().st_size, 0)
        sizes = [len(batch) for batch in reader]
    assert sizes == [20, 20, 10]
    report = reader.report
    assert report.path == path and report.format is LogFormat.CANDUMP
    assert (report.frames, report.bad_line_count) == (50, 1)
    assert report.bad_lines == (BadLine(51, "too few fields (truncated line?)", "oops"),)
    assert str(report).endswith(
        "50 frames, 1 bad lines\n  line 51: too few fields (truncated line?): 'oops'"
    )
    assert reader.progress.fraction == 1.0


def test_closing_early_stops_the_batches(tmp_path: Path) -> None:
    path = tmp_path / "some.log"
    path.write_text(LINES)
    reader = LogReader(path, chunk_frames=10)
    first = next(iter(reader))
    reader.close()
    assert len(first) == 10
    assert list(reader) == []
    assert reader.report.frames == 10


def test_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "some.log"
    path.write_text(LINES)
    with pytest.raises(ValueError, match="chunk_frames"):
        LogReader(path, chunk_frames=0)
    with pytest.raises(ValueError, match="max_bad_lines"):
        LogReader(path, max_bad_lines=-1)


def test_no_record_per_frame_or_line_above_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "some.log"
    path.write_text(LINES * 10 + "bad\n" * 30)
    caplog.set_level(logging.DEBUG, logger="edge_agent.logs")
    with LogReader(path, chunk_frames=7) as reader:
        for _ in reader:
            pass
    loud = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING
    assert "500 frames, skipped 30 bad lines" in loud[0].getMessage()
