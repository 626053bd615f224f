"""Errors name the file and the line, or the environment variable, the key and what was
expected; all the problems of a configuration are reported together."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from edge_agent.config import (
    ConfigError,
    ConfigFileError,
    ConfigValueError,
    Problem,
    load_config,
)

HEAD = """\
[vehicle]
id = "demo-0001"

[can]
interface = "virtual"
"""


def problems(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> list[Problem]:
    with pytest.raises(ConfigValueError) as caught:
        load_config(path, env=env or {}, overrides=overrides)
    assert isinstance(caught.value, ConfigError)
    return list(caught.value.problems)


def only(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Problem:
    found = problems(path, env, overrides)
    assert len(found) == 1, found
    return found[0]


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b'[vehicle]\nid = "\xff"\n')
    with pytest.raises(ConfigFileError, match=r"agent\.toml: not UTF-8 text \(byte 16\)"):
        load_config(path, env={})


def test_invalid_toml_names_the_line_and_column(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[mqtt]\nport = 18 83\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, env={})
    error = caught.value
    assert (error.path, error.line, error.column) == (str(path), 8, 11)
    assert str(error).startswith(f"{path}:8:11: invalid TOML: ")


def test_a_bad_value_names_the_file_the_line_and_the_key(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[mqtt]\nhost = 'broker'\nport = 70000\n")
    problem = only(path)
    assert (problem.path, problem.line, problem.key) == (str(path), 9, "mqtt.port")
    assert str(problem) == (
        f"{path}:9: mqtt.port: must be an integer from 1 to 65535, not an integer (70000)"
    )


def test_an_unknown_key_suggests_a_close_one(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[mqtt]\nhost = 'broker'\nprot = 1884\n")
    assert str(only(path)) == f"{path}:9: mqtt.prot: unknown key (did you mean 'port'?)"


def test_an_unknown_key_without_a_close_one_lists_the_keys(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[batching]\nzzz = 1\n")
    assert str(only(path)).endswith(
        "batching.zzz: unknown key (expected one of: max_frames, max_latency_ms)"
    )


def test_an_unknown_section(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[mqqt]\nport = 1\n")
    problem = only(path)
    assert (problem.line, problem.key) == (7, "mqqt")
    assert problem.reason == "unknown key (did you mean 'mqtt'?)"


def test_keys_in_arrays_of_tables_have_their_index_and_line(write: Callable[..., Path]) -> None:
    path = write(
        HEAD
        + """
[[capture]]
name = "first"
when = "Vehicle.Speed > 1"

[[capture]]
name = "second"
when = "Vehicle.Speed > 2"
pre_s = -1

[[sampling.rule]]
signals = ["Vehicle.Speed"]
mode = "deadband"
"""
    )
    found = problems(path)
    assert [(p.line, p.key) for p in found] == [
        (16, "sampling.rule[0].deadband"),
        (14, "capture[1].pre_s"),
    ]
    assert found[0].reason == "missing: required with mode 'deadband'"
    assert found[1].reason == "must be a number at least 0 and at most 600, not an integer (-1)"


def test_dotted_keys_and_inline_tables_have_their_line(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[mqtt]\ntls.ca_file = "nope.pem"\n\n[sampling]\ndefault = {mode = 1}\n')
    found = problems(path)
    assert [(p.line, p.key) for p in found] == [
        (11, "sampling.default.mode"),
        (8, "mqtt.tls.ca_file"),
    ]


def test_a_multi_line_string_does_not_confuse_the_lines(write: Callable[..., Path]) -> None:
    text = '[[capture]]\nname = "x"\nwhen = """\nport = 3\n"""\npre_s = "long"\n'
    path = write(HEAD + "\n" + text)
    assert only(path).line == 12


def test_a_wrong_type_says_what_was_expected(write: Callable[..., Path]) -> None:
    path = write(HEAD.replace('interface = "virtual"', 'interface = "virtual"\nfd = "yes"'))
    assert str(only(path)) == f"{path}:6: can.fd: must be true or false, not a string ('yes')"


def test_every_problem_is_reported(write: Callable[..., Path]) -> None:
    path = write(
        """\
        [vehicle]
        id = "car/1"
        vin = "WDD2120341A12345I"
        propulsion = "steam"

        [can]
        interface = "socketcn"

        [mqtt]
        port = "1883"
        """
    )
    found = problems(path)
    assert [(p.line, p.key) for p in found] == [
        (2, "vehicle.id"),
        (3, "vehicle.vin"),
        (4, "vehicle.propulsion"),
        (7, "can.interface"),
        (10, "mqtt.port"),
    ]
    assert found[1].reason.endswith("without I, O or Q (ISO 3779), not 'WDD2120341A12345I'")
    assert found[2].reason.startswith("must be one of 'electric', 'combustion'")
    assert found[3].reason == "not a python-can interface: 'socketcn' (did you mean 'socketcan'?)"


def test_a_missing_vehicle_id() -> None:
    problem = only(None, overrides={"can.interface": "virtual"})
    assert str(problem) == "vehicle.id: missing: the vehicle's id, its level in MQTT topics"


def test_a_missing_key_points_at_its_table(write: Callable[..., Path]) -> None:
    path = write('[vehicle]\nvin = "WDD2120341A123456"\n[can]\ninterface = "virtual"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (1, "vehicle.id")


@pytest.mark.parametrize(
    ("vin", "reason"),
    [
        ("WDD2120341A1234", "must be 17 characters long, not 15 ('WDD2120341A1234')"),
        ("wdd2120341a123456", "must be upper-case A-Z and 0-9 without I, O or Q"),
        ("WDD2120341A12345O", "must be upper-case A-Z and 0-9 without I, O or Q"),
    ],
)
def test_vins(vin: str, reason: str) -> None:
    overrides = {"vehicle.id": "a", "can.interface": "virtual", "vehicle.vin": vin}
    assert only(None, overrides=overrides).reason.startswith(reason)


@pytest.mark.parametrize("vehicle_id", ["a/b", "a+", "#", "x" * 65, "with space"])
def test_vehicle_ids_that_cannot_be_topic_levels(vehicle_id: str) -> None:
    overrides = {"vehicle.id": vehicle_id, "can.interface": "virtual"}
    assert only(None, overrides=overrides).key == "vehicle.id"


def test_an_environment_variable_is_named(write: Callable[..., Path]) -> None:
    path = write(HEAD)
    problem = only(path, env={"CAN2CARE_EDGE__MQTT__PORT": "high"})
    assert problem.variable == "CAN2CARE_EDGE__MQTT__PORT"
    assert str(problem) == (
        "environment variable CAN2CARE_EDGE__MQTT__PORT: mqtt.port: "
        "must be an integer from 1 to 65535, not a string ('high')"
    )


@pytest.mark.parametrize(
    ("variable", "key", "reason"),
    [
        ("CAN2CARE_EDGE__MQQT__PORT", "mqqt", "unknown key (did you mean 'mqtt'?)"),
        ("CAN2CARE_EDGE__MQTT__PROT", "mqtt.prot", "unknown key (did you mean 'port'?)"),
        ("Can2Care_Edge__Mqtt__Tls__Ca_Fil", "mqtt.tls.ca_fil", "unknown key (did you mean"),
        ("CAN2CARE_EDGE__MQTT", "mqtt", "must be a table, not an integer (1)"),
        ("CAN2CARE_EDGE__MQTT__PORT__X", "mqtt.port", "must be an integer from 1 to 65535"),
        ("CAN2CARE_EDGE__MQTT___PORT", "mqtt._port", "unknown key"),
        ("CAN2CARE_EDGE__MQTT____PORT", "mqtt..port", "not a key: levels are separated by"),
        ("CAN2CARE_EDGE__", "", "not a key"),
        ("CAN2CARE_EDGE__CAPTURE__NAME", "capture.name", "capture is an array of tables"),
    ],
)
def test_environment_variables_that_name_no_key(
    write: Callable[..., Path], variable: str, key: str, reason: str
) -> None:
    path = write(HEAD + '\n[[capture]]\nname = "a"\nwhen = "Vehicle.Speed > 1"\n')
    problem = only(path, env={variable: "1"})
    assert (problem.variable, problem.key) == (variable, key)
    assert problem.reason.startswith(reason)
    assert str(problem).startswith(f"environment variable {variable}: ")


def test_an_environment_variable_set_twice_in_different_case() -> None:
    env = {
        "CAN2CARE_EDGE__VEHICLE__ID": "a",
        "CAN2CARE_EDGE__CAN__INTERFACE": "virtual",
        "can2care_edge__vehicle__id": "b",
    }
    problem = only(None, env=env)
    assert problem.reason.startswith("also set by CAN2CARE_EDGE__VEHICLE__ID")


def test_an_override_is_named_as_such() -> None:
    overrides = {"vehicle.id": "a", "can.interface": "virtual", "mqtt.port": "x"}
    assert str(only(None, overrides=overrides)).startswith("override: mqtt.port: must be")
    overrides = {"vehicle.id": "a", "can.interface": "virtual", "mqtt..port": "1"}
    assert str(only(None, overrides=overrides)) == "override: mqtt..port: not a dotted key"


def test_both_interface_and_log(write: Callable[..., Path]) -> None:
    write("", "drive.log")
    path = write(HEAD + 'log = "drive.log"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (6, "can.log")
    assert problem.reason.startswith("can.interface is set too: set one of them")


def test_neither_interface_nor_log() -> None:
    problem = only(None, overrides={"vehicle.id": "a"})
    assert problem.key == "can.interface"
    assert "set can.interface" in problem.reason
    assert "or can.log" in problem.reason


def test_replay_speed_without_a_log(write: Callable[..., Path]) -> None:
    path = write(HEAD + "replay_speed = 0\n")
    assert str(only(path)) == (
        f"{path}:6: can.replay_speed: only with can.log (the speed of a log's replay)"
    )


def test_a_missing_log_file(write: Callable[..., Path], tmp_path: Path) -> None:
    path = write('[vehicle]\nid = "a"\n[can]\nlog = "gone.blf"\n')
    assert str(only(path)) == f"{path}:4: can.log: no such file: {tmp_path / 'gone.blf'}"


def test_can_extra_cannot_repeat_the_buss_own_keys(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[can.extra]\nchannel = 'can1'\n'not a name' = 1\n")
    found = problems(path)
    assert [p.reason for p in found] == [
        "'channel' cannot be set here (use can.channel if it exists)",
        "'not a name' is not a keyword argument name",
    ]
    assert [p.line for p in found] == [7, 7]


def test_a_missing_tls_file_names_its_key(write: Callable[..., Path], tmp_path: Path) -> None:
    write("", "client.pem")
    path = write(
        HEAD + '\n[mqtt.tls]\nca_file = "ca.pem"\ncert_file = "client.pem"\nkey_file = "k.key"\n'
    )
    found = problems(path)
    assert [str(p) for p in found] == [
        f"{path}:8: mqtt.tls.ca_file: no such file: {tmp_path / 'ca.pem'}",
        f"{path}:10: mqtt.tls.key_file: no such file: {tmp_path / 'k.key'}",
    ]


def test_a_tls_directory_is_not_a_file(write: Callable[..., Path], tmp_path: Path) -> None:
    path = write(HEAD + '\n[mqtt.tls]\nca_file = "."\n')
    assert only(path).reason == f"not a file: {tmp_path}"


@pytest.mark.parametrize("key", ["cert_file", "key_file"])
def test_a_client_certificate_needs_its_key(write: Callable[..., Path], key: str) -> None:
    write("", "file.pem")
    path = write(HEAD + f'\n[mqtt.tls]\n{key} = "file.pem"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (8, f"mqtt.tls.{key}")
    assert problem.reason.endswith("mutual TLS needs both")


def test_tls_must_be_a_table_or_a_boolean(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[mqtt]\ntls = "yes"\n')
    assert only(path).reason == "must be a table ([mqtt.tls]), true or false"


def test_password_and_password_file(write: Callable[..., Path]) -> None:
    write("secret\n", "pw")
    path = write(HEAD + '\n[mqtt]\npassword = "x"\npassword_file = "pw"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (9, "mqtt.password_file")


def test_reconnect_bounds(write: Callable[..., Path]) -> None:
    path = write(HEAD + "\n[mqtt]\nreconnect_min_s = 10\nreconnect_max_s = 5\n")
    assert (
        str(only(path)) == f"{path}:9: mqtt.reconnect_max_s: must be at least reconnect_min_s (10)"
    )


@pytest.mark.parametrize("prefix", ["", "a//b", "/v1", "v1/", "v+", "#", "$SYS"])
def test_topic_prefixes(prefix: str) -> None:
    overrides = {"vehicle.id": "a", "can.interface": "virtual", "mqtt.topic_prefix": prefix}
    if prefix == "":
        assert load_config(None, env={}, overrides=overrides).mqtt.topic_prefix == "v1"
    else:
        assert only(None, overrides=overrides).key == "mqtt.topic_prefix"


def test_a_dbc_needs_its_map(write: Callable[..., Path]) -> None:
    write("", "vehicle.dbc")
    path = write(HEAD + '\n[catalogue]\ndbc = "vehicle.dbc"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (8, "catalogue.dbc")
    assert "a signal map is needed" in problem.reason


@pytest.mark.parametrize(
    ("policy", "key", "reason"),
    [
        ('mode = "interval"', "period_s", "missing: required with mode 'interval'"),
        ('mode = "all"\nperiod_s = 1', "period_s", "only with mode 'interval'"),
        ('mode = "on_change"\ndeadband = 1', "deadband", "only with mode 'deadband'"),
        ('mode = "all"\nmin_interval_s = 1', "min_interval_s", "only with mode 'on_change'"),
        (
            'mode = "on_change"\nmin_interval_s = 5\nmax_interval_s = 1',
            "max_interval_s",
            "must be at least min_interval_s (5)",
        ),
        ('mode = "sometimes"', "mode", "must be one of 'all', 'interval'"),
        ("period_s = 1", "mode", "missing: one of 'all', 'interval'"),
        ('mode = "interval"\nperiod_s = 0', "period_s", "must be a number greater than 0"),
        ('mode = "deadband"\ndeadband = nan', "deadband", "must be a number at least 0"),
    ],
)
def test_sampling_rules(write: Callable[..., Path], policy: str, key: str, reason: str) -> None:
    path = write(HEAD + f'\n[[sampling.rule]]\nsignals = ["Vehicle.Speed"]\n{policy}\n')
    problem = only(path)
    assert problem.key == f"sampling.rule[0].{key}"
    assert problem.reason.startswith(reason)


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        ("[]", "must not be empty"),
        ('["Vehicle Speed"]', "not a VSS path pattern"),
        ("[1]", "must be an array of VSS path patterns, not an array"),
    ],
)
def test_sampling_rule_signals(write: Callable[..., Path], signals: str, reason: str) -> None:
    path = write(HEAD + f'\n[[sampling.rule]]\nsignals = {signals}\nmode = "all"\n')
    problem = only(path)
    assert (problem.line, problem.key) == (8, "sampling.rule[0].signals")
    assert problem.reason.startswith(reason)


def test_a_rule_needs_signals(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[[sampling.rule]]\nmode = "all"\n')
    assert str(only(path)) == (
        f"{path}:7: sampling.rule[0].signals: missing: the VSS path patterns this rule is for"
    )


def test_a_rule_written_as_a_table(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[sampling.rule]\nmode = "all"\n')
    problem = only(path)
    assert problem.reason.startswith("must be an array of tables (write each one as")


def test_capture_names_are_unique(write: Callable[..., Path]) -> None:
    capture = '[[capture]]\nname = "brake"\nwhen = "Vehicle.Speed > 1"\n'
    path = write(HEAD + "\n" + capture + capture)
    problem = only(path)
    assert (problem.line, problem.key) == (11, "capture[1].name")
    assert problem.reason == "duplicate: capture[0] has this name"


def test_crash_signals_are_vss_paths(write: Callable[..., Path]) -> None:
    text = '\n[crash]\nairbag_signal = "airbag"\nacceleration_signals = ["Vehicle.X", "x"]\n'
    found = problems(write(HEAD + text))
    assert [(p.key, p.line) for p in found] == [
        ("crash.airbag_signal", 8),
        ("crash.acceleration_signals", 9),
    ]


def test_the_crash_severity_can_be_turned_off(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[crash]\nseverity_signal = ""\nacceleration_signals = []\n')
    crash = load_config(path, env={}).crash
    assert (crash.severity_signal, crash.acceleration_signals) == (None, ())


def test_the_airbag_signal_can_be_left_empty(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[crash]\nairbag_signal = ""\n')
    assert load_config(path, env={}).crash.airbag_signal is None
    path = write(
        HEAD + '\n[crash]\nenabled = false\nairbag_signal = ""\nacceleration_signals = []\n'
    )
    assert load_config(path, env={}).crash.airbag_signal is None


def test_crash_detection_needs_a_signal_to_watch(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[crash]\nairbag_signal = ""\nacceleration_signals = []\n')
    problem = only(path)
    assert (problem.key, problem.line) == ("crash.airbag_signal", 8)
    assert problem.reason.startswith("empty, and crash.acceleration_signals too")


def test_outbox_byte_sizes(write: Callable[..., Path]) -> None:
    path = write(HEAD + '\n[outbox]\nmax_bytes = "1.5 GiB"\n')
    assert load_config(path, env={}).outbox.max_bytes == 3 * 2**29
    path = write(HEAD + '\n[outbox]\nmax_bytes = "12 parsecs"\n')
    assert only(path).reason.startswith("not a byte size: '12 parsecs' (expected an integer")
    path = write(HEAD + "\n[outbox]\nmax_bytes = 1000\n")
    assert only(path).reason == "must be at least 1MiB, not 1000 bytes"
    path = write(HEAD + '\n[outbox]\npath = ""\n')
    assert only(path).reason == "must not be empty: the outbox's SQLite file"


def test_the_message_of_several_problems() -> None:
    error = ConfigValueError([Problem("a.b", "wrong", path="f.toml", line=3), Problem("c", "x")])
    assert str(error) == "2 problems in the configuration:\n  f.toml:3: a.b: wrong\n  c: x"
