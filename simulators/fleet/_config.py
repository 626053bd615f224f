"""The fleet's configuration: how many vehicles, where, how fast, and which drives they play.

Pure data: `FleetConfig` validates itself when made, `parse_mix` reads the ``--mix`` text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from cloud_ingest.provisioning import VehicleCredential, validate_vehicle_id

from .._cycles import CYCLES
from ..errors import FleetError
from ..scenarios import KINDS

__all__ = ["DEFAULT_MIX", "FleetConfig", "MixEntry", "parse_mix", "vehicle_ids"]

Variant = Literal["ev", "combustion"]

_ENTRY = re.compile(r"(?P<name>[a-z_]+)(?:@(?P<variant>ev|combustion))?(?:=(?P<weight>[^,]+))?")


@dataclass(frozen=True, slots=True)
class MixEntry:
    """One kind of drive in the fleet and its share.

    ``profile`` is a drive cycle (``urban``, ``highway``, ``wltp``, ``parking``: a plain
    drive) or a scenario kind (``crash``, ``slow_puncture``, ...: a drive with that scenario a
    quarter of the way in, on a cycle and variant that suit it). ``variant`` None picks the
    EV unless the scenario needs a combustion engine.
    """

    profile: str
    weight: float = 1.0
    variant: Variant | None = None

    def __post_init__(self) -> None:
        if self.profile not in CYCLES and self.profile not in KINDS:
            known = ", ".join((*CYCLES, *KINDS))
            raise FleetError(f"mix: unknown drive {self.profile!r} (one of {known})")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise FleetError(f"mix: the weight of {self.profile!r} must be positive")

    @property
    def name(self) -> str:
        return self.profile if self.variant is None else f"{self.profile}@{self.variant}"


DEFAULT_MIX = (
    MixEntry("urban", 4.0),
    MixEntry("highway", 3.0),
    MixEntry("wltp", 2.0),
    MixEntry("parking", 1.0),
)


def parse_mix(text: str) -> tuple[MixEntry, ...]:
    """``"urban=4,highway=3,crash@combustion=0.5"``: drives and weights (1 when left out)."""
    entries: list[MixEntry] = []
    for part in (p.strip() for p in text.split(",")):
        match = _ENTRY.fullmatch(part)
        if match is None:
            raise FleetError(f"mix: cannot read {part!r} (write e.g. urban=4,crash@ev=1)")
        try:
            weight = float(match["weight"] or 1.0)
        except ValueError:
            raise FleetError(f"mix: the weight in {part!r} is not a number") from None
        variant: Variant | None = None
        if match["variant"] == "ev":
            variant = "ev"
        elif match["variant"] == "combustion":
            variant = "combustion"
        entries.append(MixEntry(match["name"], weight, variant))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise FleetError(f"mix: a drive appears twice in {text!r}")
    return tuple(entries)


def vehicle_ids(prefix: str, count: int) -> list[str]:
    """``count`` vehicle ids: the prefix and a zero-padded number from 1."""
    width = max(5, len(str(count)))
    ids = [f"{prefix}{i:0{width}d}" for i in range(1, count + 1)]
    for vehicle_id in ids[:1]:
        try:
            validate_vehicle_id(vehicle_id)
        except ValueError as exc:
            raise FleetError(f"id prefix {prefix!r}: {exc}") from None
    return ids


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """A fleet of simulated vehicles publishing to one broker.

    Each vehicle logs in with its vehicle id as user name (client id ``can2care-<id>``) and
    the password of its entry in ``credentials``; without credentials the vehicles are
    ``id_prefix`` and a number, and log in without a password. ``samples_per_s`` is per
    vehicle; a vehicle publishes one telemetry batch every ``batch_interval_s``.
    ``connect_rate`` spreads the first connections (per second) so that a large fleet does not
    storm the broker. ``max_inflight`` batches per vehicle await their PUBACK at a time; up to
    ``max_queued`` wait behind them (while disconnected), newer ones are dropped and counted.
    """

    vehicles: int = 10
    host: str = "127.0.0.1"
    port: int = 1883
    credentials: tuple[VehicleCredential, ...] = ()
    id_prefix: str = "fleet-"
    samples_per_s: float = 100.0
    batch_interval_s: float = 10.0
    duration_s: float | None = None
    connect_rate: float = 200.0
    mix: tuple[MixEntry, ...] = DEFAULT_MIX
    seed: int = 0
    max_inflight: int = 20
    max_queued: int = 1000
    keepalive_s: int = 60
    status_interval_s: float = 60.0
    trace_s: float = 600.0
    topic_prefix: str = "v1"
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    _ids: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "credentials", tuple(self.credentials))
        object.__setattr__(self, "mix", tuple(self.mix))
        _positive("vehicles", self.vehicles)
        if self.credentials and len(self.credentials) < self.vehicles:
            raise FleetError(
                f"{self.vehicles} vehicles but credentials for only {len(self.credentials)}"
            )
        if not 0 < self.port < 65536:
            raise FleetError(f"port must be 1-65535, not {self.port}")
        for name in ("samples_per_s", "batch_interval_s", "connect_rate", "trace_s"):
            _positive(name, getattr(self, name))
        for name in ("max_inflight", "max_queued", "keepalive_s", "connect_timeout_s"):
            _positive(name, getattr(self, name))
        if self.duration_s is not None:
            _positive("duration_s", self.duration_s)
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise FleetError("reconnect delays: need 0 < reconnect_min_s <= reconnect_max_s")
        if self.status_interval_s < 0:
            raise FleetError("status_interval_s must be 0 (at connect only) or more")
        if self.trace_s < self.batch_interval_s:
            raise FleetError("trace_s must be at least one batch interval")
        if not self.mix:
            raise FleetError("the mix names no drive")
        if self.credentials:
            ids = tuple(c.vehicle_id for c in self.credentials[: self.vehicles])
        else:
            ids = tuple(vehicle_ids(self.id_prefix, self.vehicles))
        if len(set(ids)) != len(ids):
            raise FleetError("the credentials name a vehicle twice")
        object.__setattr__(self, "_ids", ids)

    @property
    def ids(self) -> tuple[str, ...]:
        """The vehicle ids, in order."""
        return self._ids

    def password(self, index: int) -> str | None:
        return self.credentials[index].password if self.credentials else None


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise FleetError(f"{name} must be positive, not {value!r}")
