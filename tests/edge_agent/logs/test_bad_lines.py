"""Bad lines never stop a file: each is skipped, counted and reported; every good frame is read."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import can
import pytest

from edge_agent.logs import LogReader, read_log
from edge_agent.logs._candump import LONG_LINE, REASONS, iter_candump
from edge_agent.logs._report import TEXT_LIMIT, Tally

from ._compare import Row, python_can_rows, rows_of

# (line, reason or None for a good line)
CANDUMP: list[tuple[bytes, str | None]] = [
    (b"(1.0) can0 123#1122", None),
    (b"(1.1) can0 123#112", REASONS[12]),
    (b"(1.2) can0 123#11 22", REASONS[2]),
    (b"(1.3) can0 12", REASONS[8]),
    (b"(1.4) can0", REASONS[1]),
    (b"\xff\xfe\x00garbage\x80", REASONS[1]),
    (b"(1.5) can0 123#11ZZ", REASONS[13]),
    (b"(1.6) can0 123#112233445566778899", REASONS[14]),
    (b"1.7 can0 123#11", REASONS[4]),
    (b"(1.8) can0 123456789#11", REASONS[9]),
    (b"(1.9) can0 123##", REASONS[10]),
    (b"(2.0) can0 123#R99", REASONS[11]),
    (b"(2.1) can0 123#11 X", REASONS[3]),
    (b"(2.2) can0 123#11\tR", REASONS[3]),
    (b"(2.3) can\x01x 123#11", REASONS[5]),
    (b"", None),
    (b"(2.4) can0 7FF##1" + b"00" * 65, REASONS[15]),
    (b"(2.5) can0 123#11 R R", REASONS[2]),
    (b"(2.6) can\xc3\xa9 1#11", REASONS[5]),
    (b"(2.7) can0 1#11 T", None),
    (b"(2.8) " + b"c" * 65 + b" 1#11", REASONS[6]),
    (b"(2.9) can0 00000123##1AABB", None),
    (b"(3.0) can0 12", REASONS[8]),  # the file ends in the middle of this line
]


def _candump_file(lines: list[tuple[bytes, str | None]]) -> tuple[bytes, str, dict[int, str]]:
    """The file's bytes, its good lines as text, and the bad lines' numbers and reasons."""
    data = b"\n".join(line for line, _ in lines)
    good = "".join(line.decode() + "\n" for line, reason in lines if reason is None and line)
    bad = {n: reason for n, (_, reason) in enumerate(lines, 1) if reason}
    return data, good, bad


def _python_can_stops(path: Path, error: type[Exception]) -> None:
    reader = can.LogReader(path)
    try:
        with pytest.raises(error):
            list(reader)
    finally:
        reader.stop()


def _python_can_candump(text: str, tmp_path: Path) -> list[Row]:
    path = tmp_path / "good-only.log"
    path.write_text(text)
    rows, failure = python_can_rows(path)
    assert failure is None
    return rows


@pytest.mark.parametrize("suffix", [".log", ".log.gz"])
def test_candump_bad_lines_are_reported_and_good_frames_read(tmp_path: Path, suffix: str) -> None:
    data, good, bad = _candump_file(CANDUMP)
    path = tmp_path / f"mixed{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    _python_can_stops(path, ValueError)  # at the first bad line
    batch, report = read_log(path)
    assert rows_of([batch]) == _python_can_candump(good, tmp_path)
    assert {b.line: b.reason for b in report.bad_lines} == bad
    assert report.bad_line_count == len(bad) and report.frames == 3
    assert report.bad_lines[0].text == "(1.1) can0 123#112"
    assert all(b.offset is None for b in report.bad_lines)
    assert "\\xff\\xfe" in report.bad_lines[4].text  # undecodable bytes shown escaped


def test_counts_stay_exact_when_the_list_is_capped(tmp_path: Path) -> None:
    # More bad lines than the scanner records per call, between good ones.
    lines = [b"(1.0) can0 123#11\n(1.0) can0 123#1\n" for _ in range(3000)]
    path = tmp_path / "many-bad.log"
    path.write_bytes(b"".join(lines))
    with LogReader(path, max_bad_lines=5, chunk_frames=700) as reader:
        frames = sum(len(b) for b in reader)
    report = reader.report
    assert frames == report.frames == 3000
    assert report.bad_line_count == 3000
    assert [b.line for b in report.bad_lines] == [2, 4, 6, 8, 10]
    assert not report.ok
    assert "and 2995 more" in str(report)


def test_a_long_line_is_cut_short_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"(1.0) can0 123#" + b"AB" * 500 + b"\n(2.0) can0 123#11\n")
    batch, report = read_log(path)
    assert len(batch) == 1
    (bad,) = report.bad_lines
    assert bad.line == 1 and bad.reason == REASONS[14]
    assert len(bad.text) == TEXT_LIMIT and bad.text.endswith("\u2026")


def test_a_line_longer_than_the_limit_is_skipped_without_being_held() -> None:
    tally = Tally(10)
    huge = b"(1.0) can0 123#" + b"A" * (2 * LONG_LINE) + b"\n"
    data = b"(0.5) can0 1#11\n" + huge + b"(2.0) can0 2#22\n"
    blocks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    rows = rows_of(iter_candump(blocks, tally))
    assert [row[1] for row in rows] == [1, 2]
    assert [(b.line, b.reason) for b in tally.first] == [(2, REASONS[16])]


def test_a_cut_off_gzip_file_keeps_what_came_before(tmp_path: Path) -> None:
    text = "".join(f"({i}.0) can0 {i % 0x800:03X}#{i % 256:02X}\n" for i in range(20000))
    packed = gzip.compress(text.encode())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    batch, report = read_log(path)
    expected = _python_can_candump(text, tmp_path)
    ours = rows_of([batch])
    assert 10000 < len(ours) < 20000
    assert ours[:-1] == expected[: len(ours) - 1]  # the last line may be cut in the middle
    reasons = [b.reason for b in report.bad_lines]
    assert any(r.startswith("compressed data ends early or is corrupt") for r in reasons)


def test_a_damaged_gzip_file_keeps_what_came_before(tmp_path: Path) -> None:
    text = "".join(f"({i}.0) can0 {i % 0x800:03X}#{i % 256:02X}\n" for i in range(20000))
    packed = bytearray(gzip.compress(text.encode()))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = b"\xff" * 64
    path = tmp_path / "damaged.log.gz"
    path.write_bytes(bytes(packed))
    batch, report = read_log(path)
    ours = rows_of([batch])
    expected = _python_can_candump(text, tmp_path)
    assert len(ours) > 5000
    assert ours[:-1] == expected[: len(ours) - 1]
    assert not report.ok


ASC_HEAD = """\
date Sam Sep 30 15:06:13.191 2017
base hex  timestamps absolute
internal events logged
// version 9.0.0
Begin Triggerblock Sam Sep 30 15:06:13.191 2017
   0.000000 Start of measurement
"""
ASC_LINES: list[tuple[str, str | None]] = [
    ("   1.000000 1  123             Rx   d 8 01 02 03 04 05 06 07 08", None),
    ("   1.100000 1  123             Rx   d 8 01 02 03", "3 data bytes where the DLC"),
    ("   1.200000 1  12G             Rx   d 2 01 02", "cannot parse frame"),
    ("   1.300000 1  124             Rx   d 2 0Z 02", "cannot parse frame"),
    ("   1.400000 1  125             Rx   d", "cannot parse frame"),
    ("   1.500000 1  126x            Tx   d 2 AA BB", None),
    ("   1.550000 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%", None),
    (
        " 1.600000 CANFD   2 Tx    123456x                                   1 0 9 12 00 01 "
        "02 03 04 05 06 07 08 09 0A 0B        0    0     3000        0        0        0",
        None,
    ),
    (" 1.700000 CANFD   2 Tx    123456x   1 0 9 12 00 01 02", "3 data bytes where the DLC"),
    (" 1.750000 CANFD   2 Tx    123456x   1 0", "cannot parse frame"),
    ("\ufffd\ufffd garbage that is no frame line", None),
    ("   1.780000 1  130             Rx   d 2 \ufffd\ufffd 00", "cannot parse frame"),
    ("   1.800000 2  129             Rx   r", None),
    ("   1.850000 1  FFFFFFFFFFx     Rx   d 1 00", "CAN id 0xffffffffff exceeds 29 bits"),
    ("   1.900000 1  ErrorFrame", None),
    ("End TriggerBlock", None),
]


def test_asc_bad_lines_are_reported_and_good_frames_read(tmp_path: Path) -> None:
    head = ASC_HEAD.count("\n")
    mixed = tmp_path / "mixed.asc"
    mixed.write_bytes(
        (ASC_HEAD + "".join(line + "\n" for line, _ in ASC_LINES))
        .encode()
        .replace("\ufffd".encode(), b"\xff")
    )
    good = tmp_path / "good.asc"
    good.write_text(ASC_HEAD + "".join(line + "\n" for line, bad in ASC_LINES if bad is None))
    expected, failure = python_can_rows(good)
    assert failure is None and len(expected) == 5
    _python_can_stops(mixed, ValueError)
    batch, report = read_log(mixed)
    assert rows_of([batch]) == expected
    bad = {head + n: reason for n, (_, reason) in enumerate(ASC_LINES, 1) if reason}
    assert sorted(bad) == [b.line for b in report.bad_lines]
    for b in report.bad_lines:
        assert b.reason.startswith(bad[b.line or 0]), b


TRC_V21 = """\
;$FILEVERSION=2.1
;$STARTTIME=44548.6028595139
;$COLUMNS=N,O,T,B,I,d,R,L,D
;
;   Message   Time    Type    ID     Rx/Tx
;---+-- ------+------ +- +- --+----- +- +- +--- +- -- -- -- -- -- -- --
"""
TRC_V21_LINES: list[tuple[str, str | None]] = [
    ("      1     17535.400 DT 1  00000100 Tx -  8    00 11 22 33 44 55 66 77", None),
    ("      2     17540.300 ST 1         - Rx -  4    00 00 00 08", None),
    ("      3     17700.300 DT 1  00000100 Tx -  8    00 11", "2 data bytes where the DLC"),
    ("      4     xx.300 DT 1  00000100 Tx -  2    00 11", "cannot parse frame"),
    ("      5     17800.300 DT 1  000001G0 Tx -  2    00 11", "cannot parse frame"),
    ("      6     17900.300 DT", "cannot parse frame"),
    ("\x00\x01\x02", "cannot parse frame"),
    ("      7     18000.300 FB 2      0704 Rx -  9    " + "AB " * 12, None),
    ("      8     48937.600 RR 1      0704 Rx -  1", None),
]

TRC_V11 = """\
;$FILEVERSION=1.1
;$STARTTIME=44548.6028595139
;   Message Number
;---+--   ----+----  --+--  ----+---  +  -+ -- -- -- -- -- -- --
"""
TRC_V11_LINES: list[tuple[str, str | None]] = [
    ("     1)     17535.4  Tx         0100  8  00 00 00 00 00 00 00 00", None),
    ("     2)     17540.3  Rx         0101  8  00 00 00", "cannot parse frame"),
    ("     3)     17540.3  Rx         0102  2  00 01", None),
    ("     4)     17540.3  Rx", "cannot parse frame"),
    ("     5)     17600.0  Rx     00000103  1  FF", None),
]


@pytest.mark.parametrize(
    ("head", "lines"), [(TRC_V21, TRC_V21_LINES), (TRC_V11, TRC_V11_LINES)], ids=["v2.1", "v1.1"]
)
def test_trc_bad_lines_are_reported_and_good_frames_read(
    tmp_path: Path, head: str, lines: list[tuple[str, str | None]]
) -> None:
    mixed = tmp_path / "mixed.trc"
    mixed.write_text(head + "".join(line + "\n" for line, _ in lines))
    good = tmp_path / "good.trc"
    good.write_text(head + "".join(line + "\n" for line, bad in lines if bad is None))
    expected, failure = python_can_rows(good)
    assert failure is None and expected
    batch, report = read_log(mixed)
    assert rows_of([batch]) == expected
    first = head.count("\n")
    bad = {first + n: reason for n, (_, reason) in enumerate(lines, 1) if reason}
    assert sorted(bad) == [b.line for b in report.bad_lines]
    for b in report.bad_lines:
        assert b.reason.startswith(bad[b.line or 0]), b


# BLF files written by python-can with small containers, so that there are many.


def _messages(n: int) -> list[can.Message]:
    msgs = []
    for i in range(n):
        kind = i % 5
        msgs.append(
            can.Message(
                timestamp=1_700_000_000 + i / 100,
                arbitration_id=(i * 7919) % (0x20000000 if kind == 1 else 0x800),
                is_extended_id=kind == 1,
                is_fd=kind == 2,
                bitrate_switch=kind == 2 and i % 2 == 0,
                is_remote_frame=kind == 3,
                is_error_frame=kind == 4 and i % 10 == 4,
                dlc=3 if kind == 3 else None,
                data=bytes((i + k) % 256 for k in range(12 if kind == 2 else i % 9)),
                channel=i % 3,
                is_rx=i % 4 != 0,
            )
        )
    return msgs


def _write_blf(path: Path, msgs: list[can.Message], compression_level: int = -1) -> None:
    writer = can.BLFWriter(path, max_container_size=600, compression_level=compression_level)
    for msg in msgs:
        writer.on_message_received(msg)
    writer.stop()


def _containers(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each top-level object, walked as python-can walks them."""
    pos = struct.unpack_from("<L", data, 4)[0]
    found = []
    while pos < len(data):
        size = struct.unpack_from("<L", data, pos + 8)[0]
        found.append((pos, size))
        pos += size + size % 4
    return found


def _is_subsequence(part: list[Row], whole: list[Row]) -> bool:
    it = iter(whole)
    return all(row in it for row in part)


@pytest.fixture
def blf(tmp_path: Path) -> tuple[Path, list[Row]]:
    path = tmp_path / "good.blf"
    _write_blf(path, _messages(300))
    rows, failure = python_can_rows(path)
    assert failure is None and len(rows) == 300
    return path, rows


def test_blf_corrupt_container_is_skipped(blf: tuple[Path, list[Row]], tmp_path: Path) -> None:
    path, expected = blf
    data = bytearray(path.read_bytes())
    containers = _containers(bytes(data))
    assert len(containers) > 20
    at, _ = containers[10]
    data[at + 32 : at + 34] = b"\xff\xff"  # the zlib header of its data
    bad_path = tmp_path / "bad.blf"
    bad_path.write_bytes(bytes(data))
    _python_can_stops(bad_path, zlib.error)
    batch, report = read_log(bad_path)
    ours = rows_of([batch])
    assert _is_subsequence(ours, expected)
    assert 300 - 20 < len(ours) < 300
    assert report.bad_lines[0].offset == at and report.bad_lines[0].line is None
    assert "does not decompress" in report.bad_lines[0].reason


def test_blf_garbage_between_containers_loses_nothing(
    blf: tuple[Path, list[Row]], tmp_path: Path
) -> None:
    path, expected = blf
    data = path.read_bytes()
    at, _ = _containers(data)[7]
    bad_path = tmp_path / "bad.blf"
    bad_path.write_bytes(data[:at] + b"\x13" * 37 + data[at:])
    batch, report = read_log(bad_path)
    assert rows_of([batch]) == expected
    (bad,) = report.bad_lines
    assert bad.offset == at and bad.reason == "no object here; skipped 37 bytes"


def test_blf_cut_off_inside_a_container(blf: tuple[Path, list[Row]], tmp_path: Path) -> None:
    path, expected = blf
    data = path.read_bytes()
    at, size = _containers(data)[-3]
    bad_path = tmp_path / "cut.blf"
    bad_path.write_bytes(data[: at + size // 2])
    batch, report = read_log(bad_path)
    ours = rows_of([batch])
    assert ours == expected[: len(ours)]
    assert 250 < len(ours) < 300
    assert report.bad_lines[-1].reason == "file ends inside this log container"


def test_blf_damaged_objects_inside_a_container(tmp_path: Path) -> None:
    path = tmp_path / "plain.blf"
    _write_blf(path, _messages(300), compression_level=0)
    expected, _ = python_can_rows(path)
    data = bytearray(path.read_bytes())
    at, _ = _containers(bytes(data))[5]
    first = data.index(b"LOBJ", at + 32)  # the first object inside the container
    data[first : first + 4] = b"XXXX"  # no longer an object
    second = data.index(b"LOBJ", first + 16)
    data[second + 8 : second + 12] = struct.pack("<L", 3)  # an impossible object size
    bad_path = tmp_path / "bad.blf"
    bad_path.write_bytes(bytes(data))
    batch, report = read_log(bad_path)
    ours = rows_of([batch])
    assert _is_subsequence(ours, expected)
    assert len(ours) == 298
    assert report.bad_line_count >= 2 and all(b.offset == at for b in report.bad_lines)


def test_blf_gz_reads_like_blf(blf: tuple[Path, list[Row]], tmp_path: Path) -> None:
    path, expected = blf
    packed = tmp_path / "good.blf.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    batch, report = read_log(packed)
    assert rows_of([batch]) == expected == python_can_rows(packed)[0]
    assert report.ok
