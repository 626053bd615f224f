"""The errors of the ``simulators`` package (the tree is drawn in the package docstring)."""

from __future__ import annotations

__all__ = ["FleetError", "ReplayError", "ScenarioError", "SimulatorError"]


class SimulatorError(Exception):
    """A simulation or a replay cannot run as asked (permanent: fix the input)."""


class ScenarioError(SimulatorError):
    """A scenario file, or a scenario, is malformed or does not fit the drive.

    ``str(error)`` is one line, ``path:line: field: reason``, with the parts that are known;
    ``field`` names the offending key in TOML dotted form, e.g. ``scenario[2].at``.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = " ".join(reason.split())
        self.path = path
        self.line = line
        self.field = field
        where = ":".join(str(part) for part in (path, line) if part is not None)
        detail = self.reason if field is None else f"{field}: {self.reason}"
        super().__init__(f"{where}: {detail}" if where else detail)


class ReplayError(SimulatorError):
    """A log cannot be replayed (unreadable log, bus that cannot be opened)."""


class FleetError(SimulatorError):
    """A fleet cannot run as configured: bad options, an unreadable credentials file, or a
    broker that cannot be reached when the fleet starts."""
