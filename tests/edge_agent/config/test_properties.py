"""Properties of the loader: byte sizes, values from the environment, and robustness."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import ConfigValueError, load_config, parse_byte_size

UNITS = {
    "B": 1,
    "kB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
BASE = {"vehicle.id": "demo-0001", "can.interface": "virtual"}
KEYS = [
    "vehicle.id", "vehicle.vin", "vehicle.propulsion", "catalogue.dbc", "catalogue.map",
    "can.interface", "can.channel", "can.bitrate", "can.fd", "can.extra", "can.log",
    "can.replay_speed", "batching.max_frames", "sampling.default", "sampling.default.mode",
    "sampling.rule", "sampling.heartbeat_s", "capture", "crash.acceleration_signals",
    "crash.severity_signal", "telemetry.batch_interval_s", "mqtt", "mqtt.port", "mqtt.tls",
    "mqtt.tls.insecure", "mqtt.password", "outbox.max_bytes", "outbox.path", "status.file",
]  # fmt: skip

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["virtual", "interval", "Vehicle.Speed", "1MiB", "*"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["mode", "name", "when", "signals", "x"]), children)
    ),
    max_leaves=8,
)


@given(st.integers(min_value=0, max_value=2**50), st.sampled_from(sorted(UNITS)))
def test_a_number_and_a_unit(number: int, unit: str) -> None:
    expected = number * UNITS[unit]
    assert parse_byte_size(f"{number}{unit}") == expected
    assert parse_byte_size(f" {number} {unit.upper()} ") == expected
    assert parse_byte_size(expected) == expected


@given(
    st.fractions(min_value=0, max_value=10**6, max_denominator=1000),
    st.sampled_from(sorted(UNITS)),
)
def test_a_decimal_number_and_a_unit(number: Fraction, unit: str) -> None:
    text = f"{float(number):.3f}"
    size = Fraction(text) * UNITS[unit]
    if size.denominator == 1:
        assert parse_byte_size(f"{text}{unit}") == size
    else:
        with pytest.raises(ValueError, match="not a whole number of bytes"):
            parse_byte_size(f"{text}{unit}")


@pytest.mark.parametrize("text", ["", "MiB", "1 2", "-1", "1e6", "0x10", "1 parsec", "1.2.3B"])
def test_not_byte_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="not a byte size"):
        parse_byte_size(text)


@given(st.integers(min_value=1, max_value=65535))
def test_an_integer_from_the_environment(port: int) -> None:
    env = {"CAN2CARE_EDGE__MQTT__PORT": str(port)}
    assert load_config(None, env=env, overrides=BASE).mqtt.port == port


@given(
    st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="'\""), min_size=1)
)
def test_a_string_from_the_environment(text: str) -> None:
    """Unless it is a quoted TOML string, a string key gets the variable's text as it is,
    even when it reads as another TOML value (``1``, ``inf``, ``[1]``, ``1979-05-27``)."""
    env = {"CAN2CARE_EDGE__MQTT__USERNAME": text}
    assert load_config(None, env=env, overrides=BASE).mqtt.username == text


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=4))
def test_any_value_is_accepted_or_named(overrides: dict[str, object]) -> None:
    try:
        load_config(None, env={}, overrides={**BASE, **overrides})
    except ConfigValueError as exc:
        assert exc.problems
        assert all(problem.key and problem.reason for problem in exc.problems)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), st.text(max_size=20), max_size=4))
def test_any_environment_is_accepted_or_named(texts: dict[str, str]) -> None:
    env = {"CAN2CARE_EDGE__" + key.replace(".", "__").upper(): text for key, text in texts.items()}
    try:
        load_config(None, env=env, overrides=BASE)
    except ConfigValueError as exc:
        assert all(problem.variable in env or problem.override for problem in exc.problems)
