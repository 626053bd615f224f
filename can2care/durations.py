"""Durations as people write them in the project's files: ``90``, ``"90s"``, ``"15m"``,
``"1h30m"``, ``"30d"`` (seconds when a bare number)."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_DURATION_RE = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)
_UNITS = (86_400.0, 3_600.0, 60.0, 1.0)


def parse_duration(value: object) -> float | None:
    """Seconds from a number or a string such as ``"90"``, ``"90s"``, ``"15m"``, ``"1h30m"``,
    ``"2d"``; None for anything else (a bool, a negative or malformed text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            return float(text)
        except ValueError:
            pass
        match = _DURATION_RE.fullmatch(text)
        if match and any(match.groups()):
            return sum(float(g) * unit for g, unit in zip(match.groups(), _UNITS, strict=True) if g)
    return None


def format_duration(seconds: float) -> str:
    """``seconds`` the way `parse_duration` reads it back, e.g. ``"1h30m"``, ``"2d"``."""
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"not a duration: {seconds}")
    parts = []
    rest = float(seconds)
    for suffix, unit in zip("dhm", _UNITS, strict=False):
        whole = int(rest // unit)
        if whole:
            parts.append(f"{whole}{suffix}")
            rest -= whole * unit
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)
