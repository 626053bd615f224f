"""Cloud ingest: MQTT telemetry into TimescaleDB, and the care team's HTTP API."""

__all__: list[str] = []
