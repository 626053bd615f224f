"""The edge agent's configuration: `load_config` reads a TOML file, the environment and
explicit overrides into a frozen `AgentConfig` (keys, defaults and precedence are described
in docs/edge-agent-config.md). Nothing is read or built at import time.

Errors::

    ConfigError                 the configuration cannot be loaded (fix it and restart)
     ├── ConfigFileError        the file cannot be read or is not valid TOML
     └── ConfigValueError       wrong values; ``problems`` lists each with its origin
"""

from __future__ import annotations

from .errors import ConfigError, ConfigFileError, ConfigValueError, Problem
from .loader import load_config, parse_byte_size
from .model import (
    TOPIC_KINDS,
    AgentConfig,
    BatchingConfig,
    CanConfig,
    CaptureConfig,
    CatalogueConfig,
    CrashConfig,
    MqttConfig,
    OutboxConfig,
    Propulsion,
    SamplingConfig,
    SamplingMode,
    SamplingPolicy,
    SamplingRule,
    StatusConfig,
    TelemetryConfig,
    TlsConfig,
    VehicleConfig,
)

__all__ = [
    "TOPIC_KINDS",
    "AgentConfig",
    "BatchingConfig",
    "CanConfig",
    "CaptureConfig",
    "CatalogueConfig",
    "ConfigError",
    "ConfigFileError",
    "ConfigValueError",
    "CrashConfig",
    "MqttConfig",
    "OutboxConfig",
    "Problem",
    "Propulsion",
    "SamplingConfig",
    "SamplingMode",
    "SamplingPolicy",
    "SamplingRule",
    "StatusConfig",
    "TelemetryConfig",
    "TlsConfig",
    "VehicleConfig",
    "load_config",
    "parse_byte_size",
]
