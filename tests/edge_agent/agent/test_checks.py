"""The configuration checked against its catalogue: every VSS path or pattern the catalogue
lacks is a problem with its key and the file; crash signals only with crash detection on."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.agent import check_catalogue
from edge_agent.config import AgentConfig, ConfigValueError, Problem, load_config
from edge_agent.wire import WireSchema

from .._own_catalogue import write_own_catalogue

EXAMPLE = Path(__file__).parents[3] / "deploy" / "agent.example.toml"

RULES_AND_CAPTURES = """
[[sampling.rule]]
signals = ["Vehicle.Chassis.Axle.*.Speed", "Vehicle.Speed"]
mode = "all"

[[capture]]
name = "skid"
when = "abs(Vehicle.Acceleration.Lateral) > 8"
signals = ["Vehicle.Chassis.*", "Vehicle.Cabin.*"]
"""


def _config(tmp_path: Path, text: str) -> AgentConfig:
    map_path = write_own_catalogue(tmp_path)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[vehicle]\nid = "abs-1"\n[catalogue]\nmap = "{map_path.name}"\n'
        f'[can]\ninterface = "virtual"\n{text}',
        encoding="utf-8",
    )
    return load_config(path, env={})


def _problems(config: AgentConfig) -> list[Problem]:
    with pytest.raises(ConfigValueError) as caught:
        check_catalogue(config, WireSchema.from_catalogue(config.catalogue.load()))
    return list(caught.value.problems)


def test_every_path_the_catalogue_lacks_is_a_problem_with_its_key(tmp_path: Path) -> None:
    config = _config(tmp_path, RULES_AND_CAPTURES)
    found = _problems(config)
    assert [(p.key, p.reason.split(" ")[:2]) for p in found] == [
        ("sampling.rule[0].signals", ["pattern", "'Vehicle.Speed'"]),
        ("capture[0].signals", ["pattern", "'Vehicle.Cabin.*'"]),
        ("crash.airbag_signal", ["'Vehicle.Private.Crash.AirbagDeployed'", "is"]),
        ("crash.severity_signal", ["'Vehicle.Private.Crash.Severity'", "is"]),
        ("crash.acceleration_signals", ["'Vehicle.Acceleration.Longitudinal'", "is"]),
    ]
    assert {p.path for p in found} == {config.source}
    assert str(found[0]).startswith(f"{config.source}: sampling.rule[0].signals: pattern")


def test_a_trigger_naming_a_path_the_catalogue_lacks(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '[crash]\nenabled = false\n[[capture]]\nname = "fast"\nwhen = "Vehicle.Speed > 30"\n',
    )
    (problem,) = _problems(config)
    assert problem.key == "capture[0].when"
    assert problem.reason.startswith("Vehicle.Speed is not a VSS path of the catalogue")


def test_crash_signals_are_not_looked_up_with_crash_detection_off(tmp_path: Path) -> None:
    config = _config(tmp_path, "[crash]\nenabled = false\n")
    check_catalogue(config, WireSchema.from_catalogue(config.catalogue.load()))


def test_crash_detection_on_the_signals_a_map_has(tmp_path: Path) -> None:
    crash = '[crash]\nairbag_signal = ""\nseverity_signal = ""\n'
    config = _config(tmp_path, crash + 'acceleration_signals = ["Vehicle.Acceleration.Lateral"]\n')
    check_catalogue(config, WireSchema.from_catalogue(config.catalogue.load()))


def test_the_example_configuration_fits_the_demo_catalogue() -> None:
    config = load_config(EXAMPLE, env={})
    check_catalogue(config, WireSchema.from_catalogue(config.catalogue.load()))
