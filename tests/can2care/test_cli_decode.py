"""``can2care decode`` end to end: log files in, a table and a summary out."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from can2care.cli import main
from dbc import DEMO_DBC as _DBC_NAME
from dbc import DEMO_MAP as _MAP_NAME
from dbc import data_file, demo_catalogue

DEMO_DBC = Path(str(data_file(_DBC_NAME)))
DEMO_MAP = Path(str(data_file(_MAP_NAME)))


def _frame_line(t: float, message_name: str, values: dict[str, float]) -> str:
    message = demo_catalogue().database.get_message_by_name(message_name)
    signals: dict[str, float] = {s.name: 0 for s in message.signals}
    data = message.encode(signals | values)
    frame_id = f"{message.frame_id:08X}" if message.is_extended_frame else f"{message.frame_id:03X}"
    return f"({t:.6f}) can0 {frame_id}#{data.hex().upper()}\n"


@pytest.fixture
def drive_log(tmp_path: Path) -> Path:
    lines = [
        _frame_line(1700000000.000100, "ESP_VehicleSpeed", {"VehicleSpeed": 52.3}),
        "(1700000000.000200) can0 0A0#0102030\n",  # odd number of hex digits
        _frame_line(1700000000.000300, "CLU_Odometer", {"Odometer": 12345.6}),
        "this is not a candump line\n",
        "(1700000000.000400) can0 555#0102\n",  # an id the DBC does not know
        _frame_line(1700000000.000500, "ESP_VehicleSpeed", {"VehicleSpeed": 53.1}),
    ]
    path = tmp_path / "drive.log"
    path.write_text("".join(lines))
    return path


def _speed(kmh: float) -> float:
    """The speed cantools reads back from a frame encoding ``kmh``."""
    message = demo_catalogue().database.get_message_by_name("ESP_VehicleSpeed")
    signals: dict[str, float] = {s.name: 0 for s in message.signals}
    decoded: Any = message.decode(
        message.encode(signals | {"VehicleSpeed": kmh}), decode_choices=False
    )
    return float(decoded["VehicleSpeed"])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["decode", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_decode_to_csv_with_summary(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.csv"
    code, stdout, _ = _run(
        capsys, str(drive_log), "--dbc", str(DEMO_DBC), "-o", str(out), "--no-progress"
    )
    assert code == 0
    rows = _rows(out)
    assert list(rows[0]) == ["timestamp", "frame_id", "message", "signal", "value"]
    speeds = [r["value"] for r in rows if r["signal"] == "VehicleSpeed"]
    assert speeds == [repr(_speed(52.3)), repr(_speed(53.1))]
    assert [r["timestamp"] for r in rows if r["signal"] == "VehicleSpeed"] == [
        "1700000000.0001",
        "1700000000.0005",
    ]
    odometer = [r for r in rows if r["message"] == "CLU_Odometer"]
    assert odometer[0]["frame_id"] == str(
        demo_catalogue().database.get_message_by_name("CLU_Odometer").frame_id
    )
    assert "frames read                 4" in stdout
    assert "decoded                     3" in stdout
    assert "unknown ids                 1  frames (1 ids: 0x555)" in stdout
    assert "bad lines                   2" in stdout
    assert f"{drive_log}:line 2:" in stdout
    assert f"{drive_log}:line 4:" in stdout


def test_decode_with_map_writes_vss_paths(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.csv"
    code, stdout, _ = _run(
        capsys,
        str(drive_log),
        "--dbc",
        str(DEMO_DBC),
        "--map",
        str(DEMO_MAP),
        "-o",
        str(out),
        "--no-progress",
    )
    assert code == 0
    rows = _rows(out)
    assert {r["signal"] for r in rows} >= {"Vehicle.Speed", "Vehicle.TraveledDistance"}
    assert all(r["signal"].startswith("Vehicle.") for r in rows)
    # the summary counts the samples written (the mapped signals'), apart from those decoded
    every = tmp_path / "every.csv"
    assert _run(capsys, str(drive_log), "--dbc", str(DEMO_DBC), "-o", str(every))[0] == 0
    decoded = len(_rows(every))
    assert 0 < len(rows) < decoded
    assert f"samples decoded  {decoded:>12,}\n" in stdout
    assert f"samples written  {len(rows):>12,}  to {out}\n" in stdout


def test_decode_several_gzip_logs_to_parquet_in_order(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = tmp_path / "second.log.gz"
    with gzip.open(second, "wt") as f:
        f.write(_frame_line(1700000001.0, "ESP_VehicleSpeed", {"VehicleSpeed": 99.0}))
    out = tmp_path / "out.parquet"
    code, _, _ = _run(
        capsys, str(drive_log), str(second), "--dbc", str(DEMO_DBC), "-o", str(out), "--no-progress"
    )
    assert code == 0
    table = pq.read_table(out).to_pydict()
    speeds = [
        v for s, v in zip(table["signal"], table["value"], strict=True) if s == "VehicleSpeed"
    ]
    assert speeds == [_speed(52.3), _speed(53.1), _speed(99.0)]


def test_wide_csv(drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wide.csv"
    assert (
        _run(
            capsys,
            str(drive_log),
            "--dbc",
            str(DEMO_DBC),
            "-o",
            str(out),
            "--wide",
            "--no-progress",
        )[0]
        == 0
    )
    rows = _rows(out)
    assert len(rows) == 3
    assert [r["ESP_VehicleSpeed.VehicleSpeed"] for r in rows] == [
        repr(_speed(52.3)),
        "",
        repr(_speed(53.1)),
    ]


def test_missing_log_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.log"
    code, _, err = _run(capsys, str(missing), "--dbc", str(DEMO_DBC), "-o", str(tmp_path / "o.csv"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert str(missing) in err


def test_broken_dbc_names_file_and_line(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.dbc"
    text = DEMO_DBC.read_text().splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith(" SG_ "))
    text[at] = ' SG_ Broken : 0|8@1+ (1,0 [0|255] "" Vector__XXX'
    broken.write_text("\n".join(text) + "\n")
    code, _, err = _run(capsys, str(drive_log), "--dbc", str(broken), "-o", str(tmp_path / "o.csv"))
    assert code == 1
    assert err.startswith(f"can2care: error: {broken}:{at + 1}:")
    assert len(err.strip().splitlines()) == 1


def test_unknown_output_format(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys, str(drive_log), "--dbc", str(DEMO_DBC), "-o", str(tmp_path / "o.json")
    )
    assert code == 1
    assert "unknown output format '.json'" in err


def test_unreadable_log_after_a_good_one_is_one_line(
    drive_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error while reading ahead (in the reading thread) still ends as one line, and an
    earlier output of the same name stays as it was."""
    garbage = tmp_path / "garbage.blf"
    garbage.write_bytes(b"this is not a BLF file at all" * 10)
    (tmp_path / "o.csv").write_text("earlier output\n")
    code, _, err = _run(
        capsys,
        str(drive_log),
        str(garbage),
        "--dbc",
        str(DEMO_DBC),
        "-o",
        str(tmp_path / "o.csv"),
        "--no-progress",
    )
    assert code == 1
    assert err.startswith("can2care: error: ")
    assert str(garbage) in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "o.csv").read_text() == "earlier output\n"
    assert not list(tmp_path.glob(".o.csv.*"))
