"""Care triggers: rule files evaluated on the telemetry stream, alerts and their delivery."""

__all__: list[str] = []
