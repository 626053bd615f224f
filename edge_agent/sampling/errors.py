"""Errors of the sampling package::

SamplingError              the sampling set-up cannot be built (permanent)
 +-- ExpressionError       a trigger expression is wrong (says what and where in the text)
"""

from __future__ import annotations


class SamplingError(Exception):
    """Base class of the sampling package's errors."""


class ExpressionError(SamplingError, ValueError):
    """A trigger expression cannot be compiled; the message quotes it and names the problem."""
