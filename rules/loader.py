"""Rule files: TOML, validated with errors naming the file, line and field (docs/rules.md).

::

    rules = load_rules([Path("rules/care.toml")])       # or load_builtin()
    rules = parse_rules(text, "care.toml")

Every problem of a file is reported at once (`RuleFileError.problems`, each
``file:line: rule 'id': field: reason``); a set of files with any problem loads nothing, so a
reload keeps the rules that run until the files are right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, get_args

from can2care.durations import parse_duration
from can2care.tomlfile import TomlSyntaxError, loads

from .changes import Category, Severity
from .errors import ExpressionError, RuleFileError
from .expr import compile_condition
from .model import Rule, RuleSet

__all__ = ["BUILTIN", "RuleFileError", "load_builtin", "load_rules", "parse_rules"]

BUILTIN = "catalogue.toml"
_VERSION = 1
_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SUBKEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEYS = {
    "id", "title", "category", "severity", "when", "event", "clear", "for", "keep", "resolve",
    "cooldown", "repeat", "max_age", "escalate_after", "quiet_hours", "inhibited_by",
    "for_each", "details", "description",
}  # fmt: skip
_DURATIONS = {
    "for": "pending_s", "keep": "hold_s", "cooldown": "cooldown_s", "repeat": "repeat_s",
    "max_age": "max_age_s", "escalate_after": "escalate_after_s",
}  # fmt: skip
_EVENTS = ("crash",)


def load_builtin() -> RuleSet:
    """The built-in care catalogue shipped with the package."""
    text = files("rules").joinpath(BUILTIN).read_text("utf-8")
    return parse_rules(text, f"rules/{BUILTIN}")


def load_rules(
    paths: Iterable[Path], *, builtin: bool = False, texts: Iterable[tuple[str, str]] = ()
) -> RuleSet:
    """The rules of ``paths`` (and the built-in catalogue first, if asked), ids unique.

    ``texts`` are more files as (source name, text), read after ``paths`` (the rule files
    stored through the API, say).
    """
    problems: list[str] = []
    rules: list[Rule] = []
    sources: list[str] = []
    if builtin:
        rules.extend(load_builtin())
        sources.append(f"rules/{BUILTIN}")
    for path in paths:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read the file: {exc}")
            continue
        try:
            rules.extend(parse_rules(text, str(path)))
        except RuleFileError as exc:
            problems.extend(exc.problems)
        sources.append(str(path))
    for source, text in texts:
        try:
            rules.extend(parse_rules(text, source))
        except RuleFileError as exc:
            problems.extend(exc.problems)
        sources.append(source)
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(f"{rule.source}: rule {rule.id!r}: id: also defined at {seen[rule.id]}")
        seen.setdefault(rule.id, rule.source)
    _check_inhibitions(rules, problems)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(tuple(rules), tuple(sources))


def parse_rules(text: str, source: str) -> RuleSet:
    """The rules of one file's text; `RuleFileError` with every problem."""
    try:
        document = loads(text)
    except TomlSyntaxError as exc:
        where = ":".join(str(p) for p in (source, exc.line, exc.column) if p is not None)
        raise RuleFileError([f"{where}: {exc.reason}"]) from None
    lines = _table_lines(text)
    problems: list[str] = []
    unknown = sorted(set(document) - {"version", "rule"})
    if unknown:
        problems.append(f"{source}:1: unknown top-level key(s) {', '.join(unknown)}")
    if document.get("version") != _VERSION:
        problems.append(f"{source}:1: version: must be {_VERSION}, not {document.get('version')!r}")
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        problems.append(f"{source}:1: rule: use [[rule]] tables")
        tables = []
    rules = []
    for index, table in enumerate(tables):
        where = f"{source}:{lines[index] if index < len(lines) else 1}"
        rule = _rule(table, where, problems)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(tuple(rules), (source,))


def _table_lines(text: str) -> list[int]:
    """The line of each ``[[rule]]`` header, in order."""
    return [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if re.fullmatch(r"\s*\[\[\s*rule\s*\]\]\s*(#.*)?", line)
    ]


def _rule(table: Any, where: str, problems: list[str]) -> Rule | None:
    if not isinstance(table, dict):
        problems.append(f"{where}: a [[rule]] must be a table")
        return None
    before = len(problems)
    rule_id = table.get("id")
    name = f"rule {rule_id!r}" if isinstance(rule_id, str) else "rule"

    def problem(key: str, reason: str) -> None:
        problems.append(f"{where}: {name}: {key}: {reason}")

    for key in sorted(set(table) - _KEYS):
        problem(key, f"unknown key; known: {', '.join(sorted(_KEYS))}")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        problem(
            "id",
            f"must be lower-case letters, digits and _ (starting with a letter), not {rule_id!r}",
        )
    fields: dict[str, Any] = {"id": rule_id, "source": where}
    fields["title"] = _text(table, "title", problem, required=True)
    fields["description"] = _text(table, "description", problem) or ""
    fields["category"] = _choice(table, "category", get_args(Category), problem)
    fields["severity"] = _choice(table, "severity", get_args(Severity), problem)
    fields["resolve"] = _choice(table, "resolve", ("auto", "manual"), problem, default="auto")
    for key, attribute in _DURATIONS.items():
        if key in table:
            seconds = parse_duration(table[key])
            if seconds is None or seconds < 0 or seconds != seconds:
                problem(
                    key,
                    f'must be a duration such as "90s", "10m", "1h30m", "2d", not {table[key]!r}',
                )
            else:
                fields[attribute] = seconds
    if "quiet_hours" in table:
        if isinstance(table["quiet_hours"], bool):
            fields["quiet_hours"] = table["quiet_hours"]
        else:
            problem("quiet_hours", f"must be true or false, not {table['quiet_hours']!r}")
    fields["inhibited_by"] = tuple(_strings(table, "inhibited_by", problem))
    fields["details"] = tuple(_strings(table, "details", problem))
    fields["for_each"] = _for_each(table, problem)
    _condition(table, fields, problem)
    if len(problems) > before:
        return None
    if fields["category"] == "rescue" and "quiet_hours" not in table:
        fields["quiet_hours"] = False  # rescue is never held
    return Rule(**fields)


def _condition(table: Mapping[str, Any], fields: dict[str, Any], problem: Any) -> None:
    when, event = table.get("when"), table.get("event")
    if (when is None) == (event is None):
        problem("when", 'give a condition (when) or an event (event = "crash"), one of them')
        return
    if event is not None:
        if event not in _EVENTS:
            problem("event", f"must be one of {', '.join(_EVENTS)}, not {event!r}")
        if "clear" in table or "for" in table:
            problem("event", "an event rule has no clear or for (keep: how long it mutes others)")
        fields["event"] = event
        return
    placeholder = next(iter(fields["for_each"] or {}), None)
    for key in ("when", "clear"):
        text = table.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or not text.strip():
            problem(key, f"must be an expression, not {text!r}")
            continue
        fields[key] = text
        sample = (
            text
            if placeholder is None
            else text.replace("{" + placeholder + "}", fields["for_each"][placeholder][0])
        )
        try:
            compile_condition(sample)
        except ExpressionError as exc:
            problem(key, str(exc))


def _text(
    table: Mapping[str, Any], key: str, problem: Any, *, required: bool = False
) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            problem(key, "missing")
        return None
    if not isinstance(value, str) or not value.strip():
        problem(key, f"must be text, not {value!r}")
        return None
    return value.strip()


def _choice(
    table: Mapping[str, Any],
    key: str,
    choices: tuple[str, ...],
    problem: Any,
    *,
    default: str | None = None,
) -> Any:
    value = table.get(key, default)
    if value not in choices:
        problem(key, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def _strings(table: Mapping[str, Any], key: str, problem: Any) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problem(key, f"must be a list of texts, not {value!r}")
        return []
    return list(value)


def _for_each(table: Mapping[str, Any], problem: Any) -> dict[str, tuple[str, ...]]:
    value = table.get("for_each")
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) != 1:
        problem(
            "for_each", 'must be one placeholder and its values, e.g. { wheel = ["Left", "Right"] }'
        )
        return {}
    ((name, values),) = value.items()
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and _SUBKEY.fullmatch(v) for v in values)
    ):
        problem(f"for_each.{name}", "must be a non-empty list of 1-64 of A-Z a-z 0-9 _ . -")
        return {}
    if len(set(values)) != len(values):
        problem(f"for_each.{name}", "has a value twice")
        return {}
    for key in ("when", "clear"):
        text = table.get(key)
        if isinstance(text, str) and "{" + name + "}" not in text and key == "when":
            problem("when", f"does not use the placeholder {{{name}}}")
    return {name: tuple(values)}


def _check_inhibitions(rules: list[Rule], problems: list[str]) -> None:
    ids = {r.id for r in rules}
    for rule in rules:
        for other in rule.inhibited_by:
            if other not in ids:
                problems.append(f"{rule.source}: rule {rule.id!r}: inhibited_by: no rule {other!r}")
            elif other == rule.id:
                problems.append(f"{rule.source}: rule {rule.id!r}: inhibited_by: itself")
