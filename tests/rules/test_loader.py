"""Rule files: the built-in catalogue loads; every problem names the file, line, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import RuleFileError, load_builtin, load_rules, parse_rules

GOOD = """version = 1

[[rule]]
id = "lv_low"
title = "12 V low"
category = "care"
severity = "warning"
when = "Vehicle.LowVoltageBattery.CurrentVoltage < 11.8"
for = "10m"
"""


def test_the_builtin_catalogue_loads_and_compiles() -> None:
    rules = load_builtin()
    ids = [r.id for r in rules]
    assert {"crash", "breakdown", "ev_out_of_charge", "lv_battery_low", "tyre_pressure_low",
            "tyre_pressure_loss", "coolant_overheating", "critical_dtc", "vehicle_offline",
            "service_due_soon", "service_overdue", "welcome_check_in",
            "warranty_expiry"} <= set(ids)  # fmt: skip
    assert all(r.source.startswith("rules/catalogue.toml:") for r in rules)
    crash = rules.get("crash")
    assert crash is not None and crash.event == "crash" and not crash.quiet_hours
    assert rules.escalations["crash"] == 120.0


def test_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (rule,) = load_rules([tmp_path / "a.toml"])
    assert (rule.id, rule.pending_s, rule.resolve, rule.source) == (
        "lv_low", 600.0, "auto", f"{tmp_path / 'a.toml'}:3",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('severity = "warning"', 'severity = "loud"'), ("severity", "'loud'")),
        (('for = "10m"', 'for = "ten minutes"'), ("for", "'ten minutes'")),
        (("< 11.8", "< "), ("when", "not an expression")),
        (("Vehicle.LowVoltage", "Car.LowVoltage"), ("when", "unknown name")),
        (('id = "lv_low"', 'id = "LV Low"'), ("id", "'LV Low'")),
        (('for = "10m"', 'for = "10m"\nsnooze = 1'), ("snooze", "unknown key")),
        (('title = "12 V low"\n', ""), ("title", "missing")),
        (('for = "10m"', 'inhibited_by = ["nothing"]'), ("inhibited_by", "'nothing'")),
    ],
)
def test_each_problem_names_file_line_rule_and_field(
    tmp_path: Path, change: tuple[str, str], words: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(RuleFileError) as caught:
        load_rules([path])
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:3: rule ")
    for word in words:
        assert word in problem


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD + GOOD.replace("version = 1\n", "").replace('"warning"', '"x"')
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text.replace('for = "10m"', 'for = "?"'), "f.toml")
    problems = caught.value.problems
    assert [p.split(": ")[0] for p in problems] == ["f.toml:3", "f.toml:11", "f.toml:11"]


def test_a_toml_error_has_its_line_and_column() -> None:
    with pytest.raises(RuleFileError, match=r"^f.toml:2:\d+: "):
        parse_rules("version = 1\n[[rule]\n", "f.toml")


def test_ids_are_unique_across_files(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(GOOD)
    with pytest.raises(
        RuleFileError, match=r"b.toml:3: rule 'lv_low': id: also defined at .*a.toml:3"
    ):
        load_rules([tmp_path / "a.toml", tmp_path / "b.toml"])


def test_the_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from can2care.cli import main

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace('"warning"', '"loud"'))
    assert main(["rules", "check", str(good)]) == 0
    assert "rules, no problems" in capsys.readouterr().out
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: rule 'lv_low': severity" in err and "1 problem(s)" in err
