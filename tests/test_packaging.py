"""The install is reproducible and the edge install stays free of the cloud stack."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOUD_ONLY = {"fastapi", "psycopg", "psycopg-binary", "uvicorn", "starlette", "pydantic"}


def _locked(name: str) -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", (ROOT / "requirements" / name).read_text(), re.MULTILINE
    )
    return {pkg.lower(): version for pkg, version in pins}


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return extras


def test_edge_lock_has_no_cloud_dependency() -> None:
    edge = _locked("edge.lock")
    assert {"python-can", "cantools", "numpy", "numba", "paho-mqtt"} <= set(edge)
    assert not CLOUD_ONLY & set(edge)


def test_locks_cover_every_declared_dependency() -> None:
    extras = _extras()
    edge, dev = _locked("edge.lock"), _locked("dev.lock")
    for requirement in extras["edge"]:
        assert _dist_name(requirement) in edge
    for requirement in extras["cloud"] + extras["dev"]:
        name = _dist_name(requirement)
        assert name == "can2care" or name in dev, f"{name} is not in dev.lock"
    shared = set(edge) & set(dev)
    assert {name: edge[name] for name in shared} == {name: dev[name] for name in shared}


def test_every_lock_line_is_hashed() -> None:
    for name in ("edge.lock", "dev.lock"):
        text = (ROOT / "requirements" / name).read_text()
        blocks = [b for b in re.split(r"\n(?=\S)", text) if "==" in b]
        assert blocks
        assert all("--hash=sha256:" in block for block in blocks)


def test_setup_second_run_changes_nothing() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup")], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "setup: Debian packages present",
        result.stdout.splitlines()[1],
        "setup: .venv up to date",
        "setup: ready: .venv/bin/can2care",
    ]
    assert result.stdout.splitlines()[1].startswith("setup: TimescaleDB present (")
