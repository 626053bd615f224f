"""Scenario files: a TOML drive and its scenarios, checked, with errors naming field and line.

Format (see docs/simulator.md)::

    version = 1                 # optional, 1
    [drive]                     # optional; command-line options override it
    vehicle = "C2CDEM00000000001"
    variant = "ev"              # ev | combustion
    cycle = "urban"             # urban | highway | wltp | parking
    duration = "20m"            # seconds, or "1h30m", "90s", ...
    seed = 7

    [[scenario]]
    kind = "crash"
    at = "12m"                  # from the start of the drive
    crash_type = "front"

tomllib gives no positions for values, so the line of a bad value is found by looking for its
key in the text under the right table header, as ``dbc._signal_map`` does for signal maps.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from can2care import tomlfile
from can2care.durations import parse_duration

from .errors import ScenarioError
from .scenarios import KINDS, Param, Scenario

__all__ = ["DRIVE_KEYS", "ScenarioFile", "load_scenario_file", "parse_duration", "parse_scenarios"]

_VERSION = 1

#: Keys of the ``[drive]`` table and their types.
DRIVE_KEYS: Mapping[str, type] = MappingProxyType(
    {
        "vehicle": str,
        "variant": str,
        "cycle": str,
        "duration": float,
        "seed": int,
        "start_time": float,
        "ambient_c": float,
        "initial_soc": float,
        "initial_odometer_km": float,
        "plugged_in": bool,
        "regen": bool,
    }
)
_CHOICES = {"variant": ("ev", "combustion"), "cycle": ("urban", "highway", "wltp", "parking")}


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    """A parsed scenario file: the ``[drive]`` settings given, and the scenarios in order."""

    drive: Mapping[str, Any] = field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = ()
    source: str | None = None


def load_scenario_file(path: str | os.PathLike[str]) -> ScenarioFile:
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror or exc}", path=source) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text: {exc.reason}", path=source) from exc
    return parse_scenarios(text, source)


def parse_scenarios(text: str, source: str | None = None) -> ScenarioFile:
    """Parse and check a scenario file's text; ``source`` names it in errors."""
    try:
        document = tomlfile.loads(text)
    except tomlfile.TomlSyntaxError as exc:
        raise ScenarioError(f"invalid TOML: {exc.reason}", path=source, line=exc.line) from None
    lines = _Lines(text)

    def error(reason: str, fieldname: str, line: int | None) -> ScenarioError:
        return ScenarioError(reason, path=source, line=line, field=fieldname)

    for key in document:
        if key not in ("version", "drive", "scenario"):
            raise error(
                "unknown key (expected version, drive, scenario)", key, lines.key(None, 0, key)
            )
    version = document.get("version", _VERSION)
    if version != _VERSION or isinstance(version, bool):
        raise error(
            f"unsupported version {version!r} (expected {_VERSION})",
            "version",
            lines.key(None, 0, "version"),
        )
    drive = _parse_drive(document.get("drive", {}), lines, error)
    entries = document.get("scenario", [])
    if not isinstance(entries, list):
        raise error(
            "must be an array of tables ([[scenario]])", "scenario", lines.header("scenario", 1)
        )
    scenarios = tuple(
        _parse_scenario(entry, number, lines, error) for number, entry in enumerate(entries, 1)
    )
    return ScenarioFile(MappingProxyType(drive), scenarios, source)


def _parse_drive(table: object, lines: _Lines, error: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise error("must be a table", "drive", lines.key(None, 0, "drive"))
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = lines.key("drive", 1, key)
        if key not in DRIVE_KEYS:
            raise error(
                f"unknown key (expected {', '.join(sorted(DRIVE_KEYS))})", f"drive.{key}", where
            )
        kind = DRIVE_KEYS[key]
        if kind is float:
            number = parse_duration(value) if key == "duration" else _number(value)
            if number is None or not math.isfinite(number):
                raise error(f"must be a number, not {_kind(value)}", f"drive.{key}", where)
            value = number
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise error(f"must be {kind.__name__}, not {_kind(value)}", f"drive.{key}", where)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise error(
                f"must be one of {', '.join(_CHOICES[key])}, not {value!r}", f"drive.{key}", where
            )
        out[key] = value
    return out


def _parse_scenario(entry: object, number: int, lines: _Lines, error: Any) -> Scenario:
    base = f"scenario[{number}]"
    header = lines.header("scenario", number)
    if not isinstance(entry, dict):
        raise error("must be a table", base, header)
    kind = entry.get("kind")
    if kind is None:
        raise error("missing key (the scenario kind)", f"{base}.kind", header)
    if kind not in KINDS:
        raise error(
            f"unknown scenario kind {kind!r} (expected one of {', '.join(KINDS)})",
            f"{base}.kind",
            lines.key("scenario", number, "kind"),
        )
    spec = KINDS[kind]
    params = {p.name: p for p in spec.params}
    for key in entry:
        if key not in params and key not in ("kind", "at"):
            expected = ", ".join(["kind", "at", *params])
            raise error(
                f"unknown key for {kind} (expected {expected})",
                f"{base}.{key}",
                lines.key("scenario", number, key),
            )
    at_line = lines.key("scenario", number, "at") or header
    if "at" not in entry:
        if kind != "cold_morning":
            raise error("missing key (seconds from the start of the drive)", f"{base}.at", header)
        at = 0.0
    else:
        parsed = parse_duration(entry["at"])
        if parsed is None:
            raise error(
                f'must be seconds or a duration such as "2m30s", not {_kind(entry["at"])}',
                f"{base}.at",
                at_line,
            )
        at = parsed
        if at < 0 or not math.isfinite(at):
            raise error(f"must not be negative, not {at:g}", f"{base}.at", at_line)
        if kind == "cold_morning" and at != 0:
            raise error("a cold morning starts with the drive: at must be 0", f"{base}.at", at_line)
    values = {}
    for key, value in entry.items():
        if key in params:
            values[key] = _check_param(
                params[key], value, f"{base}.{key}", lines.key("scenario", number, key), error
            )
    return Scenario(kind, at, values, index=number, line=header)


def _check_param(param: Param, value: object, fieldname: str, line: int | None, error: Any) -> Any:
    if param.type is str:
        if not isinstance(value, str):
            raise error(f"must be a string, not {_kind(value)}", fieldname, line)
        if param.choices and value not in param.choices:
            raise error(
                f"must be one of {', '.join(param.choices)}, not {value!r}", fieldname, line
            )
        return value
    if param.type is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise error(f"must be an integer, not {_kind(value)}", fieldname, line)
    number = _number(value)
    if number is None:
        raise error(f"must be a number, not {_kind(value)}", fieldname, line)
    if (param.low is not None and number < param.low) or (
        param.high is not None and number > param.high
    ):
        raise error(
            f"{number:g} is out of range ({param.low:g} to {param.high:g})", fieldname, line
        )
    return value if param.type is int else number


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {dict: "a table", list: "an array"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if isinstance(value, bool | int | float | str) else name


class _Lines:
    """Best-effort line numbers (from 1) of table headers and keys in a scenario file."""

    def __init__(self, text: str) -> None:
        self._lines = text.split("\n")

    def header(self, table: str, number: int) -> int | None:
        """The ``number``-th header of ``table`` (``[table]`` or ``[[table]]``)."""
        pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen = 0
        for index, line in enumerate(self._lines):
            if pattern.match(line):
                seen += 1
                if seen == number:
                    return index + 1
        return None

    def key(self, table: str | None, number: int, key: str) -> int | None:
        start = 0
        if table is not None:
            header = self.header(table, number)
            if header is None:
                return None
            start = header
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for index in range(start, len(self._lines)):
            line = self._lines[index]
            if line.lstrip().startswith("["):
                break
            if pattern.match(line):
                return index + 1
        return start if table is not None else None
