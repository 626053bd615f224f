"""``can2care edge``: run the agent on a log against the test broker, check a configuration,
read the status file; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from can2care.cli import main
from can2care.devservices import MqttEndpoint
from edge_agent.wire import decode_event, decode_telemetry, peek
from simulators import Scenario, write_log
from tests.edge_agent._drive import drive_frames, schema
from tests.edge_agent.agent._mqtt import Subscriber


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
    tmp_path: Path, mqtt_broker: MqttEndpoint, capsys: pytest.CaptureFixture[str]
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
    assert "capture 'x': when: Vehicle.Sped is not a VSS path" in err
    assert "did you mean Vehicle.Speed?" in err


def test_status_without_a_status_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(tmp_path / "a.toml", '[vehicle]\nid = "ok"\n[can]\ninterface = "virtual"\n')
    assert main(["edge", "status", "--config", str(config)]) == 1
    assert "status.file is not set" in capsys.readouterr().err
