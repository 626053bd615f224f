"""The ingest service's configuration: one TOML file, environment overrides, validated.

Precedence: explicit overrides (command-line options) > environment > file > defaults.
Environment variables are ``CAN2CARE_INGEST__<SECTION>__<KEY>`` (``CAN2CARE_INGEST__MQTT__PORT
=1884``); their values are read as TOML values when they parse as one, else as text. Every
problem is reported at once, each naming where the value came from and the dotted key
(docs/ingest.md lists every key).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from can2care.tomlfile import TomlSyntaxError, loads

from .errors import IngestConfigError

__all__ = [
    "ENV_PREFIX",
    "BatchingConfig",
    "CatalogueFiles",
    "DatabaseConfig",
    "HttpConfig",
    "IngestConfig",
    "MqttConfig",
    "RetryConfig",
    "TlsConfig",
    "ValidationConfig",
    "load_ingest_config",
]

ENV_PREFIX = "CAN2CARE_INGEST__"

_Strict = ConfigDict(extra="forbid", frozen=True)
Port = Annotated[int, Field(ge=1, le=65535)]
Level = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


def _default_client_id() -> str:
    host = "".join(c if c.isalnum() or c in "_.-" else "-" for c in socket.gethostname())
    return f"can2care-ingest-{host[:40] or 'host'}"


class TlsConfig(BaseModel):
    """TLS to the broker; no ``ca_file`` means the system's certificate authorities."""

    model_config = _Strict
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file for mutual TLS, or neither")
        return self


class MqttConfig(BaseModel):
    """The broker, the shared-subscription group and the persistent session."""

    model_config = _Strict
    host: str = "localhost"
    port: Port = 1883
    username: str | None = "can2care-ingest"
    password: str | None = Field(default=None, repr=False)
    password_file: Path | None = None
    client_id: Level = Field(default_factory=_default_client_id)
    group: Level = "can2care-ingest"
    topic_prefix: Level = "v1"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # How long the broker keeps this client's session (and queues its share) while it is away.
    session_expiry_s: Annotated[int, Field(ge=0, le=4_294_967_295)] = 86_400
    # Unacknowledged messages the broker may send at once: bounds the service's memory.
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 1000
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def secret(self) -> str | None:
        """The password, read from ``password_file`` when one is given."""
        if self.password_file is not None:
            return self.password_file.read_text("utf-8").strip()
        return self.password


class DatabaseConfig(BaseModel):
    """The TimescaleDB database (a libpq URL or key=value string)."""

    model_config = _Strict
    url: str = Field(min_length=1)
    connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class BatchingConfig(BaseModel):
    """When a flush to the database happens: whichever limit is reached first."""

    model_config = _Strict
    max_messages: Annotated[int, Field(ge=1, le=100_000)] = 500
    max_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 2_000_000
    max_latency_ms: Annotated[int, Field(ge=1, le=60_000)] = 250
    # Flushes formatted and waiting for the writer: bounds memory while the database is slow.
    queue_flushes: Annotated[int, Field(ge=1, le=64)] = 2


class RetryConfig(BaseModel):
    """Backoff while the database is down or refuses a transaction it may accept later."""

    model_config = _Strict
    min_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    max_s: Annotated[float, Field(gt=0, le=600)] = 15.0

    @model_validator(mode="after")
    def _order(self) -> RetryConfig:
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) is below min_s ({self.min_s})")
        return self


class ValidationConfig(BaseModel):
    """What the service accepts besides well-formed payloads."""

    model_config = _Strict
    # Samples this far after the time of receipt are absurd (a vehicle clock gone wrong).
    max_future_s: Annotated[int, Field(ge=0, le=31_536_000)] = 3_600
    # Samples before this year are absurd.
    min_year: Annotated[int, Field(ge=1971, le=9999)] = 2000
    # How often the vehicle registry is read again, and at most how often an unknown vehicle
    # makes it be read early.
    registry_refresh_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    registry_miss_refresh_s: Annotated[float, Field(gt=0, le=86_400)] = 5.0


class CatalogueFiles(BaseModel):
    """A signal catalogue the fleet sends with: a DBC file and its signal map."""

    model_config = _Strict
    dbc: Path
    map: Path


class HttpConfig(BaseModel):
    """The health check and Prometheus metrics endpoint (``port = 0`` turns it off)."""

    model_config = _Strict
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9108


class IngestConfig(BaseModel):
    """The whole configuration (docs/ingest.md)."""

    model_config = _Strict
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    database: DatabaseConfig
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    demo_catalogue: bool = True
    catalogues: tuple[CatalogueFiles, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def load_ingest_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> IngestConfig:
    """The configuration from ``path`` (optional), the environment and ``overrides``.

    ``overrides`` maps dotted keys (``"mqtt.port"``) to values. Raises `IngestConfigError`
    listing every problem, each with the file (and line where known) or variable.
    """
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IngestConfigError([f"{path}: cannot read the file: {exc}"]) from None
        try:
            data = loads(text)
        except TomlSyntaxError as exc:
            position = ":".join(str(p) for p in (path, exc.line, exc.column) if p is not None)
            raise IngestConfigError([f"{position}: {exc.reason}"]) from None
        _record_lines(text, str(path), origins)
        _resolve_paths(data, path.parent)
    for name, value in sorted((os.environ if env is None else env).items()):
        if name.startswith(ENV_PREFIX):
            keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
            _set(data, keys, _env_value(value))
            origins[keys] = f"environment variable {name}"
    for dotted, value in (overrides or {}).items():
        keys = tuple(dotted.split("."))
        _set(data, keys, value)
        origins[keys] = "command line"
    try:
        return IngestConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            keys = tuple(str(part) for part in error["loc"])
            dotted = ".".join(keys) or "(top level)"
            source = _origin(origins, keys, where)
            problems.append(f"{source}: {dotted}: {error['msg']}")
        raise IngestConfigError(problems) from None


def _set(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def _env_value(text: str) -> Any:
    try:
        return loads(f"v = {text}")["v"]
    except TomlSyntaxError:
        return text


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative file names in the file are relative to the file's directory."""
    for section, key in (
        ("mqtt", "password_file"),
        ("tls", "ca_file"),
        ("tls", "cert_file"),
        ("tls", "key_file"),
    ):
        mqtt = data.get("mqtt")
        tls = mqtt.get("tls") if isinstance(mqtt, dict) else None
        table = tls if section == "tls" else data.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = str(base / table[key])
    for entry in data.get("catalogues", []) if isinstance(data.get("catalogues"), list) else []:
        if isinstance(entry, dict):
            for key in ("dbc", "map"):
                if isinstance(entry.get(key), str):
                    entry[key] = str(base / entry[key])


def _record_lines(text: str, source: str, origins: dict[tuple[str, ...], str]) -> None:
    """Where each ``key = value`` of simple tables is in the file (for error messages)."""
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            name = tuple(line.strip("[] ").split("."))
            index = arrays.get(name, -1) + 1
            arrays[name] = index
            table = (*name, str(index))
            origins.setdefault(table, f"{source}:{number}")
        elif line.startswith("["):
            table = tuple(line.strip("[] ").split("."))
            origins.setdefault(table, f"{source}:{number}")
        elif "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0].strip().strip('"')
            origins[(*table, key)] = f"{source}:{number}"


def _origin(origins: Mapping[tuple[str, ...], str], keys: tuple[str, ...], where: str) -> str:
    """The most specific known place of ``keys`` (the key, else its table, else the file)."""
    for length in range(len(keys), 0, -1):
        found = origins.get(keys[:length])
        if found is not None:
            return found
    return where
