"""The edge agent: CAN in, decoded and reduced signals out as compact MQTT telemetry.

It runs on a vehicle gateway and depends only on the ``edge`` extra.
"""

__all__: list[str] = []
