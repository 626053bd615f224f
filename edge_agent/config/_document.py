"""The raw configuration document: the file's TOML with the environment and the overrides laid
over it, remembering where each value came from so that a problem can name its origin.

A value's origin is the environment variable or the override that set it, or else the file,
where the line of its key is found in the TOML text (best effort: a key inside an inline table
or an array reports the line of the enclosing key).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from can2care import tomlfile

from .errors import ConfigFileError, Problem

__all__ = ["ENV_PREFIX", "Document", "KeyPath", "dotted", "parse_toml", "suggest"]

ENV_PREFIX = "CAN2CARE_EDGE__"

KeyPath: TypeAlias = tuple[str | int, ...]

_BARE_KEY = r"[A-Za-z0-9_-]+"
_KEY_PART = rf"(?:{_BARE_KEY}|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED_KEY})\s*\]")
_KEY_LINE_RE = re.compile(rf"^\s*({_DOTTED_KEY})\s*=")
_KEY_PART_RE = re.compile(_KEY_PART)


def dotted(path: KeyPath) -> str:
    """A key path as people write it: ``mqtt.tls.ca_file``, ``capture[1].when``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``name``, else nothing."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_toml(text: str, source: str) -> dict[str, object]:
    """The TOML document in ``text``; `ConfigFileError` with the line if it is not valid."""
    try:
        return tomlfile.loads(text)
    except tomlfile.TomlSyntaxError as exc:
        raise ConfigFileError(
            f"invalid TOML: {exc.reason}", path=source, line=exc.line, column=exc.column
        ) from None


@dataclass(frozen=True, slots=True)
class _Origin:
    """A value set by an environment variable or by an override."""

    variable: str | None = None


_OVERRIDE = _Origin()


class Document:
    """The merged raw document and the origin of every value in it."""

    def __init__(self, data: dict[str, object], *, source: str | None, text: str = "") -> None:
        self.data = data
        self.source = source
        self._base = Path(source).absolute().parent if source is not None else None
        self._lines = _key_lines(text) if source is not None else {}
        self._origins: dict[KeyPath, _Origin] = {}
        self._created: dict[KeyPath, _Origin] = {}  # tables a layer made to hold its value
        self._texts: dict[KeyPath, str] = {}
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, reason: str) -> None:
        """Record a problem with the value at ``path``, located at its origin."""
        origin = self._origin(path) or self._created.get(path)
        key = dotted(path)
        if origin is _OVERRIDE:
            self.problems.append(Problem(key, reason, override=True))
        elif origin is not None:
            self.problems.append(Problem(key, reason, variable=origin.variable))
        else:
            line = next(
                (
                    self._lines[path[:end]]
                    for end in range(len(path), 0, -1)
                    if path[:end] in self._lines
                ),
                None,
            )
            self.problems.append(Problem(key, reason, path=self.source, line=line))

    def base_dir(self, path: KeyPath) -> Path | None:
        """The directory a relative path at ``path`` is relative to (None: the working one)."""
        return None if self._origin(path) is not None else self._base

    def text(self, path: KeyPath) -> str | None:
        """The text of the environment variable that set ``path``, if one did."""
        return self._texts.get(path)

    def apply_environment(self, env: Mapping[str, str]) -> None:
        """Lay the ``CAN2CARE_EDGE__SECTION__KEY`` variables of ``env`` over the document."""
        seen: dict[KeyPath, str] = {}
        names = [name for name in env if name.upper().startswith(ENV_PREFIX)]
        # A table's variable comes before its keys' variables, which refine it.
        for variable in sorted(names, key=lambda name: (name.upper(), name)):
            levels = variable[len(ENV_PREFIX) :].lower().split("__")
            origin = _Origin(variable)
            if not all(levels):
                self.problems.append(
                    Problem(
                        variable[len(ENV_PREFIX) :].lower().replace("__", "."),
                        "not a key: levels are separated by a double underscore, "
                        f"e.g. {ENV_PREFIX}MQTT__PORT",
                        variable=variable,
                    )
                )
                continue
            path: KeyPath = tuple(levels)
            if path in seen:
                self.problems.append(
                    Problem(
                        dotted(path),
                        f"also set by {seen[path]} (names differ only in case)",
                        variable=variable,
                    )
                )
                continue
            seen[path] = variable
            text = env[variable]
            if self._set(path, parse_env_value(text), origin):
                self._texts[path] = text

    def apply_overrides(self, overrides: Mapping[str, object]) -> None:
        """Lay dotted-key overrides over the document; a value None removes the key."""
        for key, value in overrides.items():
            path: KeyPath = tuple(key.split("."))
            if not all(path):
                self.problems.append(Problem(key, "not a dotted key", override=True))
            elif value is None:
                self._delete(path)
            else:
                self._set(path, _plain(value), _OVERRIDE)

    def _set(self, path: KeyPath, value: object, origin: _Origin) -> bool:
        node = self.data
        for end, part in enumerate(path[:-1], start=1):
            child = node.get(str(part))
            if isinstance(child, list):
                example = f"{ENV_PREFIX}{'__'.join(str(p).upper() for p in path[:end])}"
                self._problem_at(
                    path,
                    origin,
                    f"{dotted(path[:end])} is an array of tables: set it whole, "
                    f"e.g. {example}='[{{...}}, {{...}}]'",
                )
                return False
            if not isinstance(child, dict):
                child = {}
                node[str(part)] = child
                self._created.setdefault(path[:end], origin)
            node = child
        node[str(path[-1])] = value
        self._forget(path)
        self._origins[path] = origin
        return True

    def _delete(self, path: KeyPath) -> None:
        node: object = self.data
        for part in path[:-1]:
            node = node.get(str(part)) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(str(path[-1]), None)
        self._forget(path)
        self._origins[path] = _OVERRIDE

    def _forget(self, path: KeyPath) -> None:
        for known in [p for p in self._origins if p[: len(path)] == path]:
            del self._origins[known]
        for known in [p for p in self._texts if p[: len(path)] == path]:
            del self._texts[known]

    def _origin(self, path: KeyPath) -> _Origin | None:
        for end in range(len(path), 0, -1):
            origin = self._origins.get(path[:end])
            if origin is not None:
                return origin
        return None

    def _problem_at(self, path: KeyPath, origin: _Origin, reason: str) -> None:
        if origin is _OVERRIDE:
            self.problems.append(Problem(dotted(path), reason, override=True))
        else:
            self.problems.append(Problem(dotted(path), reason, variable=origin.variable))


def parse_env_value(text: str) -> object:
    """An environment variable's value: a TOML value if it reads as one, else the text."""
    try:
        document = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return document["value"] if document.keys() == {"value"} else text


def _plain(value: object) -> object:
    """An override's value as TOML would give it: dicts, lists and strings for paths."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _key_lines(text: str) -> dict[KeyPath, int]:
    """The line (from 1) where each key path of a TOML text first appears."""
    lines: dict[KeyPath, int] = {}
    arrays: dict[KeyPath, int] = {}  # array-of-tables path -> index of its last table
    table: KeyPath = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in line:
                in_string = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            table = _resolve(_split_key(header.group(2)), arrays, header.group(1) == "[[")
            _record(lines, table, number)
            continue
        key = _KEY_LINE_RE.match(line)
        if key:
            _record(lines, table + tuple(_split_key(key.group(1))), number)
            rest = line[key.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2:
                    in_string = quotes
    return lines


def _resolve(parts: list[str], arrays: dict[KeyPath, int], is_array: bool) -> KeyPath:
    path: KeyPath = ()
    for index, part in enumerate(parts):
        path += (part,)
        last = index == len(parts) - 1
        if last and is_array:
            arrays[path] = arrays.get(path, -1) + 1
        if path in arrays:
            path += (arrays[path],)
    return path


def _record(lines: dict[KeyPath, int], path: KeyPath, number: int) -> None:
    for end in range(1, len(path) + 1):
        lines.setdefault(path[:end], number)


def _split_key(key: str) -> list[str]:
    return [part[1:-1] if part[:1] in "\"'" else part for part in _KEY_PART_RE.findall(key)]
