"""The running agent: its frame sources, its pipeline and its persistent counters.

Errors::

    SourceError       the configured bus or log cannot be opened (names which and why)

The agent also raises `edge_agent.config.ConfigValueError` when the configuration names VSS
paths its catalogue lacks (`check_catalogue`).
"""

from .checks import check_catalogue
from .runner import Agent, AgentStatus, write_status_file
from .sequence import SequenceStore
from .source import BusSource, FrameSource, LogSource, SourceError, messages_to_batch, open_source

__all__ = [
    "Agent",
    "AgentStatus",
    "BusSource",
    "FrameSource",
    "LogSource",
    "SequenceStore",
    "SourceError",
    "check_catalogue",
    "messages_to_batch",
    "open_source",
    "write_status_file",
]
