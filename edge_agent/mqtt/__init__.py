"""The MQTT adapter: drains the outbox to the broker (paho-mqtt 2, MQTT 5, QoS 1).

Topic layout and payloads: docs/mqtt-topics.md. Errors::

    MqttError                  the link cannot be set up as configured (permanent)
     +-- MqttConfigError       a TLS or credentials file cannot be read
"""

from .errors import MqttConfigError, MqttError
from .link import LinkStats, MqttLink, sender_properties

__all__ = ["LinkStats", "MqttConfigError", "MqttError", "MqttLink", "sender_properties"]
