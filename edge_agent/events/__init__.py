"""Urgent events decided on the edge: a crash is sent at once, not with the next batch.

`CrashDetector` reads the watched signals' full-rate samples (see `edge_agent.sampling`) and
returns `edge_agent.wire.CrashEvent` values carrying what a rescue service needs.

Errors::

    EventConfigError    the crash detector cannot be set up with this catalogue (permanent)
"""

from .crash import CrashDetector, EventConfigError, crash_problems

__all__ = ["CrashDetector", "EventConfigError", "crash_problems"]
