"""The errors of the ``dbc`` package (the tree is drawn in the package docstring)."""

from __future__ import annotations

__all__ = ["CatalogueError", "DbcError", "SignalMapError"]


class CatalogueError(Exception):
    """A signal catalogue cannot be loaded: fix the file and load it again.

    ``str(error)`` is one line, ``path:line:column: reason``, with the parts that are known.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = " ".join(reason.split())
        self.path = path
        self.line = line
        self.column = column
        where = ":".join(str(part) for part in (path, line, column) if part is not None)
        super().__init__(f"{where}: {self._detail()}" if where else self._detail())

    def _detail(self) -> str:
        return self.reason


class DbcError(CatalogueError):
    """A DBC file cannot be read or parsed."""


class SignalMapError(CatalogueError):
    """A signal map is malformed or does not match its DBC.

    ``field`` names the offending key in TOML dotted form, e.g. ``signals."Vehicle.Speed".signal``.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.field = field
        super().__init__(reason, path=path, line=line, column=column)

    def _detail(self) -> str:
        return self.reason if self.field is None else f"{self.field}: {self.reason}"
