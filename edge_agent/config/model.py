"""The edge agent's configuration as frozen values (every key is described in
docs/edge-agent-config.md).

The defaults here are the documented defaults. The classes do not validate themselves:
`edge_agent.config.load_config` checks every value before it builds them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from dbc import Catalogue

__all__ = [
    "TOPIC_KINDS",
    "AgentConfig",
    "BatchingConfig",
    "CanConfig",
    "CaptureConfig",
    "CatalogueConfig",
    "CrashConfig",
    "MqttConfig",
    "OutboxConfig",
    "Propulsion",
    "SamplingConfig",
    "SamplingMode",
    "SamplingPolicy",
    "SamplingRule",
    "StatusConfig",
    "TelemetryConfig",
    "TlsConfig",
    "VehicleConfig",
]

Propulsion: TypeAlias = Literal[
    "electric", "combustion", "hybrid", "plug_in_hybrid", "hydrogen", "other"
]
SamplingMode: TypeAlias = Literal["all", "interval", "on_change", "deadband", "off"]

TOPIC_KINDS = ("telemetry", "events", "status")

_REDACTED = "***"


@dataclass(frozen=True, slots=True)
class VehicleConfig:
    """The vehicle: ``id`` is its MQTT topic level, ``vin`` its identification number."""

    id: str
    vin: str | None = None
    propulsion: Propulsion = "electric"


@dataclass(frozen=True, slots=True)
class CatalogueConfig:
    """The DBC and its signal map; both None means the demo vehicle shipped in `dbc`.

    With ``dbc`` None and ``map`` set, the DBC is the one the map's ``dbc`` key names.
    """

    dbc: Path | None = None
    map: Path | None = None

    def load(self) -> Catalogue:
        """Read the catalogue (imports the `dbc` package; raises its `CatalogueError`)."""
        from dbc import demo_catalogue, load_catalogue

        if self.dbc is None and self.map is None:
            return demo_catalogue()
        return load_catalogue(self.dbc, self.map)


@dataclass(frozen=True, slots=True)
class CanConfig:
    """Where frames come from: a python-can bus (``interface``) or a log file (``log``)."""

    interface: str | None = None
    channel: str | None = None
    bitrate: int | None = None
    fd: bool = False
    receive_own_messages: bool = False
    kernel_filters: bool = True
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    log: Path | None = None
    replay_speed: float = 1.0


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    """A batch of frames is decoded when it holds ``max_frames`` or is ``max_latency_ms`` old."""

    max_frames: int = 4096
    max_latency_ms: int = 50


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """How often a signal is sent.

    ``all``: every decoded value; ``interval``: one value per ``period_s`` window (the first in it);
    ``on_change``: when the value changes; ``deadband``: when it moves by more than
    ``deadband`` (in the signal's VSS unit) from the last value sent; ``off``: never.
    ``on_change`` and ``deadband`` send at most every ``min_interval_s`` and, when
    ``max_interval_s`` is set, at least that often.
    """

    mode: SamplingMode
    period_s: float | None = None
    deadband: float | None = None
    min_interval_s: float = 0.0
    max_interval_s: float | None = None


def _default_policy() -> SamplingPolicy:
    return SamplingPolicy(mode="interval", period_s=1.0)


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """A policy for the signals whose VSS paths match one of ``signals`` (fnmatch patterns)."""

    signals: tuple[str, ...]
    policy: SamplingPolicy

    def matches(self, vss: str) -> bool:
        return any(fnmatch.fnmatchcase(vss, pattern) for pattern in self.signals)


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """The default policy, rules for particular signals (the last matching rule wins), and a
    heartbeat: every signal's latest value is sent at least every ``heartbeat_s`` (0: off)."""

    default: SamplingPolicy = field(default_factory=_default_policy)
    rules: tuple[SamplingRule, ...] = ()
    heartbeat_s: float = 60.0

    def policy_for(self, vss: str) -> SamplingPolicy:
        """The policy of one signal: the last rule that matches it, else the default."""
        for rule in reversed(self.rules):
            if rule.matches(vss):
                return rule.policy
        return self.default


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """A triggered capture: when ``when`` becomes true, every value of ``signals`` from
    ``pre_s`` before to ``post_s`` after is sent; it cannot fire again for ``cooldown_s``."""

    name: str
    when: str
    pre_s: float = 10.0
    post_s: float = 5.0
    signals: tuple[str, ...] = ("*",)
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CrashConfig:
    """The urgent crash event: an airbag deployment, or an acceleration above the threshold.

    ``airbag_signal`` or ``severity_signal`` None: the catalogue has none. With ``enabled``
    false no signal is looked up, so the catalogue need not have any of these.
    """

    enabled: bool = True
    airbag_signal: str | None = "Vehicle.Private.Crash.AirbagDeployed"
    severity_signal: str | None = "Vehicle.Private.Crash.Severity"
    acceleration_signals: tuple[str, ...] = (
        "Vehicle.Acceleration.Longitudinal",
        "Vehicle.Acceleration.Lateral",
    )
    acceleration_threshold: float = 40.0
    cooldown_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """Samples are encoded into one telemetry message every ``batch_interval_s``, or sooner
    when ``max_batch_samples`` are waiting."""

    batch_interval_s: float = 10.0
    max_batch_samples: int = 50_000


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS to the broker; ``ca_file`` None means the system's certificate authorities."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    ciphers: str | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The MQTT 5 broker and the session with it."""

    host: str = "localhost"
    port: int = 1883
    client_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    keepalive_s: int = 30
    topic_prefix: str = "v1"
    tls: TlsConfig | None = None
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 120.0
    max_inflight: int = 20
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """The durable outbox: a SQLite file of at most ``max_bytes``."""

    path: Path = Path("/var/lib/can2care/outbox.sqlite")
    max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """A JSON status file the agent rewrites every ``interval_s`` (``file`` None: none)."""

    file: Path | None = None
    interval_s: float = 10.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole configuration of the edge agent; ``source`` is the file it was read from."""

    vehicle: VehicleConfig
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    can: CanConfig = field(default_factory=CanConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    captures: tuple[CaptureConfig, ...] = ()
    crash: CrashConfig = field(default_factory=CrashConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    source: str | None = None

    def topic(self, kind: str) -> str:
        """The MQTT topic of this vehicle's ``telemetry``, ``events`` or ``status``."""
        if kind not in TOPIC_KINDS:
            raise ValueError(f"unknown topic kind {kind!r} (expected one of {TOPIC_KINDS})")
        return f"{self.mqtt.topic_prefix}/{self.vehicle.id}/{kind}"

    def to_dict(self) -> dict[str, object]:
        """The effective configuration in the file's layout, with the password as ``***``.

        Paths are strings, tuples lists, and a key that is not set is None.
        """
        mqtt = _plain(self.mqtt)
        if self.mqtt.password is not None:
            mqtt["password"] = _REDACTED
        sampling: dict[str, object] = {
            "heartbeat_s": self.sampling.heartbeat_s,
            "default": _plain(self.sampling.default),
            "rule": [
                {"signals": list(rule.signals), **_plain(rule.policy)}
                for rule in self.sampling.rules
            ],
        }
        return {
            "source": self.source,
            "vehicle": _plain(self.vehicle),
            "catalogue": _plain(self.catalogue),
            "can": _plain(self.can),
            "batching": _plain(self.batching),
            "sampling": sampling,
            "capture": [_plain(capture) for capture in self.captures],
            "crash": _plain(self.crash),
            "telemetry": _plain(self.telemetry),
            "mqtt": mqtt,
            "outbox": _plain(self.outbox),
            "status": _plain(self.status),
        }


def _plain(value: DataclassInstance) -> dict[str, object]:
    """A dataclass's fields as plain values: strings for paths, lists for tuples."""
    return {f.name: _plain_value(getattr(value, f.name)) for f in fields(value)}


def _plain_value(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain_value(item) for key, item in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(value)
    return value
