"""The ingest configuration: file, environment, overrides, and every problem with its place."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from can2care.cli import main
from cloud_ingest.ingest import IngestConfigError, load_ingest_config

DB = {"CAN2CARE_INGEST__DATABASE__URL": "postgresql://db/can2care"}


def write(tmp_path: Path, text: str, name: str = "ingest.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def problems(
    path: Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
) -> list[str]:
    with pytest.raises(IngestConfigError) as caught:
        load_ingest_config(path, env={} if env is None else env, overrides=overrides)
    assert str(caught.value).startswith("invalid ingest configuration:\n  ")
    for problem in caught.value.problems:
        assert problem in str(caught.value)
    return caught.value.problems


@pytest.fixture(autouse=True)
def _no_ingest_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads os.environ: none of the developer's variables leak into these tests."""
    for name in list(os.environ):
        if name.startswith("CAN2CARE_INGEST__"):
            monkeypatch.delenv(name)


# -- values and precedence -------------------------------------------------------------------


def test_defaults() -> None:
    config = load_ingest_config(None, env=DB)
    assert config.database.url == "postgresql://db/can2care"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.topic_prefix) == (
        "localhost",
        1883,
        "v1",
    )
    assert config.mqtt.username == "can2care-ingest"
    assert config.mqtt.password is None and config.mqtt.secret() is None
    assert config.mqtt.client_id.startswith("can2care-ingest-")
    assert (config.mqtt.group, config.mqtt.tls) == ("can2care-ingest", None)
    assert (config.batching.max_messages, config.batching.max_latency_ms) == (500, 250)
    assert (config.retry.min_s, config.retry.max_s) == (0.5, 15.0)
    assert (config.validation.max_future_s, config.validation.min_year) == (3600, 2000)
    assert (config.http.host, config.http.port) == ("127.0.0.1", 9108)
    assert config.demo_catalogue is True and config.catalogues == ()
    assert config.log_level == "info"


def test_the_database_url_is_required() -> None:
    assert problems() == ["defaults: database: Field required"]


def test_file_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
log_level = "debug"
demo_catalogue = false

[mqtt]
host = "broker.example"
port = 8883
username = "ingest"
password = "s3cret"
group = "ingest-eu"
topic_prefix = "fleet"

[mqtt.tls]
ca_file = "/etc/can2care/ca.pem"

[database]
url = "postgresql://db/fleet"
connect_timeout_s = 3

[batching]
max_messages = 100
max_latency_ms = 1000

[validation]
min_year = 2015

[http]
port = 0
""",
    )
    config = load_ingest_config(path, env={})
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == (
        "broker.example",
        8883,
        "ingest",
    )
    assert config.mqtt.secret() == "s3cret"
    assert (config.mqtt.group, config.mqtt.topic_prefix) == ("ingest-eu", "fleet")
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.ca_file == Path("/etc/can2care/ca.pem")  # absolute: as given
    assert (config.database.url, config.database.connect_timeout_s) == ("postgresql://db/fleet", 3)
    assert (config.batching.max_messages, config.batching.max_latency_ms) == (100, 1000)
    assert config.batching.max_samples == 2_000_000  # a default beside file values
    assert config.validation.min_year == 2015
    assert config.http.port == 0
    assert (config.log_level, config.demo_catalogue) == ("debug", False)


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "secret").write_text("from-file\n", "utf-8")
    path = write(
        tmp_path / "conf",
        """
[mqtt]
password_file = "secret"
[mqtt.tls]
ca_file = "pki/ca.pem"
cert_file = "pki/client.pem"
key_file = "pki/client.key"
[database]
url = "postgresql://db/x"
[[catalogues]]
dbc = "dbc/ev.dbc"
map = "dbc/ev.map.toml"
[[catalogues]]
dbc = "/abs/ice.dbc"
map = "../maps/ice.map.toml"
""",
    )
    config = load_ingest_config(path, env={})
    base = tmp_path / "conf"
    assert config.mqtt.password_file == base / "secret"
    assert config.mqtt.secret() == "from-file"  # read and stripped
    tls = config.mqtt.tls
    assert tls is not None
    assert (tls.ca_file, tls.cert_file, tls.key_file) == (
        base / "pki/ca.pem",
        base / "pki/client.pem",
        base / "pki/client.key",
    )
    assert [(c.dbc, c.map) for c in config.catalogues] == [
        (base / "dbc/ev.dbc", base / "dbc/ev.map.toml"),
        (Path("/abs/ice.dbc"), base / "../maps/ice.map.toml"),
    ]


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[mqtt]\nport = 1884\nhost = "file-host"\n[database]\nurl = "postgresql://file"\n',
    )
    env = {
        "CAN2CARE_INGEST__MQTT__PORT": "1885",
        "CAN2CARE_INGEST__MQTT__TLS__CA_FILE": "ca.pem",  # a nested table
        "CAN2CARE_INGEST__BATCHING__MAX_LATENCY_MS": "75",
        "CAN2CARE_INGEST__DEMO_CATALOGUE": "false",  # a top-level key, read as TOML
        "CAN2CARE_INGEST__MQTT__USERNAME": "env-user",  # not TOML: read as text
        "CAN2CARE_INGEST__MQTT__PASSWORD": '"123456"',  # a TOML string
        "OTHER__MQTT__PORT": "1",  # not ours
    }
    config = load_ingest_config(path, env=env)
    assert (config.mqtt.port, config.mqtt.host) == (1885, "file-host")
    assert config.mqtt.tls is not None and config.mqtt.tls.ca_file == Path("ca.pem")
    assert config.batching.max_latency_ms == 75
    assert config.demo_catalogue is False
    assert (config.mqtt.username, config.mqtt.password) == ("env-user", "123456")
    assert config.database.url == "postgresql://file"


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAN2CARE_INGEST__DATABASE__URL", "postgresql://from-env")
    monkeypatch.setenv("CAN2CARE_INGEST__MQTT__PORT", "1999")
    config = load_ingest_config(None)
    assert (config.database.url, config.mqtt.port) == ("postgresql://from-env", 1999)


def test_overrides_beat_the_environment_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nport = 1884\n[database]\nurl = "postgresql://file"\n')
    env = {"CAN2CARE_INGEST__MQTT__PORT": "1885", **DB}
    overrides = {"mqtt.port": 1886, "mqtt.username": None, "http.port": 0}
    config = load_ingest_config(path, env=env, overrides=overrides)
    assert (config.mqtt.port, config.mqtt.username, config.http.port) == (1886, None, 0)
    assert config.database.url == "postgresql://db/can2care"  # env over file


# -- problems --------------------------------------------------------------------------------


def test_a_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nport = 1883\nhost = \n[database]\nurl = "x"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:3:")
    line, column = problem[len(str(path)) + 1 :].split(":")[:2]
    assert (int(line), int(column) > 0) == (3, True)


def test_an_unreadable_file(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path / "missing.toml")
    assert problem.startswith(f"{tmp_path / 'missing.toml'}: cannot read the file")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[mqtt]\nhost = "\xe9"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: cannot read the file")


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt]\nhots = "typo"\n')
    assert problems(path) == [f"{path}:4: mqtt.hots: Extra inputs are not permitted"]


def test_an_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n\n[mqqt]\nport = 1\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:4: mqqt: ")


def test_a_wrong_type_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt]\n\nport = "high"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:5: mqtt.port: ")
    assert "integer" in problem


def test_out_of_range_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[batching]\nmax_latency_ms = 0\n')
    assert problems(path) == [
        f"{path}:4: batching.max_latency_ms: Input should be greater than or equal to 1"
    ]


def test_an_environment_problem_names_the_variable() -> None:
    env = {"CAN2CARE_INGEST__MQTT__PORT": "70000", "CAN2CARE_INGEST__MQTT__COLOR": "1", **DB}
    assert sorted(problems(None, env)) == [
        "environment variable CAN2CARE_INGEST__MQTT__COLOR: mqtt.color: "
        "Extra inputs are not permitted",
        "environment variable CAN2CARE_INGEST__MQTT__PORT: mqtt.port: "
        "Input should be less than or equal to 65535",
    ]


def test_an_environment_variable_with_a_wrong_type() -> None:
    env = {"CAN2CARE_INGEST__BATCHING__MAX_MESSAGES": "many", **DB}
    (problem,) = problems(None, env)
    assert problem.startswith(
        "environment variable CAN2CARE_INGEST__BATCHING__MAX_MESSAGES: batching.max_messages: "
    )


def test_an_override_problem_names_the_command_line() -> None:
    assert problems(None, DB, {"mqtt.port": 0}) == [
        "command line: mqtt.port: Input should be greater than or equal to 1"
    ]


def test_a_problem_in_the_file_overridden_by_the_environment_names_the_variable(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt]\nport = 1\n')
    (problem,) = problems(path, {"CAN2CARE_INGEST__MQTT__PORT": "-1"})
    assert problem.startswith("environment variable CAN2CARE_INGEST__MQTT__PORT: mqtt.port: ")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """[mqtt]
port = 70000
keepalive_s = 1
bogus = true

[batching]
max_messages = 0

[retry]
min_s = -1
""",
    )
    found = problems(path, {"CAN2CARE_INGEST__HTTP__PORT": "x"}, {"log_level": "loud"})
    assert len(found) == 8
    starts = sorted(p.split(": ", 2)[0] + ": " + p.split(": ", 2)[1] for p in found)
    assert starts == sorted(
        [
            f"{path}:2: mqtt.port",
            f"{path}:3: mqtt.keepalive_s",
            f"{path}:4: mqtt.bogus",
            f"{path}:7: batching.max_messages",
            f"{path}:10: retry.min_s",
            "environment variable CAN2CARE_INGEST__HTTP__PORT: http.port",
            "command line: log_level",
            f"{path}: database",  # missing: the file is where it should have been
        ]
    )


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt]\npassword = "a"\npassword_file = "pw"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:3: mqtt: ")
    assert "give password or password_file, not both" in problem


def test_a_certificate_without_a_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt.tls]\ncert_file = "client.pem"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:3: mqtt.tls: ")
    assert "give both cert_file and key_file" in problem


def test_a_key_without_a_certificate_is_refused() -> None:
    (problem,) = problems(None, {**DB, "CAN2CARE_INGEST__MQTT__TLS__KEY_FILE": "k.pem"})
    assert "mqtt.tls: " in problem and "give both cert_file and key_file" in problem


def test_retry_max_below_min_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[retry]\nmin_s = 5\nmax_s = 1\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:3: retry: ")
    assert "max_s (1.0) is below min_s (5.0)" in problem


@pytest.mark.parametrize("section", ["mqtt = 5", 'mqtt = "broker"', "database = []"])
def test_a_section_that_is_not_a_table(tmp_path: Path, section: str) -> None:
    path = write(tmp_path, f"{section}\n")
    found = problems(path)
    assert any(p.startswith(f"{path}:1: {section.split()[0]}: ") for p in found), found


def test_a_bad_topic_prefix_or_client_id_is_refused() -> None:
    found = problems(None, DB, {"mqtt.topic_prefix": "v1/#", "mqtt.client_id": ""})
    assert sorted(p.split(": ")[1] for p in found) == ["mqtt.client_id", "mqtt.topic_prefix"]


# -- can2care ingest --check -------------------------------------------------------------------


def test_cli_check_prints_the_configuration_with_the_password_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[mqtt]\npassword = "s3cret"\n[database]\nurl = "postgresql://db/x"\n'
        '[mqtt.tls]\nca_file = "ca.pem"\n',
    )
    monkeypatch.setenv("CAN2CARE_INGEST__BATCHING__MAX_MESSAGES", "42")
    code = main(
        ["ingest", "--check", "-c", str(path), "--broker", "mq.example:8883", "--http-port", "0"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "s3cret" not in out
    shown = json.loads(out)
    assert shown["mqtt"]["password"] == "***"
    assert (shown["mqtt"]["host"], shown["mqtt"]["port"]) == ("mq.example", 8883)
    assert shown["mqtt"]["tls"]["ca_file"] == str(tmp_path / "ca.pem")
    assert shown["database"]["url"] == "postgresql://db/x"
    assert shown["batching"]["max_messages"] == 42
    assert shown["http"]["port"] == 0


def test_cli_check_without_a_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAN2CARE_INGEST__DATABASE__URL", "postgresql://db/x")
    assert main(["ingest", "--check", "--group", "g2", "--client-id", "c2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["mqtt"]["password"] is None
    assert (shown["mqtt"]["group"], shown["mqtt"]["client_id"]) == ("g2", "c2")


def test_cli_an_invalid_configuration_exits_1_with_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[database]\nurl = "x"\n[mqtt]\nport = 0\n')
    assert main(["ingest", "--check", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("can2care: error: invalid ingest configuration:")
    assert f"{path}:4: mqtt.port: Input should be greater than or equal to 1" in err


def test_cli_a_syntax_error_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[mqtt\n")
    assert main(["ingest", "--check", "-c", str(path)]) == 1
    assert f"{path}:1:" in capsys.readouterr().err


def test_cli_a_bad_broker_option_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--check", "--database", "x", "--broker", "no-port"]) == 1
    assert "--broker 'no-port' is not HOST:PORT" in capsys.readouterr().err


def test_the_deployed_example_loads() -> None:
    example = Path(__file__).parents[3] / "deploy" / "ingest.example.toml"
    config = load_ingest_config(example, env={})
    assert config.mqtt.tls is not None and config.mqtt.port == 8883
    assert config.database.url.startswith("postgresql://")
