"""``can2care dbc show``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from can2care._cli_dbc import _ranges
from can2care.cli import main
from dbc import DEMO_DBC, DEMO_MAP, data_file, demo_catalogue


def _show(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["dbc", "show", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def _row(lines: list[str], first: str) -> list[str]:
    """The cells of the line whose first cell is ``first``."""
    (line,) = [line for line in lines if line.split()[:1] == [first]]
    return line.split()


def test_show_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _show(capsys)
    assert lines[0].split() == ["DBC", DEMO_DBC]
    assert lines[1].split() == ["map", DEMO_MAP]
    assert lines[2].split() == ["catalogue", demo_catalogue().catalogue_id]
    assert lines[3].startswith("contents   20 messages, ")
    assert lines[3].endswith("82 mapped to VSS")

    cells = ["BMS_CellStats", "0x2B0", "standard", "FD", "64", "bytes", "500", "ms", "from", "BMS"]
    assert _row(lines, "BMS_CellStats") == cells
    assert _row(lines, "TCU_GnssPosition")[:3] == ["TCU_GnssPosition", "0x18FF1025", "extended"]
    speed = ["VehicleSpeed", "0|16", "little", "unsigned", "0.01", "0", "km/h", "0..655.35"]
    assert _row(lines, "VehicleSpeed") == [*speed, "-", "-", "Vehicle.Speed"]
    assert _row(lines, "LongitudinalAccel")[1:4] == ["7|16", "big", "signed"]
    assert _row(lines, "LvBatteryVoltage")[3] == "float"
    assert _row(lines, "GnssLatitude")[4] == "1e-07"
    assert _row(lines, "IgnitionState")[-3:] == ["6", "-", "Vehicle.LowVoltageSystemState"]
    assert _row(lines, "DtcSlot")[-2:] == ["multiplexor", "Vehicle.Private.Diagnostics.DTC.Slot"]
    assert _row(lines, "DtcCode")[-2:] == ["DtcSlot=1-32", "Vehicle.Private.Diagnostics.DTC.Code"]
    assert _row(lines, "AcuChecksum")[-1] == "-"


def test_columns_are_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _show(capsys)
    headers = [line for line in lines if line.split()[:1] == ["signal"]]
    assert len(set(headers)) == 1
    vss_column = headers[0].index("VSS path")
    for line in lines:
        match = re.search(r"\sVehicle\.\S+$", line)
        if match:
            assert match.start() + 1 == vss_column, line


def test_a_dbc_with_a_sibling_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dbc_path = tmp_path / "car.dbc"
    dbc_path.write_bytes(data_file(DEMO_DBC).read_bytes())
    assert "VSS path" not in "\n".join(_show(capsys, str(dbc_path)))
    text = data_file(DEMO_MAP).read_text().replace(DEMO_DBC, "car.dbc")
    (tmp_path / "car.map.toml").write_text(text)
    lines = _show(capsys, str(dbc_path))
    assert lines[1].split() == ["map", str(tmp_path / "car.map.toml")]
    assert _row(lines, "VehicleSpeed")[-1] == "Vehicle.Speed"


def test_an_explicit_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dbc_path = tmp_path / "own.dbc"
    dbc_path.write_text(
        'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: Node\n\n'
        "BO_ 100 Tyres: 8 Node\n"
        ' SG_ Front : 0|16@1+ (0.1,0) [0|400] "kPa" Vector__XXX\n'
    )
    map_path = tmp_path / "maps" / "tyres.toml"
    map_path.parent.mkdir()
    map_path.write_text(
        'version = 1\ndbc = "../own.dbc"\n'
        '[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"]\n'
        'message = "Tyres"\nsignal = "Front"\nunit = "kPa"\n'
    )
    for args in ([str(dbc_path), "--map", str(map_path)], ["--map", str(map_path)]):
        lines = _show(capsys, *args)
        cells = ["Tyres", "0x064", "standard", "8", "bytes", "no", "cycle", "from", "Node"]
        assert _row(lines, "Tyres") == cells
        assert _row(lines, "Front")[-1] == "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"


def test_a_broken_dbc_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.dbc"
    path.write_text('VERSION ""\n\nBU_: A\n\nBO_ 1 M: 8 A\n SG_ S : 0|8@1+ (1,0 [0|255] "" A\n')
    assert main(["dbc", "show", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"can2care: error: {path}:6:22: invalid DBC syntax")
    assert captured.err.count("\n") == 1


def test_a_broken_map_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    map_path = tmp_path / "bad.map.toml"
    map_path.write_text("version = 3\nsignals = {}\n")
    assert main(["dbc", "show", "--map", str(map_path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"can2care: error: {map_path}:1: version: unsupported version 3 "
        "(this can2care reads version 1)\n"
    )


def test_a_missing_dbc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dbc", "show", str(tmp_path / "nope.dbc")]) == 1
    assert "nope.dbc: cannot read" in capsys.readouterr().err


def test_ranges() -> None:
    assert _ranges([]) == ""
    assert _ranges([0]) == "0"
    assert _ranges([5, 3, 4, 0, 9]) == "0,3-5,9"
