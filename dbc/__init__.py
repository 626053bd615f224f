"""DBC files and their signal maps to canonical COVESA VSS signal names, as package data.

`load_catalogue` reads a DBC and its signal map into a `Catalogue`; `demo_catalogue` reads
the demo vehicle shipped here. cantools is imported only when a catalogue is loaded, so this
package can be imported without it. The map format is described in docs/signal-map.md.

Errors::

    CatalogueError          a catalogue cannot be loaded (permanent: fix the file)
     ├── DbcError           the DBC cannot be read or parsed (path, line, column)
     └── SignalMapError     the signal map is malformed or does not match its DBC
                            (path, line, field)
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from ._errors import CatalogueError, DbcError, SignalMapError
from .catalogue import (
    DEMO_DBC,
    DEMO_MAP,
    Catalogue,
    SignalMapping,
    demo_catalogue,
    load_catalogue,
)

__all__ = [
    "DEMO_DBC",
    "DEMO_MAP",
    "Catalogue",
    "CatalogueError",
    "DbcError",
    "SignalMapError",
    "SignalMapping",
    "data_file",
    "demo_catalogue",
    "load_catalogue",
]


def data_file(name: str) -> Traversable:
    """A file shipped in this package (a DBC or a signal map), by its name."""
    return files(__name__).joinpath(name)
