"""CSV and Parquet output of decoded batches, checked against cantools and the csv module."""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from pathlib import Path
from typing import Any

import cantools
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbc import demo_catalogue
from edge_agent.decoder import BatchDecoder
from edge_agent.export import ExportError, LongCsvWriter, WideCsvWriter, open_writer
from edge_agent.frames import FrameBatch, FrameFlag


def _demo_frames(n: int, seed: int = 3) -> tuple[Any, FrameBatch, list[Any]]:
    """Random frames of every demo message, some truncated, some unknown, some remote."""
    db = demo_catalogue().database
    rng = np.random.default_rng(seed)
    rows: list[tuple[float, int, int, bytes]] = []
    messages: list[Any] = []
    for i in range(n):
        message: Any = db.messages[int(rng.integers(0, len(db.messages)))]
        payload = bytearray(rng.integers(0, 256, message.length, dtype=np.uint8).tobytes())
        if message.is_multiplexed():
            payload[0] = int(rng.integers(0, 33))
        if i % 17 == 5:
            payload = payload[: int(rng.integers(0, len(payload)))]
        flags = (FrameFlag.EXTENDED if message.is_extended_frame else 0) | (
            FrameFlag.FD if message.is_fd else 0
        )
        frame_id = message.frame_id
        if i % 23 == 7:
            frame_id, message = 0x7FF, None
        elif i % 29 == 11:
            flags |= FrameFlag.REMOTE
            message = None
        rows.append((1_700_000_000.0 + i * 0.000731, frame_id, flags, bytes(payload)))
        messages.append(message)
    return db, FrameBatch.from_rows(rows), messages


def _reference_csv(batch: FrameBatch, messages: list[Any]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["timestamp", "frame_id", "message", "signal", "value"])
    for i, message in enumerate(messages):
        if message is None:
            continue
        decoded = message.decode(batch.payload(i), decode_choices=False, allow_truncated=True)
        for name, value in decoded.items():
            writer.writerow(
                [float(batch.timestamps[i]), int(batch.ids[i]), message.name, name, value]
            )
    return text.getvalue()


def test_long_csv_is_byte_identical_to_cantools_and_csv() -> None:
    db, batch, messages = _demo_frames(3000)
    decoder = BatchDecoder(db)
    out = io.BytesIO()
    with LongCsvWriter(out, decoder) as writer:
        half = len(batch) // 2
        for part in (slice(0, half), slice(half, len(batch))):
            writer.write(decoder.decode(_slice(batch, part)))
    assert out.getvalue().decode() == _reference_csv(batch, messages)


def _slice(batch: FrameBatch, part: slice) -> FrameBatch:
    return FrameBatch(
        batch.timestamps[part],
        batch.ids[part],
        batch.flags[part],
        batch.lengths[part],
        batch.data[part],
        batch.channels[part],
    )


def test_wide_csv_has_the_long_values() -> None:
    db, batch, _ = _demo_frames(800)
    decoder = BatchDecoder(db)
    long_out, wide_out = io.BytesIO(), io.BytesIO()
    result = decoder.decode(batch)
    with LongCsvWriter(long_out, decoder) as w:
        w.write(result)
    with WideCsvWriter(wide_out, decoder) as w:
        w.write(result)
    long_rows = list(csv.DictReader(io.StringIO(long_out.getvalue().decode())))
    wide_rows = list(csv.DictReader(io.StringIO(wide_out.getvalue().decode())))
    assert len(wide_rows) == result.stats.decoded
    expected: dict[tuple[str, str], str] = {
        (r["timestamp"], f"{r['message']}.{r['signal']}"): r["value"] for r in long_rows
    }
    got = {
        (r["timestamp"], column): value
        for r in wide_rows
        for column, value in r.items()
        if column not in ("timestamp", "frame_id", "message") and value != ""
    }
    assert got == expected


def test_parquet_long_and_wide(tmp_path: Path) -> None:
    db, batch, _ = _demo_frames(500)
    decoder = BatchDecoder(db)
    result = decoder.decode(batch)
    long_path, wide_path = tmp_path / "long.parquet", tmp_path / "wide.parquet"
    for path, wide in ((long_path, False), (wide_path, True)):
        writer = open_writer(path, decoder, wide=wide)
        writer.write(result)
        writer.close()
    table = pq.read_table(long_path).to_pydict()
    samples = result.long_form()
    assert table["value"] == [float(v) for v in samples.values] or all(
        a == b or (math.isnan(a) and math.isnan(b))
        for a, b in zip(table["value"], samples.values, strict=True)
    )
    assert table["signal"][:3] == [decoder.signals[s].name for s in samples.signals[:3]]
    assert list(table) == ["timestamp", "frame_id", "message", "signal", "value"]
    wide = pq.read_table(wide_path).to_pydict()
    speed = result.signal("ESP_VehicleSpeed.VehicleSpeed")
    assert [v for v in wide["ESP_VehicleSpeed.VehicleSpeed"] if v is not None] == list(speed.values)


def test_rename_writes_vss_paths_with_transforms() -> None:
    catalogue = demo_catalogue()
    decoder = BatchDecoder(catalogue.database)
    mapping = catalogue.mappings["Vehicle.Service.TimeToService"]
    message = catalogue.database.get_message_by_name(mapping.message)
    days = message.encode({s.name: 0 for s in message.signals} | {mapping.signal: 12})
    batch = FrameBatch.from_rows([(1.0, message.frame_id, 0, days)])
    rename = {
        (m.message, m.signal): (m.vss, m.scale, m.offset) for m in catalogue.mappings.values()
    }
    out = io.BytesIO()
    with LongCsvWriter(out, decoder, rename) as writer:
        writer.write(decoder.decode(batch))
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    by_signal = {r["signal"]: r["value"] for r in rows}
    assert by_signal["Vehicle.Service.TimeToService"] == repr(12 * 86400.0)
    assert all(r["signal"].startswith("Vehicle.") for r in rows)


def test_unknown_suffix_is_named(tmp_path: Path) -> None:
    decoder = BatchDecoder(demo_catalogue().database)
    with pytest.raises(ExportError, match=r"out\.xlsx: unknown output format '\.xlsx'"):
        open_writer(tmp_path / "out.xlsx", decoder)


def test_empty_batch_writes_only_the_header() -> None:
    decoder = BatchDecoder(demo_catalogue().database)
    out = io.BytesIO()
    with LongCsvWriter(out, decoder) as writer:
        writer.write(decoder.decode(FrameBatch.empty()))
    assert out.getvalue() == b"timestamp,frame_id,message,signal,value\n"


@pytest.mark.parametrize("suffix,wide", [(".csv", False), (".csv", True), (".parquet", False)])
def test_write_returns_the_samples_written(tmp_path: Path, suffix: str, wide: bool) -> None:
    """Every decoded sample without a map; with one, only the mapped signals' samples."""
    catalogue = demo_catalogue()
    _, batch, _ = _demo_frames(600)
    decoder = BatchDecoder(catalogue.database)
    result = decoder.decode(batch)
    rename = {
        (m.message, m.signal): (m.vss, m.scale, m.offset) for m in catalogue.mappings.values()
    }
    mapped = sum(
        len(result.column(info).rows)
        for info in decoder.signals
        if (info.message, info.name) in rename and result.message_frames[info.message_index]
    )
    assert 0 < mapped < result.stats.samples
    for names, expected in ((None, result.stats.samples), (rename, mapped)):
        path = tmp_path / f"out{suffix}"
        writer = open_writer(path, decoder, wide=wide, rename=names)
        try:
            written = writer.write(result)
        finally:
            writer.close()
        assert written == expected
        if suffix == ".parquet":
            assert pq.read_table(path).num_rows == expected
        elif not wide:
            assert path.read_text().count("\n") - 1 == expected


_SCALES_DBC = """VERSION ""
BS_:
BU_: ECU
BO_ 256 Scaled: 8 ECU
 SG_ Speed : 0|16@1+ (0.01,0) [0|655.35] "km/h" ECU
 SG_ Accel : 16|16@1- (0.01,0) [-327.68|327.67] "m/s2" ECU
 SG_ Temp : 32|8@1+ (0.5,-40) [-40|87.5] "degC" ECU
 SG_ Third : 40|12@1+ (0.333333333333,0) [0|1365] "" ECU
 SG_ Press : 52|12@1+ (0.05,-12.5) [0|200] "kPa" ECU
BO_ 257 Wide: 8 ECU
 SG_ Latitude : 0|32@1- (1E-07,0) [-90|90] "deg" ECU
 SG_ Big : 32|32@1+ (1000,0.25) [0|0] "" ECU
"""


@settings(max_examples=25, deadline=None)
@given(
    pool=st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=12),
    picks=st.lists(st.tuples(st.integers(0, 11), st.booleans()), min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=3),
)
def test_repeated_values_over_batches_match_cantools(
    pool: list[bytes], picks: list[tuple[int, bool]], cuts: list[int]
) -> None:
    """Values seen again (in the same batch or a later one) are written from the texts kept
    for them, which must be what repr writes, for every kind of scale and offset."""
    db: Any = cantools.database.load_string(_SCALES_DBC, "dbc")
    messages = [db.get_message_by_name("Scaled"), db.get_message_by_name("Wide")]
    rows, expected = [], []
    for i, (which, wide) in enumerate(picks):
        message = messages[wide]
        rows.append((1_700_000_000.0 + i * 0.0025, message.frame_id, 0, pool[which % len(pool)]))
        expected.append(message)
    batch = FrameBatch.from_rows(rows)
    decoder = BatchDecoder(db)
    bounds = sorted({0, len(rows), *(min(c, len(rows)) for c in cuts)})
    out = io.BytesIO()
    with LongCsvWriter(out, decoder) as writer:
        for lo, hi in itertools.pairwise(bounds):
            writer.write(decoder.decode(_slice(batch, slice(lo, hi))))
    assert out.getvalue().decode() == _reference_csv(batch, expected)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_replaces_an_earlier_file_only_when_complete(tmp_path: Path, suffix: str) -> None:
    """The output appears under its name on close; a run that stops (an error, a discard)
    leaves an earlier file of the name as it was and no partial file beside it."""
    decoder = BatchDecoder(demo_catalogue().database)
    _, batch, _ = _demo_frames(200)
    result = decoder.decode(batch)
    path = tmp_path / f"out{suffix}"
    path.write_bytes(b"earlier output")

    writer = open_writer(path, decoder)
    writer.write(result)
    assert path.read_bytes() == b"earlier output"  # nothing replaced while writing
    writer.discard()
    assert path.read_bytes() == b"earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]

    if suffix == ".csv":
        with pytest.raises(RuntimeError, match="stopped"), LongCsvWriter(path, decoder) as w:
            w.write(result)
            raise RuntimeError("stopped")
        assert path.read_bytes() == b"earlier output"
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]

    writer = open_writer(path, decoder)
    written = writer.write(result)
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    if suffix == ".csv":
        assert path.read_text().count("\n") - 1 == written
    else:
        assert pq.read_table(path).num_rows == written


@pytest.mark.parametrize("mode", [0o640, 0o666])
def test_output_keeps_the_earlier_files_permissions(tmp_path: Path, mode: int) -> None:
    """Whatever the umask: 0o666 is the mode a new file asks for, not the one it gets."""
    decoder = BatchDecoder(demo_catalogue().database)
    path = tmp_path / "out.csv"
    path.write_text("earlier\n")
    path.chmod(mode)
    previous = os.umask(0o022)
    try:
        with LongCsvWriter(path, decoder) as writer:
            writer.write(decoder.decode(_demo_frames(50)[1]))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode
    assert path.read_text().startswith("timestamp,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_database_without_signals_writes_the_header() -> None:
    db: Any = cantools.database.load_string(
        'VERSION ""\nBS_:\nBU_: ECU\nBO_ 256 Empty: 8 ECU\n', "dbc"
    )
    decoder = BatchDecoder(db)
    batch = FrameBatch.from_rows([(1.0, 256, 0, bytes(8)), (2.0, 257, 0, bytes(8))])
    for writer_type in (LongCsvWriter, WideCsvWriter):
        out = io.BytesIO()
        with writer_type(out, decoder) as writer:
            assert writer.write(decoder.decode(batch)) == 0
        assert out.getvalue().decode().count("\n") == (1 if writer_type is LongCsvWriter else 2)
