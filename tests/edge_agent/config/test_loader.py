"""Loading the configuration: defaults, the example file, layers and their precedence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.config import (
    AgentConfig,
    ConfigValueError,
    SamplingPolicy,
    TlsConfig,
    VehicleConfig,
    load_config,
)

EXAMPLE = Path(__file__).parents[3] / "deploy" / "agent.example.toml"
BASE = {"vehicle.id": "demo-0001", "can.interface": "virtual"}


def test_defaults() -> None:
    config = load_config(None, env={}, overrides=BASE)
    assert config == AgentConfig(
        vehicle=VehicleConfig(id="demo-0001"),
        can=config.can,
        mqtt=config.mqtt,
    )
    assert config.can.interface == "virtual"
    assert config.can.extra == {}
    assert config.can.log is None
    assert config.mqtt.client_id == "can2care-demo-0001"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("localhost", 1883, None)
    assert config.sampling.default == SamplingPolicy(mode="interval", period_s=1.0)
    assert config.outbox.max_bytes == 256 * 1024 * 1024
    assert config.outbox.path == Path("/var/lib/can2care/outbox.sqlite")
    assert config.source is None


def test_the_minimal_file(write: Callable[..., Path]) -> None:
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        interface = "socketcan"
        channel = "can0"
        """
    )
    config = load_config(path, env={})
    assert config.source == str(path)
    assert (config.can.interface, config.can.channel) == ("socketcan", "can0")


def test_the_example_file_loads_with_every_section() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.source == str(EXAMPLE)
    assert config.vehicle.vin == "WDD2120341A123456"
    assert config.can.fd is True
    assert config.can.extra == {"ignore_rx_error_frames": True}
    assert len(config.sampling.rules) == 4
    assert config.sampling.policy_for("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure") == (
        SamplingPolicy(mode="deadband", deadband=5.0, min_interval_s=1.0, max_interval_s=300.0)
    )
    assert config.sampling.policy_for("Vehicle.Private.Diagnostics.DTC.Slot").mode == "off"
    assert config.sampling.policy_for("Vehicle.Private.Diagnostics.DTC.Code").mode == "on_change"
    assert config.sampling.policy_for("Vehicle.TraveledDistance") == config.sampling.default
    assert [capture.name for capture in config.captures] == ["hard-braking"]
    assert config.mqtt.tls == TlsConfig()
    assert config.mqtt.port == 8883
    assert config.status.file == Path("/run/can2care/status.json")
    assert config.topic("events") == "v1/demo-0001/events"


def test_the_example_documents_every_key() -> None:
    """Every key of the model appears in the example, set or commented out."""
    text = EXAMPLE.read_text(encoding="utf-8")
    rendered = load_config(EXAMPLE, env={}).to_dict()
    for section, keys in rendered.items():
        if section == "source":
            continue
        assert f"[{section}]" in text or f"[[{section}]]" in text, section
        entries = keys[0] if isinstance(keys, list) else keys
        assert isinstance(entries, dict)
        for key in entries:
            if key not in ("default", "rule", "tls", "extra"):
                assert f"{key} =" in text, f"{section}.{key}"
            else:
                assert f"[{section}.{key}]" in text, f"{section}.{key}"


def test_the_reference_documents_every_key() -> None:
    text = (EXAMPLE.parents[1] / "docs" / "edge-agent-config.md").read_text(encoding="utf-8")
    rendered = load_config(EXAMPLE, env={}).to_dict()
    sampling = rendered["sampling"]
    mqtt = rendered["mqtt"]
    assert isinstance(sampling, dict)
    assert isinstance(mqtt, dict)
    tables = [value for value in rendered.values() if isinstance(value, dict)]
    tables += [rendered["capture"][0], sampling["default"], mqtt["tls"]]  # type: ignore[index]
    for table in tables:
        for key in table:
            assert f"| `{key}` |" in text, key


def test_the_environment_overrides_the_file(write: Callable[..., Path]) -> None:
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        interface = "virtual"
        [mqtt]
        host = "broker.example.net"
        port = 1883
        """
    )
    env = {
        "CAN2CARE_EDGE__MQTT__PORT": "1884",
        "can2care_edge__mqtt__keepalive_s": "60",
        "CAN2CARE_EDGE__MQTT__TLS": "true",
        "CAN2CARE_EDGE__CRASH__ACCELERATION_SIGNALS": '["Vehicle.Acceleration.Vertical"]',
        "CAN2CARE_EDGE__VEHICLE__PROPULSION": "hybrid",
        "CAN2CARE_EDGE__OUTBOX__MAX_BYTES": "1GB",
        "OTHER__MQTT__PORT": "1",
    }
    config = load_config(path, env=env)
    assert config.mqtt.host == "broker.example.net"
    assert (config.mqtt.port, config.mqtt.keepalive_s) == (1884, 60)
    assert config.mqtt.tls == TlsConfig()
    assert config.crash.acceleration_signals == ("Vehicle.Acceleration.Vertical",)
    assert config.vehicle.propulsion == "hybrid"
    assert config.outbox.max_bytes == 10**9


def test_overrides_win_over_the_environment_and_the_file(write: Callable[..., Path]) -> None:
    path = write(
        """
        [vehicle]
        id = "from-file"
        [can]
        interface = "virtual"
        [mqtt]
        port = 1000
        """
    )
    env = {"CAN2CARE_EDGE__MQTT__PORT": "2000", "CAN2CARE_EDGE__VEHICLE__ID": "from-env"}
    config = load_config(path, env=env, overrides={"mqtt.port": 3000})
    assert config.mqtt.port == 3000
    assert config.vehicle.id == "from-env"
    assert load_config(path, env={}).mqtt.port == 1000
    assert load_config(path, env=env).mqtt.port == 2000


def test_an_override_of_none_restores_the_default(write: Callable[..., Path]) -> None:
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        interface = "virtual"
        [mqtt]
        port = 1000
        """
    )
    assert load_config(path, env={}, overrides={"mqtt.port": None}).mqtt.port == 1883


def test_os_environ_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAN2CARE_EDGE__VEHICLE__ID", "from-os")
    monkeypatch.setenv("CAN2CARE_EDGE__CAN__INTERFACE", "virtual")
    assert load_config(None).vehicle.id == "from-os"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", "1234"),  # an integer in TOML, a string key: the text
        ('"quoted"', "quoted"),
        ("true", "true"),
        ("plain-text", "plain-text"),
    ],
)
def test_string_keys_take_the_variables_text(text: str, expected: str) -> None:
    env = {"CAN2CARE_EDGE__VEHICLE__ID": text, "CAN2CARE_EDGE__CAN__INTERFACE": "virtual"}
    assert load_config(None, env=env).vehicle.id == expected


def test_an_empty_variable_unsets_an_optional_key(write: Callable[..., Path]) -> None:
    log = write("", "drive.log")
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        log = "drive.log"
        """
    )
    env = {"CAN2CARE_EDGE__CAN__LOG": "", "CAN2CARE_EDGE__CAN__INTERFACE": "virtual"}
    config = load_config(path, env=env)
    assert (config.can.interface, config.can.log) == ("virtual", None)
    assert load_config(path, env={}).can.log == log


def test_arrays_of_tables_from_the_environment() -> None:
    env = {
        "CAN2CARE_EDGE__VEHICLE__ID": "demo-0001",
        "CAN2CARE_EDGE__CAN__INTERFACE": "virtual",
        "CAN2CARE_EDGE__CAPTURE": '[{ name = "brake", when = "Vehicle.Speed > 1" }]',
        "CAN2CARE_EDGE__SAMPLING__RULE": '[{ signals = ["Vehicle.Speed"], mode = "all" }]',
    }
    config = load_config(None, env=env)
    assert config.captures[0].name == "brake"
    assert config.sampling.policy_for("Vehicle.Speed").mode == "all"


def test_nested_tables_from_the_environment(write: Callable[..., Path]) -> None:
    ca = write("", "ca.pem")
    env = {
        "CAN2CARE_EDGE__VEHICLE__ID": "demo-0001",
        "CAN2CARE_EDGE__CAN__INTERFACE": "virtual",
        "CAN2CARE_EDGE__MQTT__TLS__CA_FILE": str(ca),
        "CAN2CARE_EDGE__SAMPLING__DEFAULT__MODE": "on_change",
        "CAN2CARE_EDGE__CAN__EXTRA__IGNORE_RX_ERROR_FRAMES": "true",
    }
    config = load_config(None, env=env)
    assert config.mqtt.tls == TlsConfig(ca_file=ca)
    assert config.sampling.default == SamplingPolicy(mode="on_change")
    assert config.can.extra == {"ignore_rx_error_frames": True}


def test_relative_paths_are_relative_to_the_file(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("conf/vehicle.dbc", "conf/vehicle.map.toml", "conf/tls/ca.pem", "conf/pw"):
        write("", name)
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [catalogue]
        dbc = "vehicle.dbc"
        map = "./vehicle.map.toml"
        [can]
        interface = "virtual"
        [mqtt]
        password_file = "pw"
        [mqtt.tls]
        ca_file = "tls/ca.pem"
        [outbox]
        path = "state/outbox.sqlite"
        [status]
        file = "/run/can2care/status.json"
        """,
        "conf/agent.toml",
    )
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(path.relative_to(tmp_path.parent), env={})
    conf = tmp_path / "conf"
    assert config.catalogue.dbc == conf / "vehicle.dbc"
    assert config.catalogue.map == conf / "vehicle.map.toml"
    assert config.mqtt.password_file == conf / "pw"
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.ca_file == conf / "tls" / "ca.pem"
    assert config.outbox.path == conf / "state" / "outbox.sqlite"
    assert config.status.file == Path("/run/can2care/status.json")


def test_relative_paths_from_overrides_are_relative_to_the_working_directory(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("", "here.log")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={}, overrides={"vehicle.id": "a", "can.log": "here.log"})
    assert config.can.log == Path("here.log")
    assert config.can.replay_speed == 1.0


def test_a_map_alone_is_enough_for_a_catalogue(write: Callable[..., Path]) -> None:
    catalogue_map = write("", "vehicle.map.toml")
    overrides = {**BASE, "catalogue.map": catalogue_map}
    assert load_config(None, env={}, overrides=overrides).catalogue.map == catalogue_map


def test_mutual_tls(write: Callable[..., Path]) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        write("", name)
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        interface = "virtual"
        [mqtt.tls]
        ca_file = "ca.pem"
        cert_file = "client.pem"
        key_file = "client.key"
        insecure = true
        ciphers = "ECDHE+AESGCM"
        """
    )
    tls = load_config(path, env={}).mqtt.tls
    assert tls is not None
    assert tls.cert_file == path.parent / "client.pem"
    assert tls.key_file == path.parent / "client.key"
    assert (tls.insecure, tls.ciphers) == (True, "ECDHE+AESGCM")
    assert load_config(path, env={}, overrides={"mqtt.tls": False}).mqtt.tls is None


def test_sampling_policies(write: Callable[..., Path]) -> None:
    path = write(
        """
        [vehicle]
        id = "demo-0001"
        [can]
        interface = "virtual"
        [sampling]
        heartbeat_s = 0
        [sampling.default]
        mode = "on_change"
        max_interval_s = 30
        [[sampling.rule]]
        signals = ["Vehicle.*"]
        mode = "interval"
        period_s = 5
        [[sampling.rule]]
        signals = "Vehicle.Speed"
        mode = "all"
        """
    )
    sampling = load_config(path, env={}).sampling
    assert sampling.heartbeat_s == 0.0
    assert sampling.default == SamplingPolicy(mode="on_change", max_interval_s=30.0)
    assert sampling.policy_for("Vehicle.Speed") == SamplingPolicy(mode="all")
    assert sampling.policy_for("Vehicle.TraveledDistance") == SamplingPolicy(
        mode="interval", period_s=5.0
    )
    assert sampling.policy_for("Other") == sampling.default


def test_to_dict_hides_the_password_and_is_json() -> None:
    overrides = {**BASE, "mqtt.username": "u", "mqtt.password": "s3cret"}
    config = load_config(None, env={}, overrides=overrides)
    assert config.mqtt.password == "s3cret"
    assert "s3cret" not in repr(config)
    rendered = config.to_dict()
    text = json.dumps(rendered)
    assert "s3cret" not in text
    mqtt = rendered["mqtt"]
    assert isinstance(mqtt, dict)
    assert (mqtt["username"], mqtt["password"], mqtt["tls"]) == ("u", "***", None)
    assert rendered["outbox"] == {"path": "/var/lib/can2care/outbox.sqlite", "max_bytes": 2**28}


def test_to_dict_renders_the_file_layout() -> None:
    rendered = load_config(EXAMPLE, env={}).to_dict()
    sampling = rendered["sampling"]
    assert isinstance(sampling, dict)
    assert sampling["rule"][0] == {
        "signals": ["Vehicle.Chassis.Axle.*.Tire.Pressure"],
        "mode": "deadband",
        "period_s": None,
        "deadband": 5.0,
        "min_interval_s": 1.0,
        "max_interval_s": 300.0,
    }
    capture = rendered["capture"]
    assert isinstance(capture, list)
    assert capture[0]["name"] == "hard-braking"
    assert json.loads(json.dumps(rendered)) == rendered


@pytest.mark.parametrize("kind", ["telemetry", "events", "status"])
def test_topics(kind: str) -> None:
    config = load_config(None, env={}, overrides={**BASE, "mqtt.topic_prefix": "fleet/v1"})
    assert config.topic(kind) == f"fleet/v1/demo-0001/{kind}"


def test_an_unknown_topic_kind() -> None:
    config = load_config(None, env={}, overrides=BASE)
    with pytest.raises(ValueError, match="unknown topic kind 'alerts'"):
        config.topic("alerts")


def test_the_configuration_is_frozen() -> None:
    config = load_config(None, env={}, overrides=BASE)
    with pytest.raises(AttributeError):
        config.mqtt.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.can.extra["x"] = 1  # type: ignore[index]


def test_nothing_is_required_for_a_log_replay(write: Callable[..., Path]) -> None:
    log = write("", "drive.blf")
    config = load_config(
        None, env={}, overrides={"vehicle.id": "a", "can.log": log, "can.replay_speed": 0}
    )
    assert (config.can.log, config.can.replay_speed) == (log, 0.0)


def test_a_catalogue_config_loads_the_demo_catalogue() -> None:
    config = load_config(None, env={}, overrides=BASE)
    catalogue = config.catalogue.load()
    assert "Vehicle.Speed" in catalogue.mappings


def test_problems_are_all_collected() -> None:
    overrides = {"mqtt.port": 0, "batching.max_frames": 0, "vehicle.vin": "short"}
    with pytest.raises(ConfigValueError) as caught:
        load_config(None, env={}, overrides=overrides)
    keys = [problem.key for problem in caught.value.problems]
    assert keys == [
        "vehicle.id",
        "vehicle.vin",
        "can.interface",
        "batching.max_frames",
        "mqtt.port",
    ]
    assert str(caught.value).startswith("5 problems in the configuration:\n  ")
