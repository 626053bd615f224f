"""The systemd unit that runs the edge agent on a gateway."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).parents[3] / "deploy" / "can2care-edge.service"


def read_unit(path: Path = UNIT) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def test_the_unit_runs_the_agent_with_its_configuration() -> None:
    service = read_unit()["Service"]
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "can2care"
    assert command[1:] == ["edge", "run", "--config", "/etc/can2care/agent.toml"]
    assert service["EnvironmentFile"] == "-/etc/can2care/agent.env"
    assert (service["Type"], service["Restart"], service["RestartSec"]) == ("simple", "always", "2")


def test_the_unit_runs_confined_as_its_own_user() -> None:
    service = read_unit()["Service"]
    assert service["User"] == "can2care"
    assert service["StateDirectory"] == "can2care"
    assert service["RuntimeDirectory"] == "can2care"
    assert service["ReadWritePaths"] == "/var/lib/can2care"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["AmbientCapabilities"] == ""
    families = set(service["RestrictAddressFamilies"].split())
    assert families >= {"AF_CAN", "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert service["MemoryMax"] == "200M"
    assert "MemoryDenyWriteExecute" not in service  # numba writes machine code


def test_the_default_outbox_is_in_the_state_directory() -> None:
    from edge_agent.config import OutboxConfig

    assert OutboxConfig().path.parent == Path("/var/lib/can2care")


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # scripts/setup installs systemd (its systemd-analyze), also where systemd does not run.
    assert shutil.which("systemd-analyze"), "systemd-analyze is absent: run scripts/setup"
    # The agent is not installed here, so the command points at an executable that exists.
    text = UNIT.read_text(encoding="utf-8")
    program = shlex.split(read_unit()["Service"]["ExecStart"])[0]
    executable = shutil.which("true")
    assert executable is not None
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(program, executable), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ours = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert ours == []
