from __future__ import annotations

import subprocess
import sys

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
