"""Which decoded samples the agent sends: per-signal policies, triggers and captures.

`Sampler` applies each signal's policy (interval, on-change, deadband, all, off) and a
heartbeat, in one numba pass per batch, and hands the full-rate samples of watched signals to
`CaptureManager` (trigger expressions with pre/post windows, see `expr`) and to the crash
detector (`edge_agent.events`).

Errors::

    SamplingError              the sampling set-up cannot be built (permanent)
     +-- ExpressionError       a trigger expression is wrong (what and where in the text)
"""

from .capture import CapturedData, CaptureManager, Timeline, capture_problems
from .errors import ExpressionError, SamplingError
from .expr import Expression, compile_expression
from .sampler import (
    Sampler,
    SampleStats,
    WatchedSamples,
    concat_watched,
    group_series,
    of_signals,
    resolve_policies,
    rule_problems,
)

__all__ = [
    "CaptureManager",
    "CapturedData",
    "Expression",
    "ExpressionError",
    "SampleStats",
    "Sampler",
    "SamplingError",
    "Timeline",
    "WatchedSamples",
    "capture_problems",
    "compile_expression",
    "concat_watched",
    "group_series",
    "of_signals",
    "resolve_policies",
    "rule_problems",
]
