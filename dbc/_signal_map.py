"""Signal map files: TOML mapping DBC signals to VSS paths (format in docs/signal-map.md).

Parsing checks the file on its own; `check_against` checks it against its DBC. Both raise
`SignalMapError` naming the file, the line where it can be found, and the field.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from can2care import tomlfile

from ._errors import SignalMapError

if TYPE_CHECKING:
    from cantools.database.can import Database

__all__ = ["MAP_VERSION", "ParsedMap", "SignalMapping", "check_against", "parse_signal_map"]

MAP_VERSION = 1

_TOP_KEYS = frozenset({"version", "dbc", "signals"})
_ENTRY_KEYS = frozenset({"message", "signal", "unit", "scale", "offset"})
_VSS_RE = re.compile(r"[A-Z][A-Za-z0-9_]*(\.[A-Z][A-Za-z0-9_]*)+")


@dataclass(frozen=True, slots=True)
class SignalMapping:
    """One DBC signal's VSS path and the linear transform after the DBC's own scaling.

    The VSS value is ``dbc_value * scale + offset``, in ``unit`` (None: no unit, e.g. a
    boolean, a count or a value from a value table).
    """

    vss: str
    message: str
    signal: str
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0

    @property
    def has_transform(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0

    def apply(self, value: float) -> float:
        """The VSS value of a physical DBC value."""
        return value * self.scale + self.offset if self.has_transform else value


@dataclass(frozen=True, slots=True)
class ParsedMap:
    """A signal map as read from its file, before it is checked against a DBC."""

    dbc: str | None
    mappings: tuple[SignalMapping, ...]


def parse_signal_map(text: str, source: str) -> ParsedMap:
    """Parse and validate the text of a signal map; ``source`` names it in errors."""
    try:
        document = tomlfile.loads(text)
    except tomlfile.TomlSyntaxError as exc:
        raise SignalMapError(
            f"invalid TOML: {exc.reason}", path=source, line=exc.line, column=exc.column
        ) from None
    report = _Reporter(text, source)
    for key in document:
        if key not in _TOP_KEYS:
            raise report.top(f"unknown key (expected {_one_of(_TOP_KEYS)})", key)
    if "version" not in document:
        raise report.top(f"missing key (the map format version, {MAP_VERSION})", "version")
    version = document["version"]
    if not _is_int(version):
        raise report.top(f"must be an integer, not {_kind(version)}", "version")
    if version != MAP_VERSION:
        raise report.top(
            f"unsupported version {version} (this can2care reads version {MAP_VERSION})", "version"
        )
    dbc = document.get("dbc")
    if dbc is not None and not (isinstance(dbc, str) and dbc.strip()):
        raise report.top(f"must be a file name relative to the map, not {_kind(dbc)}", "dbc")
    if "signals" not in document:
        raise report.top("missing key (a table of VSS paths)", "signals")
    signals = document["signals"]
    if not isinstance(signals, dict):
        raise report.top(f"must be a table of VSS paths, not {_kind(signals)}", "signals")
    mappings = [_parse_entry(vss, entry, report) for vss, entry in signals.items()]
    _check_paths(mappings, report)
    return ParsedMap(dbc=dbc, mappings=tuple(mappings))


def _parse_entry(vss: str, entry: object, report: _Reporter) -> SignalMapping:
    if not _VSS_RE.fullmatch(vss):
        raise report.entry(
            "not a VSS path (names separated by dots, each starting with a capital letter)", vss
        )
    if not isinstance(entry, dict):
        raise report.entry(f"must be a table, not {_kind(entry)}", vss)
    for key in entry:
        if key not in _ENTRY_KEYS:
            raise report.entry(f"unknown key (expected {_one_of(_ENTRY_KEYS)})", vss, key)
    strings: dict[str, str] = {}
    for key in ("message", "signal", "unit"):
        value = entry.get(key)
        if value is None:
            if key != "unit":
                raise report.entry(f"missing key (the DBC {key}'s name)", vss, key)
            continue
        if not isinstance(value, str) or not value.strip():
            raise report.entry(f"must be a non-empty string, not {_kind(value)}", vss, key)
        strings[key] = value
    numbers: dict[str, float] = {}
    for key, default in (("scale", 1.0), ("offset", 0.0)):
        value = entry.get(key, default)
        if not (_is_int(value) or isinstance(value, float)):
            raise report.entry(f"must be a number, not {_kind(value)}", vss, key)
        if not math.isfinite(value):
            raise report.entry(f"must be finite, not {value}", vss, key)
        numbers[key] = float(value)
    if numbers["scale"] == 0.0:
        raise report.entry("must not be zero", vss, "scale")
    return SignalMapping(
        vss=vss,
        message=strings["message"],
        signal=strings["signal"],
        unit=strings.get("unit"),
        scale=numbers["scale"],
        offset=numbers["offset"],
    )


def _check_paths(mappings: list[SignalMapping], report: _Reporter) -> None:
    """No two paths that differ only in case; no path that is a branch of another."""
    by_folded: dict[str, str] = {}
    for mapping in mappings:
        other = by_folded.setdefault(mapping.vss.casefold(), mapping.vss)
        if other != mapping.vss:
            raise report.entry(
                f"duplicate VSS path: differs from {other!r} only in case", mapping.vss
            )
    paths = {mapping.vss for mapping in mappings}
    for mapping in mappings:
        parts = mapping.vss.split(".")
        for end in range(1, len(parts)):
            branch = ".".join(parts[:end])
            if branch in paths:
                raise report.entry(
                    f"{branch!r} is mapped to a signal, so it cannot also be a branch", mapping.vss
                )


def check_against(parsed: ParsedMap, database: Database, text: str, source: str) -> None:
    """Check that every mapped signal exists in ``database`` and is mapped only once."""
    report = _Reporter(text, source)
    by_signal: dict[tuple[str, str], str] = {}
    for mapping in parsed.mappings:
        try:
            message = database.get_message_by_name(mapping.message)
        except KeyError:
            names = [message.name for message in database.messages]
            raise report.entry(
                f"unknown message {mapping.message!r}{_suggest(mapping.message, names)}",
                mapping.vss,
                "message",
            ) from None
        try:
            signal = message.get_signal_by_name(mapping.signal)
        except KeyError:
            names = [signal.name for signal in message.signals]
            raise report.entry(
                f"unknown signal {mapping.signal!r} in message {mapping.message!r}"
                f"{_suggest(mapping.signal, names)}",
                mapping.vss,
                "signal",
            ) from None
        if mapping.has_transform and signal.choices:
            raise report.entry(
                f"signal {mapping.signal!r} has a value table, so it cannot be transformed",
                mapping.vss,
                "scale" if mapping.scale != 1.0 else "offset",
            )
        other = by_signal.setdefault((mapping.message, mapping.signal), mapping.vss)
        if other != mapping.vss:
            raise report.entry(
                f"{mapping.message}.{mapping.signal} is already mapped to {other!r}",
                mapping.vss,
                "signal",
            )


class _Reporter:
    """Errors about one map file, with the line of the offending key where it can be found."""

    def __init__(self, text: str, source: str) -> None:
        self._finder = _LineFinder(text)
        self._source = source

    def top(self, reason: str, key: str) -> SignalMapError:
        return SignalMapError(reason, path=self._source, line=self._finder.top(key), field=key)

    def entry(self, reason: str, vss: str, key: str | None = None) -> SignalMapError:
        field = f'signals."{vss}"' + (f".{key}" if key else "")
        line = self._finder.entry(vss, key)
        return SignalMapError(reason, path=self._source, line=line, field=field)


class _LineFinder:
    """Best-effort line numbers (from 1) of keys in a signal map, for error messages."""

    def __init__(self, text: str) -> None:
        self._lines = text.split("\n")

    def top(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for index, line in enumerate(self._lines):
            stripped = line.lstrip()
            if stripped.startswith("["):
                return index + 1 if key == "signals" and stripped.startswith("[signals") else None
            if pattern.match(line):
                return index + 1
        return None

    def entry(self, vss: str, key: str | None = None) -> int | None:
        quoted = (f'"{vss}"', f"'{vss}'")
        start = next(
            (i for i, line in enumerate(self._lines) if any(q in line for q in quoted)), None
        )
        if start is None:
            return None
        if key is None or not self._lines[start].lstrip().startswith("["):
            return start + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for index in range(start + 1, len(self._lines)):
            line = self._lines[index]
            if line.lstrip().startswith("["):
                break
            if pattern.match(line):
                return index + 1
        return start + 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {dict: "a table", list: "an array"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if isinstance(value, (bool, int, float, str)) else name


def _one_of(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
