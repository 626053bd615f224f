"""Typed reading of one table of the raw document.

Every accessor returns a checked value, or records a problem and returns the default so that
reading goes on and all problems are reported together. `Table.finish` reports the keys no
accessor asked for, with a suggestion when one is close to a known key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from fractions import Fraction
from pathlib import Path

from ._document import Document, KeyPath, suggest

__all__ = ["Check", "Table", "parse_byte_size"]

Check = Callable[[str], str | None]
"""A check of a string value: None when it is good, else what is wrong with it."""

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_byte_size(value: str | int) -> int:
    """A number of bytes from an integer or a string such as ``"256MiB"``, ``"1GB"``,
    ``"500kB"`` or ``"1.5 GiB"``: kB, MB, GB, TB are powers of 1000, KiB, MiB, GiB, TiB
    powers of 1024, units are case-insensitive. Raises `ValueError` saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be a byte size, not {kind(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, not {value}")
        return value
    match = _SIZE_RE.fullmatch(value)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(
            f"not a byte size: {value!r} (expected an integer, or a number and a unit, "
            "e.g. '256MiB', '1GB', '500kB')"
        )
    size = Fraction(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if size.denominator != 1:
        raise ValueError(f"not a whole number of bytes: {value!r}")
    return int(size)


def kind(value: object) -> str:
    """What a value is, for messages: ``a string ('x')``, ``a table``."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {dict: "a table", list: "an array", tuple: "an array"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if isinstance(value, (bool, int, float, str)) else name


class _Missing:
    pass


_MISSING = _Missing()


class Table:
    """One table of the document at ``path``, read key by key."""

    def __init__(self, document: Document, path: KeyPath, data: Mapping[str, object]) -> None:
        self.document = document
        self.key_path = path
        self._data = data
        self._known: set[str] = set()
        self._failed: set[str] = set()

    def problem(self, key: str, reason: str) -> None:
        """Record a problem with the value of ``key`` in this table."""
        self._failed.add(key)
        self.document.problem((*self.key_path, key), reason)

    def has(self, key: str) -> bool:
        """Whether ``key`` is set (a key asked about is a known key)."""
        self._known.add(key)
        return key in self._data

    def failed(self, key: str) -> bool:
        """Whether a problem was recorded for ``key``."""
        return key in self._failed

    def raw(self, key: str) -> object:
        self._known.add(key)
        return self._data.get(key, _MISSING)

    def _text(self, key: str) -> object:
        """The value, or the environment variable's text when it did not read as a string."""
        value = self.raw(key)
        if not isinstance(value, str | _Missing):
            text = self.document.text((*self.key_path, key))
            if text is not None:
                return text
        return value

    def string(self, key: str, default: str, *, check: Check | None = None) -> str:
        value = self._optional_string(key, check)
        return default if value is None else value

    def required_string(self, key: str, what: str, *, check: Check | None = None) -> str:
        if not self.has(key) or self._data[key] == "":
            self.problem(key, f"missing: {what}")
            return ""
        return self._optional_string(key, check) or ""

    def optional_string(
        self, key: str, default: str | None = None, *, check: Check | None = None
    ) -> str | None:
        """A string; the empty string means none."""
        if not self.has(key):
            return default
        return self._optional_string(key, check)

    def _optional_string(self, key: str, check: Check | None) -> str | None:
        value = self._text(key)
        if isinstance(value, _Missing):
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {kind(value)}")
            return None
        if value == "":
            return None
        reason = None if check is None else check(value)
        if reason is not None:
            self.problem(key, reason)
            return None
        return value

    def choice(self, key: str, default: str, choices: Collection[str]) -> str:
        value = self._text(key)
        if isinstance(value, _Missing):
            return default
        if value not in choices:
            expected = ", ".join(repr(choice) for choice in choices)
            shown = kind(value) if not isinstance(value, str) else repr(value)
            hint = suggest(value, choices) if isinstance(value, str) else ""
            self.problem(key, f"must be one of {expected}, not {shown}{hint}")
            return default
        assert isinstance(value, str)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if isinstance(value, _Missing):
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {kind(value)}")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.optional_integer(key, low, high)
        return default if value is None else value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        value = self.raw(key)
        if isinstance(value, _Missing):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"must be an integer from {low} to {high}, not {kind(value)}")
            return None
        return value

    def number(
        self,
        key: str,
        default: float,
        *,
        low: float = 0.0,
        high: float = math.inf,
        above: bool = False,
    ) -> float:
        """A finite number from ``low`` (excluded when ``above``) to ``high``."""
        value = self.optional_number(key, low=low, high=high, above=above)
        return default if value is None else value

    def optional_number(
        self, key: str, *, low: float = 0.0, high: float = math.inf, above: bool = False
    ) -> float | None:
        value = self.raw(key)
        if isinstance(value, _Missing):
            return None
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if (
            number is None
            or not math.isfinite(number)
            or number < low
            or (above and number == low)
            or number > high
        ):
            lower = f"greater than {low:g}" if above else f"at least {low:g}"
            upper = "" if high == math.inf else f" and at most {high:g}"
            self.problem(key, f"must be a number {lower}{upper}, not {kind(value)}")
            return None
        return float(number)

    def path(
        self, key: str, default: Path | None = None, *, must_exist: bool = False
    ) -> Path | None:
        """A file path, relative to the configuration file when it comes from there; the
        empty string means none."""
        value = self._text(key)
        if isinstance(value, _Missing):
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a file path (a string), not {kind(value)}")
            return default
        if value == "":
            return None
        path = Path(value)
        base = self.document.base_dir((*self.key_path, key))
        if base is not None and not path.is_absolute():
            path = base / path
        if must_exist and not path.is_file():
            reason = "not a file" if path.exists() else "no such file"
            self.problem(key, f"{reason}: {path}")
        return path

    def strings(
        self,
        key: str,
        default: tuple[str, ...],
        *,
        check: Check,
        what: str,
        allow_empty: bool = True,
    ) -> tuple[str, ...]:
        value = self.raw(key)
        if isinstance(value, _Missing):
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(key, f"must be an array of {what}, not {kind(value)}")
            return default
        if not value and not allow_empty:
            self.problem(key, f"must not be empty: expected an array of {what}")
            return default
        for item in value:
            reason = check(item)
            if reason is not None:
                self.problem(key, reason)
                return default
        return tuple(value)

    def mapping(self, key: str) -> dict[str, object]:
        value = self.raw(key)
        if isinstance(value, _Missing):
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"must be a table, not {kind(value)}")
            return {}
        return value

    def table(self, key: str) -> Table | None:
        """The sub-table ``key``, or None when it is not set or not a table."""
        value = self.raw(key)
        if isinstance(value, _Missing):
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a table, not {kind(value)}")
            return None
        return Table(self.document, (*self.key_path, key), value)

    def section(self, key: str) -> Table:
        """The sub-table ``key``, empty when it is not set."""
        return self.table(key) or Table(self.document, (*self.key_path, key), {})

    def tables(self, key: str, header: str) -> list[Table]:
        """The array of tables ``key``, written ``[[header]]`` in TOML."""
        value = self.raw(key)
        if isinstance(value, _Missing):
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(
                key,
                f"must be an array of tables (write each one as [[{header}]]), not {kind(value)}",
            )
            return []
        return [
            Table(self.document, (*self.key_path, key, index), item)
            for index, item in enumerate(value)
        ]

    def finish(self) -> None:
        """Report the keys of this table no accessor asked for."""
        for key in self._data:
            if key not in self._known:
                hint = suggest(key, self._known)
                if not hint:
                    hint = f" (expected one of: {', '.join(sorted(self._known))})"
                self.problem(key, f"unknown key{hint}")
