"""Errors of the MQTT adapter::

MqttError                  the link cannot be set up as configured (permanent)
 +-- MqttConfigError       a TLS or credentials file cannot be read
"""

from __future__ import annotations


class MqttError(Exception):
    """Base class of the MQTT adapter's errors."""


class MqttConfigError(MqttError):
    """The configuration names a file that cannot be read or used (the message names it)."""
