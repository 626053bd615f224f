"""Loading catalogues: the demo, a user's own files, and every way a file can be wrong."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbc import (
    DEMO_DBC,
    DEMO_MAP,
    Catalogue,
    CatalogueError,
    DbcError,
    SignalMapError,
    SignalMapping,
    data_file,
    demo_catalogue,
    load_catalogue,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cantools-dbc"

OWN_DBC = """\
VERSION ""

NS_ :

BS_:

BU_: Gateway Sensor

BO_ 291 Wheels: 8 Sensor
 SG_ FrontLeft : 0|16@1+ (0.1,0) [0|400] "kPa" Gateway
 SG_ FrontRight : 16|16@1+ (0.1,0) [0|400] "kPa" Gateway
 SG_ Mode : 32|2@1+ (1,0) [0|3] "" Gateway

BO_ 2147484180 Service: 8 Sensor
 SG_ Days : 7|16@0- (1,0) [-1000|1000] "d" Gateway

BA_DEF_ BO_  "GenMsgCycleTime" INT 0 10000;
BA_DEF_DEF_  "GenMsgCycleTime" 0;
BA_ "GenMsgCycleTime" BO_ 291 200;
VAL_ 291 Mode 0 "OFF" 1 "ON" ;
"""

OWN_MAP = """\
version = 1
dbc = "own.dbc"

[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"]
message = "Wheels"
signal = "FrontLeft"
unit = "kPa"

[signals."Vehicle.Service.TimeToService"]
message = "Service"
signal = "Days"
unit = "s"
scale = 86400
"""


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return demo_catalogue()


@pytest.fixture
def own(tmp_path: Path) -> tuple[Path, Path]:
    dbc_path, map_path = tmp_path / "own.dbc", tmp_path / "own.map.toml"
    dbc_path.write_text(OWN_DBC)
    map_path.write_text(OWN_MAP)
    return dbc_path, map_path


def _copy_demo(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    dbc_path, map_path = directory / DEMO_DBC, directory / DEMO_MAP
    dbc_path.write_bytes(data_file(DEMO_DBC).read_bytes())
    map_path.write_bytes(data_file(DEMO_MAP).read_bytes())
    return dbc_path, map_path


# --- the demo and the API --------------------------------------------------------------


def test_demo_catalogue(demo: Catalogue) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", demo.catalogue_id)
    assert (demo.dbc_source, demo.map_source) == (DEMO_DBC, DEMO_MAP)
    assert len(demo.database.messages) == 20
    speed = demo.mappings["Vehicle.Speed"]
    assert speed == SignalMapping("Vehicle.Speed", "ESP_VehicleSpeed", "VehicleSpeed", "km/h")
    assert demo.vss_path("ESP_VehicleSpeed", "VehicleSpeed") == "Vehicle.Speed"
    assert demo.vss_by_signal[("ESP_VehicleSpeed", "VehicleSpeed")] == "Vehicle.Speed"
    assert demo.mapping_for("ESP_VehicleSpeed", "VehicleSpeed") is speed
    assert demo.vss_path("ESP_VehicleSpeed", "SpeedCounter") is None
    assert demo.mapping_for("NoSuchMessage", "VehicleSpeed") is None
    assert len(demo.vss_by_signal) == len(demo.mappings)
    assert next(iter(demo.mappings)) == "Vehicle.Speed"  # the file's order


def test_catalogue_is_immutable_and_compares_by_id(demo: Catalogue, tmp_path: Path) -> None:
    with pytest.raises(AttributeError):
        demo.catalogue_id = "0" * 16  # type: ignore[misc]
    with pytest.raises(TypeError):
        demo.mappings["Vehicle.Speed"] = demo.mappings["Vehicle.Speed"]  # type: ignore[index]
    again = load_catalogue(*_copy_demo(tmp_path))
    assert again == demo and hash(again) == hash(demo)
    assert again.database is not demo.database
    assert repr(demo) == (
        f"Catalogue(catalogue_id='{demo.catalogue_id}', dbc_source='{DEMO_DBC}', "
        f"map_source='{DEMO_MAP}')"
    )


def test_signal_mapping_transform() -> None:
    plain = SignalMapping("Vehicle.Speed", "M", "S", "km/h")
    assert not plain.has_transform and plain.apply(12) == 12
    days = SignalMapping("Vehicle.Service.TimeToService", "M", "S", "s", scale=86400.0)
    assert days.has_transform and days.apply(-2) == -172800.0
    kelvin = SignalMapping("Vehicle.X.Y", "M", "S", "K", offset=273.15)
    assert kelvin.apply(0.0) == 273.15


def test_a_dbc_without_a_map(demo: Catalogue, tmp_path: Path) -> None:
    dbc_path, _ = _copy_demo(tmp_path)
    bare = load_catalogue(dbc_path)
    assert bare.mappings == {} and bare.map_source is None
    assert bare.vss_path("ESP_VehicleSpeed", "VehicleSpeed") is None
    assert bare.catalogue_id != demo.catalogue_id


def test_the_map_can_name_its_dbc(demo: Catalogue, tmp_path: Path) -> None:
    _, map_path = _copy_demo(tmp_path / "elsewhere")
    catalogue = load_catalogue(None, map_path)
    assert catalogue == demo
    assert catalogue.dbc_source == str(tmp_path / "elsewhere" / DEMO_DBC)


def test_a_map_used_with_another_dbc_is_logged(
    own: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dbc_path, map_path = own
    renamed = tmp_path / "renamed.dbc"
    shutil.copy(dbc_path, renamed)
    with caplog.at_level(logging.WARNING, logger="dbc"):
        load_catalogue(renamed, map_path)
    assert "was written for" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dbc"):
        load_catalogue(dbc_path, map_path)
    assert caplog.text == ""


def test_a_users_own_dbc_and_map(own: tuple[Path, Path]) -> None:
    catalogue = load_catalogue(*own)
    pressure = catalogue.mappings["Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"]
    assert (pressure.message, pressure.signal, pressure.unit) == ("Wheels", "FrontLeft", "kPa")
    days = catalogue.mappings["Vehicle.Service.TimeToService"]
    assert (days.scale, days.offset) == (86400.0, 0.0)
    service = catalogue.database.get_message_by_name("Service")
    assert service.is_extended_frame and service.frame_id == 0x214
    assert catalogue.vss_path("Service", "Days") == "Vehicle.Service.TimeToService"


def test_a_map_without_a_dbc_key_needs_a_dbc(own: tuple[Path, Path]) -> None:
    dbc_path, map_path = own
    map_path.write_text(OWN_MAP.replace('dbc = "own.dbc"\n', ""))
    assert len(load_catalogue(dbc_path, map_path).mappings) == 2
    with pytest.raises(SignalMapError) as info:
        load_catalogue(None, map_path)
    assert info.value.field == "dbc"
    with pytest.raises(TypeError):
        load_catalogue(None)


def test_importing_the_package_does_not_import_cantools() -> None:
    code = "import sys, dbc; print('cantools' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- the catalogue id ------------------------------------------------------------------


def test_catalogue_id_ignores_paths_and_toml_formatting(own: tuple[Path, Path]) -> None:
    dbc_path, map_path = own
    reference = load_catalogue(dbc_path, map_path).catalogue_id
    reformatted = """\
# the same map, written differently
dbc = "somewhere/else.dbc"
version = 1

[signals]
"Vehicle.Service.TimeToService" = { message = "Service", signal = "Days", unit = "s", \
scale = 86400.0, offset = 0 }

[signals.'Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure']
unit    = "kPa"   # comment
signal  = "FrontLeft"
message = "Wheels"
scale = 1
"""
    other = map_path.parent / "sub" / "other.map.toml"
    other.parent.mkdir()
    other.write_text(reformatted)
    crlf = map_path.parent / "sub" / "crlf.dbc"
    crlf.write_bytes(OWN_DBC.replace("\n", "\r\n").encode())
    assert load_catalogue(crlf, other).catalogue_id == reference


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('unit = "kPa"', 'unit = "bar"'),
        ("scale = 86400", "scale = 86400.5"),
        ("scale = 86400", "scale = 86400\noffset = 1"),
        ('signal = "FrontLeft"', 'signal = "FrontRight"'),
        ("Row1.Wheel.Left", "Row1.Wheel.Right"),
    ],
)
def test_catalogue_id_changes_with_any_mapping(own: tuple[Path, Path], old: str, new: str) -> None:
    dbc_path, map_path = own
    reference = load_catalogue(dbc_path, map_path).catalogue_id
    map_path.write_text(OWN_MAP.replace(old, new))
    assert load_catalogue(dbc_path, map_path).catalogue_id != reference


def test_catalogue_id_changes_with_the_dbc(own: tuple[Path, Path]) -> None:
    dbc_path, map_path = own
    reference = load_catalogue(dbc_path, map_path).catalogue_id
    dbc_path.write_text(OWN_DBC.replace("(0.1,0) [0|400]", "(0.2,0) [0|400]", 1))
    assert load_catalogue(dbc_path, map_path).catalogue_id != reference


# --- broken DBCs -----------------------------------------------------------------------


def _broken_demo(tmp_path: Path, old: str, new: str) -> Path:
    text = data_file(DEMO_DBC).read_text(encoding="ascii")
    assert old in text
    path = tmp_path / "broken.dbc"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        # a syntax error in the middle of the file: a missing parenthesis
        ("(0.01,0) [0|655.35]", "(0.01,0 [0|655.35]", "SG_ VehicleSpeed :", "invalid DBC syntax"),
        # a bad signal definition: a byte order that is neither 0 nor 1
        ("WheelSpeedFR : 16|16@1+", "WheelSpeedFR : 16|16@2+", "WheelSpeedFR", "byte order"),
        # a bad signal definition: a character that is no DBC token
        ("OilTemp : 40|8@1+", "OilTemp : 40|8@1+ %", "OilTemp", "invalid DBC syntax"),
        # a standard frame id wider than 11 bits
        ("BO_ 288 ECM_EngineData", "BO_ 4096 ECM_EngineData", "BO_ 4096", "more than 11 bits"),
        # a value table for a signal that does not exist
        ("VAL_ 80 CrashType", "VAL_ 80 CrashKind", "VAL_ 80 CrashKind", "VAL_"),
    ],
)
def test_a_broken_dbc_names_the_file_and_the_line(
    tmp_path: Path, old: str, new: str, needle: str, words: str
) -> None:
    path = _broken_demo(tmp_path, old, new)
    with pytest.raises(DbcError) as info:
        load_catalogue(path)
    error = info.value
    assert error.path == str(path)
    assert error.line == _line_of(path, needle)
    assert str(error).startswith(f"{path}:{error.line}:")
    assert words in str(error)
    assert "\n" not in str(error)


def test_a_syntax_error_has_a_column(tmp_path: Path) -> None:
    path = _broken_demo(tmp_path, "(0.01,0) [0|655.35]", "(0.01,0 [0|655.35]")
    with pytest.raises(DbcError) as info:
        load_catalogue(path)
    line = path.read_text().splitlines()[info.value.line - 1]  # type: ignore[operator]
    assert info.value.column == line.index("[0|655.35]") + 1
    assert ">>!<<[0|655.35]" in str(info.value)


def test_a_dbc_that_loads_only_without_strict_checks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _broken_demo(tmp_path, "WheelSpeedFR : 16|16@1+", "WheelSpeedFR : 8|16@1+")
    with caplog.at_level(logging.WARNING, logger="dbc"):
        catalogue = load_catalogue(path)
    assert catalogue.database.get_message_by_name("ESP_WheelSpeeds") is not None
    (record,) = caplog.records
    assert "without strict checks" in record.getMessage()
    assert f"line {_line_of(path, 'WheelSpeedFR')}" in record.getMessage()
    assert "overlapping" in record.getMessage()


def test_an_unreadable_dbc(tmp_path: Path) -> None:
    with pytest.raises(DbcError, match=r"missing\.dbc: cannot read"):
        load_catalogue(tmp_path / "missing.dbc")
    with pytest.raises(DbcError, match="cannot read"):
        load_catalogue(tmp_path)


def test_errors_form_one_tree() -> None:
    assert issubclass(DbcError, CatalogueError) and issubclass(SignalMapError, CatalogueError)
    assert str(CatalogueError("  two\n lines ")) == "two lines"
    assert str(SignalMapError("bad", path="m.toml", line=3, field="version")) == (
        "m.toml:3: version: bad"
    )


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.dbc")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the DBC corpus is not at {CORPUS}")
@pytest.mark.parametrize("path", _corpus(), ids=lambda path: path.name)
def test_every_corpus_dbc_loads_or_names_the_file(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        catalogue = load_catalogue(path)
    except DbcError as exc:
        assert str(exc).startswith(f"{path}:")
        assert "\n" not in str(exc)
    else:
        assert catalogue.mappings == {}
        assert re.fullmatch(r"[0-9a-f]{16}", catalogue.catalogue_id)


# --- broken maps -----------------------------------------------------------------------


def _map_error(own: tuple[Path, Path], text: str) -> SignalMapError:
    dbc_path, map_path = own
    map_path.write_text(text)
    with pytest.raises(SignalMapError) as info:
        load_catalogue(dbc_path, map_path)
    error = info.value
    assert error.path == str(map_path)
    assert str(error).startswith(str(map_path))
    assert "\n" not in str(error)
    return error


PRESSURE = '[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"]'
PRESSURE_FIELD = 'signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"'
DAYS_FIELD = 'signals."Vehicle.Service.TimeToService"'


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "words"),
    [
        ('message = "Wheels"', 'message = "Wheel"', f"{PRESSURE_FIELD}.message", 5, "'Wheels'"),
        ('signal = "FrontLeft"', 'signal = "FrontLeftt"', f"{PRESSURE_FIELD}.signal", 6, "unknown"),
        ('signal = "FrontLeft"\n', "", f"{PRESSURE_FIELD}.signal", 4, "missing key"),
        ('message = "Wheels"', "message = 3", f"{PRESSURE_FIELD}.message", 5, "an integer (3)"),
        ('unit = "kPa"', "unit = true", f"{PRESSURE_FIELD}.unit", 7, "a boolean"),
        ('unit = "kPa"', 'unit = ""', f"{PRESSURE_FIELD}.unit", 7, "non-empty string"),
        ('unit = "kPa"', "sacle = 2.0", f"{PRESSURE_FIELD}.sacle", 7, "unknown key"),
        ("scale = 86400", "scale = 0", f"{DAYS_FIELD}.scale", 13, "zero"),
        ("scale = 86400", 'scale = "x"', f"{DAYS_FIELD}.scale", 13, "number"),
        ("scale = 86400", "scale = nan", f"{DAYS_FIELD}.scale", 13, "finite"),
        ("scale = 86400", "offset = inf", f"{DAYS_FIELD}.offset", 13, "finite"),
        ("version = 1", "version = 2", "version", 1, "unsupported version 2"),
        ("version = 1", 'version = "1"', "version", 1, "integer"),
        ("version = 1", "", "version", None, "missing key"),
        ('dbc = "own.dbc"', "dbc = 1", "dbc", 2, "file name"),
        ('dbc = "own.dbc"', 'dbs = "own.dbc"', "dbs", 2, "unknown key"),
        (PRESSURE, '[signals."vehicle speed"]', 'signals."vehicle speed"', 4, "not a VSS path"),
        (
            '[signals."Vehicle.Service.TimeToService"]',
            '[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure.Raw"]',
            'signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure.Raw"',
            9,
            "branch",
        ),
        (
            '[signals."Vehicle.Service.TimeToService"]',
            '[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.PRESSURE"]',
            'signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.PRESSURE"',
            9,
            "only in case",
        ),
    ],
)
def test_a_bad_map_names_the_file_the_line_and_the_field(
    own: tuple[Path, Path], old: str, new: str, field: str, line: int | None, words: str
) -> None:
    assert old in OWN_MAP
    error = _map_error(own, OWN_MAP.replace(old, new, 1))
    assert (error.field, error.line) == (field, line)
    assert words in str(error)
    assert field in str(error)


def test_unknown_names_get_suggestions(own: tuple[Path, Path]) -> None:
    error = _map_error(own, OWN_MAP.replace('message = "Wheels"', 'message = "Wheel"'))
    assert "unknown message 'Wheel' (did you mean 'Wheels'?)" in str(error)
    error = _map_error(own, OWN_MAP.replace('signal = "FrontLeft"', 'signal = "FrontLeftt"'))
    assert "unknown signal 'FrontLeftt' in message 'Wheels' (did you mean 'FrontLeft'?)" in str(
        error
    )


def test_a_duplicate_vss_path(own: tuple[Path, Path]) -> None:
    text = OWN_MAP + f'\n{PRESSURE}\nmessage = "Wheels"\nsignal = "FrontRight"\n'
    error = _map_error(own, text)
    assert error.line == len(OWN_MAP.splitlines()) + 2
    assert error.column is not None
    assert "invalid TOML" in str(error) and "twice" in str(error)


def test_a_signal_mapped_twice(own: tuple[Path, Path]) -> None:
    extra = '[signals."Vehicle.Private.Pressure"]\nmessage = "Wheels"\nsignal = "FrontLeft"\n'
    text = f"{OWN_MAP}\n{extra}"
    error = _map_error(own, text)
    assert error.field == 'signals."Vehicle.Private.Pressure".signal'
    assert error.line == len(OWN_MAP.splitlines()) + 4
    assert "already mapped to 'Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure'" in str(error)


def test_a_value_table_signal_cannot_be_transformed(own: tuple[Path, Path]) -> None:
    text = OWN_MAP + '\n[signals."Vehicle.Private.Mode"]\nmessage = "Wheels"\nsignal = "Mode"\n'
    assert load_catalogue(own[0], _write(own[1], text)).vss_path("Wheels", "Mode")
    error = _map_error(own, text + "offset = 1\n")
    assert error.field == 'signals."Vehicle.Private.Mode".offset'
    assert "value table" in str(error)


def test_invalid_toml_and_wrong_shapes(own: tuple[Path, Path]) -> None:
    error = _map_error(own, OWN_MAP.replace('unit = "kPa"', "unit = kPa"))
    assert (error.line, error.column) == (7, 8)
    assert str(error).startswith(f"{own[1]}:7:8: invalid TOML: Invalid value")
    error = _map_error(own, 'version = 1\nsignals = ["Vehicle.Speed"]\n')
    assert (error.field, error.line) == ("signals", 2)
    error = _map_error(own, "version = 1\n")
    assert error.field == "signals"
    error = _map_error(own, 'version = 1\n[signals]\n"Vehicle.Speed" = 3\n')
    assert (error.field, error.line) == ('signals."Vehicle.Speed"', 3)


def test_an_unreadable_map(own: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(SignalMapError, match=r"nothing\.toml: cannot read"):
        load_catalogue(own[0], tmp_path / "nothing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"version = 1\n\xff\xfe")
    with pytest.raises(SignalMapError, match="not UTF-8"):
        load_catalogue(own[0], binary)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
