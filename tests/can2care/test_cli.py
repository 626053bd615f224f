from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from can2care import __version__
from can2care.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("services", "smoke"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"can2care {__version__}"


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "can2care", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"can2care {__version__}"


def test_help_does_not_import_the_cloud_stack() -> None:
    """``can2care --help`` must work on an edge install, without FastAPI or psycopg."""
    code = (
        "import sys; from can2care.cli import build_parser; build_parser(); "
        "heavy = {'fastapi', 'psycopg', 'paho', 'numba', 'cantools'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_closed_pipe_is_not_a_traceback() -> None:
    """``can2care dbc show | head -1`` ends quietly when head stops reading."""
    shell = f"{sys.executable} -m can2care dbc show | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, check=False
    )
    assert result.stdout.startswith("DBC")
    assert "Traceback" not in result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    "command",
    [["vehicles", "import", "VEHICLES"], ["api", "token", "list"]],
    ids=["vehicles-import", "api-token-list"],
)
def test_a_database_without_timescaledb_is_one_line_naming_the_fix(
    command: list[str], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command that migrates the database says what to do, without a traceback."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION timescaledb")
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text(
        "vehicle_id,vin,model,propulsion,delivery_date,owner_ref,region,tags,catalogues\n"
        "veh-1,,,,,,,,\n"
    )
    args = [str(vehicles) if a == "VEHICLES" else a for a in command]
    if command[0] == "api":
        args[1:1] = ["--database", db_url]
    else:
        args += ["--database", db_url]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("can2care: error: ") and err.count("\n") == 1
    assert "has no timescaledb extension" in err and "CREATE EXTENSION timescaledb" in err
