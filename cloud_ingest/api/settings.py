"""The API's settings: typed and validated when the service starts, never at import.

Precedence: explicit arguments > environment (``CAN2CARE_*``) > defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cloud_ingest.provisioning import validate_vehicle_id

__all__ = ["Settings", "SettingsError"]

_ENV_PREFIX = "CAN2CARE_"


class SettingsError(ValueError):
    """Settings that cannot work; the message names every bad field."""


class Settings(BaseModel):
    """How the API runs. Durations are seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(min_length=1, description="libpq URL or DSN of the database")
    pool_min: int = Field(default=2, ge=1, le=200)
    pool_max: int = Field(default=20, ge=1, le=500)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    # Time series: the longest range one request may ask for, raw and bucketed, and the most
    # points (samples or buckets) per signal in one answer.
    series_raw_max_s: float = Field(default=86_400.0, gt=0)
    series_bucketed_max_s: float = Field(default=366 * 86_400.0, gt=0)
    series_max_points: int = Field(default=100_000, ge=10, le=10_000_000)
    series_max_signals: int = Field(default=10, ge=1, le=100)
    # The data shown around an alert's trigger, before and after its raised_at.
    context_before_s: float = Field(default=120.0, ge=0, le=86_400)
    context_after_s: float = Field(default=60.0, ge=0, le=86_400)
    context_signals: tuple[str, ...] = (
        "Vehicle.Speed",
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.CurrentLocation.Longitude",
    )
    # The alert change stream: a comment line this often keeps idle connections open.
    stream_keepalive_s: float = Field(default=15.0, gt=0)
    stream_max_clients: int = Field(default=1000, ge=1)
    # Vehicles' broker logins (cloud_ingest.provisioning): the directory of Mosquitto's
    # `passwords` and `acl` (unset: the broker-login endpoints answer 409), the file holding the
    # broker's process id to send SIGHUP after a change (unset: reload it yourself), and the
    # topic prefix the ACL grants (as `can2care vehicles import --prefix`).
    broker_dir: Path | None = None
    broker_pid_file: Path | None = None
    broker_topic_prefix: str = "v1"

    @field_validator("broker_topic_prefix")
    @classmethod
    def _topic_prefix(cls, prefix: str) -> str:
        for level in prefix.split("/"):
            validate_vehicle_id(level, what="a topic level")
        return prefix

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not be above pool_max")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **explicit: Any) -> Settings:
        """Settings from explicit values over ``CAN2CARE_<FIELD>`` variables over defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(_ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw.split(",") if name == "context_signals" else raw
        values.update({k: v for k, v in explicit.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors()
            )
            raise SettingsError(f"invalid API settings: {problems}") from None
