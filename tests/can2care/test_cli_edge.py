"""``can2care edge``: run the agent on a log against the test broker, check a configuration,
read the status file; errors are one line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from can2care.cli import main
from can2care.devservices import MqttEndpoint
from edge_agent.wire import decode_event, decode_telemetry, peek
from simulators import Scenario, write_log
from tests.edge_agent._drive import drive_frames, schema
from tests.edge_agent._own_catalogue import write_own_catalogue
from tests.edge_agent.agent._mqtt import Subscriber

# What an edge install lacks (tests/test_packaging.py keeps the edge lock free of them).
CLOUD_MODULES = ("fastapi", "psycopg", "psycopg_binary", "uvicorn", "starlette", "pydantic")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp: Path, broker: MqttEndpoint, log: Path, vehicle: str) -> Path:
    return _write(
        tmp / "agent.toml",
        f"""
[vehicle]
id = "{vehicle}"
vin = "C2CDEM00000000001"

[can]
log = "{log}"
replay_speed = 0

[mqtt]
host = "{broker.host}"
port = {broker.port}
password = "secret"
username = "car"

[outbox]
path = "{tmp / "outbox.sqlite"}"

[status]
file = "{tmp / "status.json"}"
""",
    )


def test_run_publishes_a_drive_with_a_crash(
    tmp_path: Path,
    mqtt_broker: MqttEndpoint,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = tmp_path / "crash.log"
    write_log(
        log,
        [
            drive_frames(
                90.0, seed=7, scenarios=[Scenario("crash", at=30.0, params={"min_speed_kmh": 20.0})]
            )
        ],
    )
    vehicle = f"cli-{tmp_path.name[-12:]}".replace("_", "-")
    config = _config(tmp_path, mqtt_broker, log, vehicle)
    subscriber = Subscriber(mqtt_broker.port, [f"v1/{vehicle}/#"])
    try:
        assert main(["edge", "run", "--config", str(config)]) == 0
        err = capsys.readouterr().err
        assert "records left in the outbox" in err
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["outbox_records"] == 0
        batches = subscriber.wait_for(f"v1/{vehicle}/telemetry", status["batches"])
        events = subscriber.wait_for(f"v1/{vehicle}/events", 1)
        states = subscriber.wait_for(f"v1/{vehicle}/status", 2)
    finally:
        subscriber.close()
    assert [peek(m.payload).sequence for m in batches] == list(range(status["batches"]))
    samples = sum(decode_telemetry(m.payload, schema()).samples for m in batches)
    assert samples == status["samples_sent"] > 0
    (event,) = [decode_event(m.payload) for m in events]
    assert event.vehicle_id == vehicle and event.vin == "C2CDEM00000000001"
    assert json.loads(states[0].payload)["state"] == "online"
    assert json.loads(states[-1].payload)["state"] == "offline"
    # a clean stop: nothing logged as an error (paho's "Client is not connected" was)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_config_prints_the_effective_settings_without_secrets(
    tmp_path: Path, mqtt_broker: MqttEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "x.log"
    log.write_text("")
    config = _config(tmp_path, mqtt_broker, log, "cfg-1")
    assert main(["edge", "config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    settings = json.loads(out)
    assert settings["vehicle"]["id"] == "cfg-1"
    assert settings["mqtt"]["password"] == "***"
    assert "secret" not in out


def test_a_wrong_config_is_one_line_naming_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path / "bad.toml", '[vehicle]\nid = "ok"\n\n[mqtt]\nport = 99999\n')
    assert main(["edge", "run", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("can2care edge: error: ")
    assert f"{bad}:5" in err and "mqtt.port" in err


def test_a_bad_trigger_expression_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "x.log"
    log.write_text("")
    bad = _write(
        tmp_path / "bad.toml",
        f'[vehicle]\nid = "ok"\n[can]\nlog = "{log}"\n[outbox]\npath = "{tmp_path / "o.sqlite"}"\n'
        '[[capture]]\nname = "x"\nwhen = "Vehicle.Sped > 3"\n',
    )
    assert main(["edge", "run", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{bad}: capture[0].when: Vehicle.Sped is not a VSS path" in err
    assert "did you mean Vehicle.Speed?" in err


OWN = """
[vehicle]
id = "abs-1"

[catalogue]
map = "abs.map.toml"

[can]
interface = "virtual"

[[sampling.rule]]
signals = ["Vehicle.Chassis.Axle.*.Speed", "Vehicle.Speed"]
mode = "all"

[[capture]]
name = "skid"
when = "abs(Vehicle.Acceleration.Lateral) > 8"
signals = ["Vehicle.Cabin.*"]
"""


def test_config_checks_every_path_against_the_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_own_catalogue(tmp_path)
    config = _write(tmp_path / "agent.toml", OWN)
    assert main(["edge", "config", "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("can2care edge: error: 5 problems in the configuration:")
    for key, path in [
        ("sampling.rule[0].signals", "'Vehicle.Speed'"),
        ("capture[0].signals", "'Vehicle.Cabin.*'"),
        ("crash.airbag_signal", "'Vehicle.Private.Crash.AirbagDeployed'"),
        ("crash.severity_signal", "'Vehicle.Private.Crash.Severity'"),
        ("crash.acceleration_signals", "'Vehicle.Acceleration.Longitudinal'"),
    ]:
        assert f"{config}: {key}: " in err and path in err, (key, err)


def test_config_on_an_own_catalogue_without_crash_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_own_catalogue(tmp_path)
    text = OWN.replace(', "Vehicle.Speed"', "").replace("Vehicle.Cabin.*", "Vehicle.Chassis.*")
    config = _write(tmp_path / "agent.toml", text + "\n[crash]\nenabled = false\n")
    assert main(["edge", "config", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["crash"]["enabled"] is False


def test_config_works_without_the_cloud_stack(tmp_path: Path) -> None:
    write_own_catalogue(tmp_path)
    config = _write(tmp_path / "agent.toml", OWN)
    blocked = ", ".join(repr(name) for name in CLOUD_MODULES)
    script = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys([{blocked}]))\n"
        "from can2care.cli import main\n"
        f"sys.exit(main(['edge', 'config', '--config', {str(config)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "5 problems in the configuration" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_without_a_status_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(tmp_path / "a.toml", '[vehicle]\nid = "ok"\n[can]\ninterface = "virtual"\n')
    assert main(["edge", "status", "--config", str(config)]) == 1
    assert "status.file is not set" in capsys.readouterr().err
