"""`load_config`: the edge agent's configuration from defaults, a TOML file, the environment
and explicit overrides, each over the one before (the format is in docs/edge-agent-config.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import cast, get_args

from ._document import Document, parse_toml, suggest
from ._reader import Table, parse_byte_size
from .errors import ConfigFileError, ConfigValueError
from .model import (
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

__all__ = ["load_config", "parse_byte_size"]

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VIN_RE = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_VSS_RE = re.compile(r"[A-Z][A-Za-z0-9_]*(\.[A-Z][A-Za-z0-9_]*)+")
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+")
# Keys of can.Bus that have a key of their own in [can], or that the agent sets itself.
_BUS_KEYS = frozenset(
    {"interface", "bustype", "channel", "bitrate", "fd", "receive_own_messages", "can_filters"}
)
_MIN_OUTBOX_BYTES = 1024 * 1024


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> AgentConfig:
    """Load the configuration: ``overrides`` > environment > the file at ``path`` > defaults.

    ``path`` None: defaults and environment only. ``env`` None means `os.environ`; its
    ``CAN2CARE_EDGE__SECTION__KEY`` variables apply. ``overrides`` maps dotted keys to values
    (``{"mqtt.port": 1884}``; None removes a key). Relative paths in the file are relative to
    the file's directory. Raises `ConfigFileError` if the file cannot be read or is not TOML,
    `ConfigValueError` listing every wrong value.
    """
    document = _read(path)
    document.apply_environment(os.environ if env is None else env)
    if overrides:
        document.apply_overrides(overrides)
    config = _agent(document)
    if document.problems:
        raise ConfigValueError(document.problems)
    return config


def _read(path: str | os.PathLike[str] | None) -> Document:
    if path is None:
        return Document({}, source=None)
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror or exc}", path=source) from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"not UTF-8 text (byte {exc.start})", path=source) from None
    return Document(parse_toml(text, source), source=source, text=text)


def _agent(document: Document) -> AgentConfig:
    root = Table(document, (), document.data)
    vehicle = _vehicle(root.section("vehicle"))
    config = AgentConfig(
        vehicle=vehicle,
        catalogue=_catalogue(root.section("catalogue")),
        can=_can(root.section("can")),
        batching=_batching(root.section("batching")),
        sampling=_sampling(root.section("sampling")),
        captures=_captures(root),
        crash=_crash(root.section("crash")),
        telemetry=_telemetry(root.section("telemetry")),
        mqtt=_mqtt(root.section("mqtt"), vehicle),
        outbox=_outbox(root.section("outbox")),
        status=_status(root.section("status")),
        source=document.source,
    )
    root.finish()
    return config


def _vehicle(table: Table) -> VehicleConfig:
    vehicle = VehicleConfig(
        id=table.required_string(
            "id", "the vehicle's id, its level in MQTT topics", check=_check_name
        ),
        vin=table.optional_string("vin", check=_check_vin),
        propulsion=cast(Propulsion, table.choice("propulsion", "electric", get_args(Propulsion))),
    )
    table.finish()
    return vehicle


def _catalogue(table: Table) -> CatalogueConfig:
    catalogue = CatalogueConfig(
        dbc=table.path("dbc", must_exist=True), map=table.path("map", must_exist=True)
    )
    if catalogue.dbc is not None and catalogue.map is None and not table.failed("map"):
        table.problem(
            "dbc", "given without catalogue.map: a signal map is needed to name its signals"
        )
    table.finish()
    return catalogue


def _can(table: Table) -> CanConfig:
    can = CanConfig(
        interface=table.optional_string("interface", check=_check_interface),
        channel=table.optional_string("channel"),
        bitrate=table.optional_integer("bitrate", 1, 20_000_000),
        fd=table.boolean("fd", False),
        receive_own_messages=table.boolean("receive_own_messages", False),
        kernel_filters=table.boolean("kernel_filters", True),
        extra=MappingProxyType(_bus_extra(table)),
        log=table.path("log", must_exist=True),
        replay_speed=table.number("replay_speed", 1.0),
    )
    if can.interface is not None and can.log is not None:
        table.problem(
            "log", "can.interface is set too: set one of them (a bus, or a log file to replay)"
        )
    elif can.interface is None and can.log is None:
        if not (table.failed("interface") or table.failed("log")):
            table.problem(
                "interface",
                "missing: set can.interface (a python-can bus, e.g. 'socketcan') "
                "or can.log (a log file to replay)",
            )
    elif can.log is None and table.has("replay_speed"):
        table.problem("replay_speed", "only with can.log (the speed of a log's replay)")
    table.finish()
    return can


def _bus_extra(table: Table) -> dict[str, object]:
    extra = table.mapping("extra")
    for key in extra:
        if not key.isidentifier():
            table.problem("extra", f"{key!r} is not a keyword argument name")
        elif key in _BUS_KEYS:
            table.problem("extra", f"{key!r} cannot be set here (use can.{key} if it exists)")
    return extra


def _batching(table: Table) -> BatchingConfig:
    batching = BatchingConfig(
        max_frames=table.integer("max_frames", 4096, 1, 1_000_000),
        max_latency_ms=table.integer("max_latency_ms", 50, 1, 1000),
    )
    table.finish()
    return batching


def _sampling(table: Table) -> SamplingConfig:
    default_table = table.table("default")
    default = SamplingConfig().default if default_table is None else _policy(default_table)
    rules: list[SamplingRule] = []
    for rule in table.tables("rule", "sampling.rule"):
        signals = rule.strings(
            "signals", (), check=_check_pattern, what="VSS path patterns", allow_empty=False
        )
        if not rule.has("signals"):
            rule.problem("signals", "missing: the VSS path patterns this rule is for")
        rules.append(SamplingRule(signals=signals, policy=_policy(rule, is_rule=True)))
    sampling = SamplingConfig(
        default=default, rules=tuple(rules), heartbeat_s=table.number("heartbeat_s", 60.0)
    )
    table.finish()
    return sampling


def _policy(table: Table, *, is_rule: bool = False) -> SamplingPolicy:
    modes = get_args(SamplingMode)
    if is_rule and not table.has("mode"):
        table.problem("mode", f"missing: one of {', '.join(map(repr, modes))}")
    mode = cast(SamplingMode, table.choice("mode", "interval", modes))
    policy = SamplingPolicy(
        mode,
        period_s=table.optional_number("period_s", above=True),
        deadband=table.optional_number("deadband"),
        min_interval_s=table.number("min_interval_s", 0.0),
        max_interval_s=table.optional_number("max_interval_s", above=True),
    )
    if not table.failed("mode"):
        policy = _check_policy(table, policy, is_rule=is_rule)
    table.finish()
    return policy


def _check_policy(table: Table, policy: SamplingPolicy, *, is_rule: bool) -> SamplingPolicy:
    """Each mode's keys are given with that mode, and only with it."""
    mode = policy.mode
    if mode == "interval" and policy.period_s is None and not table.failed("period_s"):
        if is_rule:
            table.problem("period_s", "missing: required with mode 'interval'")
        policy = replace(policy, period_s=1.0)
    elif mode != "interval" and policy.period_s is not None:
        table.problem("period_s", "only with mode 'interval'")
    if mode == "deadband" and policy.deadband is None and not table.failed("deadband"):
        table.problem("deadband", "missing: required with mode 'deadband'")
    elif mode != "deadband" and policy.deadband is not None:
        table.problem("deadband", "only with mode 'deadband'")
    if mode not in ("on_change", "deadband"):
        for key in ("min_interval_s", "max_interval_s"):
            if table.has(key) and not table.failed(key):
                table.problem(key, "only with mode 'on_change' or 'deadband'")
    elif policy.max_interval_s is not None and policy.max_interval_s < policy.min_interval_s:
        table.problem(
            "max_interval_s", f"must be at least min_interval_s ({policy.min_interval_s:g})"
        )
    return policy


def _captures(root: Table) -> tuple[CaptureConfig, ...]:
    captures: list[CaptureConfig] = []
    names: dict[str, int] = {}
    for index, table in enumerate(root.tables("capture", "capture")):
        capture = CaptureConfig(
            name=table.required_string("name", "the capture's name", check=_check_name),
            when=table.required_string(
                "when", "the condition that starts the capture", check=_check_nonblank
            ),
            pre_s=table.number("pre_s", 10.0, high=600.0),
            post_s=table.number("post_s", 5.0, high=600.0),
            signals=table.strings(
                "signals",
                ("*",),
                check=_check_pattern,
                what="VSS path patterns",
                allow_empty=False,
            ),
            cooldown_s=table.number("cooldown_s", 30.0),
        )
        if capture.name and names.setdefault(capture.name, index) != index:
            table.problem("name", f"duplicate: capture[{names[capture.name]}] has this name")
        table.finish()
        captures.append(capture)
    return tuple(captures)


def _crash(table: Table) -> CrashConfig:
    defaults = CrashConfig()
    crash = CrashConfig(
        enabled=table.boolean("enabled", True),
        airbag_signal=table.optional_string(
            "airbag_signal", defaults.airbag_signal, check=_check_vss
        ),
        severity_signal=table.optional_string(
            "severity_signal", defaults.severity_signal, check=_check_vss
        ),
        acceleration_signals=table.strings(
            "acceleration_signals",
            defaults.acceleration_signals,
            check=_check_vss,
            what="VSS paths",
        ),
        acceleration_threshold=table.number("acceleration_threshold", 40.0, above=True),
        cooldown_s=table.number("cooldown_s", 60.0),
    )
    watches_nothing = crash.airbag_signal is None and not crash.acceleration_signals
    if (
        crash.enabled
        and watches_nothing
        and not (table.failed("airbag_signal") or table.failed("acceleration_signals"))
    ):
        table.problem(
            "airbag_signal",
            "empty, and crash.acceleration_signals too: crash detection would watch no "
            "signal (name one, or set crash.enabled = false)",
        )
    table.finish()
    return crash


def _telemetry(table: Table) -> TelemetryConfig:
    telemetry = TelemetryConfig(
        batch_interval_s=table.number("batch_interval_s", 10.0, high=3600.0, above=True),
        max_batch_samples=table.integer("max_batch_samples", 50_000, 1, 10_000_000),
    )
    table.finish()
    return telemetry


def _mqtt(table: Table, vehicle: VehicleConfig) -> MqttConfig:
    mqtt = MqttConfig(
        host=table.string("host", "localhost", check=_check_host),
        port=table.integer("port", 1883, 1, 65535),
        client_id=table.optional_string("client_id", f"can2care-{vehicle.id}"),
        username=table.optional_string("username"),
        password=table.optional_string("password"),
        password_file=table.path("password_file", must_exist=True),
        keepalive_s=table.integer("keepalive_s", 30, 0, 65535),
        topic_prefix=table.string("topic_prefix", "v1", check=_check_topic_prefix),
        tls=_tls(table),
        reconnect_min_s=table.number("reconnect_min_s", 1.0, above=True),
        reconnect_max_s=table.number("reconnect_max_s", 120.0, above=True),
        max_inflight=table.integer("max_inflight", 20, 1, 65535),
        connect_timeout_s=table.number("connect_timeout_s", 10.0, above=True),
    )
    if mqtt.password is not None and mqtt.password_file is not None:
        table.problem("password_file", "mqtt.password is set too: set one of them")
    if mqtt.reconnect_max_s < mqtt.reconnect_min_s:
        table.problem(
            "reconnect_max_s", f"must be at least reconnect_min_s ({mqtt.reconnect_min_s:g})"
        )
    table.finish()
    return mqtt


def _tls(mqtt: Table) -> TlsConfig | None:
    value = mqtt.raw("tls")
    if value is True:
        return TlsConfig()
    if not isinstance(value, dict):
        if value is not False and mqtt.has("tls"):
            mqtt.problem("tls", "must be a table ([mqtt.tls]), true or false")
        return None
    table = mqtt.section("tls")
    tls = TlsConfig(
        ca_file=table.path("ca_file", must_exist=True),
        cert_file=table.path("cert_file", must_exist=True),
        key_file=table.path("key_file", must_exist=True),
        insecure=table.boolean("insecure", False),
        ciphers=table.optional_string("ciphers"),
    )
    for key, other in (("cert_file", "key_file"), ("key_file", "cert_file")):
        if table.has(key) and not table.has(other):
            table.problem(key, f"given without mqtt.tls.{other}: mutual TLS needs both")
    table.finish()
    return tls


def _outbox(table: Table) -> OutboxConfig:
    default = OutboxConfig()
    path = table.path("path", default.path)
    if path is None:
        table.problem("path", "must not be empty: the outbox's SQLite file")
    max_bytes = default.max_bytes
    if table.has("max_bytes"):
        try:
            max_bytes = parse_byte_size(cast(str | int, table.raw("max_bytes")))
        except ValueError as exc:
            table.problem("max_bytes", str(exc))
        else:
            if max_bytes < _MIN_OUTBOX_BYTES:
                table.problem("max_bytes", f"must be at least 1MiB, not {max_bytes} bytes")
    table.finish()
    return OutboxConfig(path=path or default.path, max_bytes=max_bytes)


def _status(table: Table) -> StatusConfig:
    status = StatusConfig(
        file=table.path("file"), interval_s=table.number("interval_s", 10.0, above=True)
    )
    table.finish()
    return status


def _check_name(value: str) -> str | None:
    if _NAME_RE.fullmatch(value):
        return None
    return f"must be 1 to 64 characters of A-Z a-z 0-9 _ . - (no '/', '+', '#'), not {value!r}"


def _check_vin(value: str) -> str | None:
    if _VIN_RE.fullmatch(value):
        return None
    if len(value) != 17:
        return f"must be 17 characters long, not {len(value)} ({value!r})"
    return f"must be upper-case A-Z and 0-9 without I, O or Q (ISO 3779), not {value!r}"


def _check_vss(value: str) -> str | None:
    if _VSS_RE.fullmatch(value):
        return None
    return f"not a VSS path (names separated by dots, e.g. 'Vehicle.Speed'): {value!r}"


def _check_pattern(value: str) -> str | None:
    if _PATTERN_RE.fullmatch(value):
        return None
    return f"not a VSS path pattern (e.g. 'Vehicle.Chassis.Axle.*.Tire.Pressure'): {value!r}"


def _check_nonblank(value: str) -> str | None:
    return None if value.strip() else "must not be blank"


def _check_host(value: str) -> str | None:
    return None if value.split() == [value] else f"not a host name: {value!r}"


def _check_topic_prefix(value: str) -> str | None:
    levels = value.split("/")
    if value.startswith("$") or not all(levels) or any(c in value for c in "+#\0"):
        return f"must be topic levels separated by '/', without '+', '#' or '$': {value!r}"
    return None


def _check_interface(value: str) -> str | None:
    try:
        from can.interfaces import VALID_INTERFACES
    except ImportError:  # python-can is not installed: opening the bus will say so
        return None
    if value in VALID_INTERFACES:
        return None
    return f"not a python-can interface: {value!r}{suggest(value, VALID_INTERFACES)}"
