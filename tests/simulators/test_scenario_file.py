"""Scenario files: valid files parse; mistakes name the field and the line."""

from __future__ import annotations

import pytest

from simulators import ScenarioError, VehicleConfig, check_scenarios, parse_scenarios, simulate

GOOD = """\
version = 1
[drive]
variant = "combustion"
cycle = "wltp"
duration = "1h30m"
seed = 4

[[scenario]]
kind = "overheating"
at = "20m"
peak_c = 125

[[scenario]]
kind = "slow_puncture"
at = 600
tyre = "RR"
"""


def test_a_good_file() -> None:
    parsed = parse_scenarios(GOOD, "good.toml")
    assert parsed.drive == {"variant": "combustion", "cycle": "wltp", "duration": 5400.0, "seed": 4}
    first, second = parsed.scenarios
    assert (first.kind, first.at, first.params["peak_c"], first.line) == (
        "overheating",
        1200.0,
        125.0,
        8,
    )
    assert (second.params["tyre"], second.params["rate_kpa_per_h"], second.index) == ("RR", 4.0, 2)


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "words"),
    [
        ('kind = "overheating"', 'kind = "meteor"', "scenario[1].kind", 9, "unknown scenario"),
        ("peak_c = 125", "peak = 125", "scenario[1].peak", 11, "unknown key"),
        ("peak_c = 125", "peak_c = 160", "scenario[1].peak_c", 11, "out of range"),
        ('tyre = "RR"', "tyre = 3", "scenario[2].tyre", 16, "must be a string"),
        ('tyre = "RR"', 'tyre = "XX"', "scenario[2].tyre", 16, "one of"),
        ("at = 600", "at = -5", "scenario[2].at", 15, "negative"),
        ("at = 600", "at = true", "scenario[2].at", 15, "duration"),
        ("at = 600\n", "", "scenario[2].at", 13, "missing key"),
        ('cycle = "wltp"', 'cycle = "moon"', "drive.cycle", 4, "one of"),
        ("seed = 4", 'seed = "4"', "drive.seed", 6, "must be int"),
        ("seed = 4", "colour = 4", "drive.colour", 6, "unknown key"),
        ("version = 1", "version = 2", "version", 1, "unsupported"),
    ],
)
def test_mistakes_name_field_and_line(
    old: str, new: str, field: str, line: int, words: str
) -> None:
    assert old in GOOD
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(GOOD.replace(old, new, 1), "bad.toml")
    error = caught.value
    assert (error.field, error.line, error.path) == (field, line, "bad.toml")
    assert words in str(error) and str(error).startswith(f"bad.toml:{line}: {field}: ")


def test_invalid_toml_names_the_line() -> None:
    with pytest.raises(ScenarioError, match=r"^bad.toml:3: invalid TOML"):
        parse_scenarios("version = 1\n[drive]\nseed = = 4\n", "bad.toml")


def test_overlapping_incompatible_scenarios() -> None:
    text = """\
[[scenario]]
kind = "crash"
at = 100

[[scenario]]
kind = "hard_braking"
at = 200
"""
    parsed = parse_scenarios(text, "s.toml")
    with pytest.raises(ScenarioError) as caught:
        check_scenarios(VehicleConfig(duration=600), parsed.scenarios, "s.toml")
    assert (caught.value.field, caught.value.line) == ("scenario[2].at", 5)
    assert "overlaps scenario[1]" in str(caught.value)


def test_scenarios_that_do_not_fit_the_vehicle() -> None:
    text = (
        '[[scenario]]\nkind = "overheating"\nat = 10\n\n[[scenario]]\nkind = "lv_drain"\nat = 5\n'
    )
    parsed = parse_scenarios(text, "s.toml")
    with pytest.raises(ScenarioError, match=r"s.toml:1: scenario\[1\].kind: .*combustion"):
        check_scenarios(VehicleConfig(variant="ev"), parsed.scenarios, "s.toml")
    with pytest.raises(ScenarioError, match=r"s.toml:5: scenario\[2\].kind: .*parked"):
        check_scenarios(VehicleConfig(variant="combustion"), parsed.scenarios, "s.toml")
    late = parse_scenarios('[[scenario]]\nkind = "crash"\nat = "2h"\n', "s.toml")
    with pytest.raises(ScenarioError, match=r"scenario\[1\].at: .*not within the drive"):
        check_scenarios(VehicleConfig(duration=600), late.scenarios, "s.toml")


def test_a_scenario_the_drive_cannot_meet_names_the_file() -> None:
    """A pothole at a speed the urban drive never reaches: file, line and field."""
    text = '[[scenario]]\nkind = "pothole"\nat = 10\nmin_speed_kmh = 140\n'
    parsed = parse_scenarios(text, "slow.toml")
    config = VehicleConfig(cycle="urban", duration=300.0, seed=1)
    with pytest.raises(ScenarioError) as error:
        simulate(config, parsed.scenarios, source="slow.toml")
    assert str(error.value).startswith("slow.toml:1: scenario[1].at: ")
    assert "never fast enough" in str(error.value)
