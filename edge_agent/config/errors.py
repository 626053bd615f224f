"""Errors of the edge agent's configuration::

ConfigError                 the configuration cannot be loaded (permanent: fix it and restart)
 ├── ConfigFileError        the file cannot be read or is not valid TOML (path, line, column)
 └── ConfigValueError       one or more values are wrong: unknown keys, wrong types, values
                            out of range, missing files, keys that contradict each other,
                            or (raised by `edge_agent.agent.check_catalogue`) VSS paths the
                            catalogue lacks. ``problems`` lists them all, each naming where
                            the value came from (file and line, environment variable, or
                            override), the dotted key and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigFileError", "ConfigValueError", "Problem"]


class ConfigError(Exception):
    """The configuration cannot be loaded; ``str(error)`` says where and why."""


class ConfigFileError(ConfigError):
    """The configuration file cannot be read, or is not valid TOML.

    ``str(error)`` is one line, ``path:line:column: reason``, with the parts that are known.
    """

    def __init__(
        self, reason: str, *, path: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.column = column
        where = ":".join(str(part) for part in (path, line, column) if part is not None)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One wrong value: the dotted ``key`` (``mqtt.port``, ``capture[1].when``), the
    ``reason`` (what is wrong and what was expected) and where the value came from: a file
    (``path``, and ``line`` when it can be found), an environment ``variable``, or an override
    passed to ``load_config`` (``override`` true). A missing key has the place it was looked for.
    """

    key: str
    reason: str
    path: str | None = None
    line: int | None = None
    variable: str | None = None
    override: bool = False

    def __str__(self) -> str:
        if self.variable is not None:
            where = f"environment variable {self.variable}: "
        elif self.override:
            where = "override: "
        elif self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        else:
            where = ""
        return f"{where}{self.key}: {self.reason}"


class ConfigValueError(ConfigError):
    """Values of the configuration are wrong; ``problems`` holds every one found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            lines = "".join(f"\n  {problem}" for problem in self.problems)
            message = f"{len(self.problems)} problems in the configuration:{lines}"
        super().__init__(message)
