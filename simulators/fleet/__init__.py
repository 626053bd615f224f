"""A fleet load generator: N simulated vehicles publishing telemetry to an MQTT broker.

>>> credentials = fleet_credentials("fleet-", 1000, seed="load-test")
>>> provision(Path("broker"), credentials)            # password file, ACL, fleet.json
>>> fleet = Fleet(FleetConfig(vehicles=1000, port=1883, credentials=tuple(credentials)))
>>> stats = fleet.run(60.0)

Each vehicle has its own client id (``can2care-<vehicle_id>``) and login, a retained status
with an ``offline`` last will, and publishes telemetry batches made by the edge agent's wire
codec on ``v1/<vehicle_id>/telemetry`` with QoS 1 (docs/mqtt-topics.md). The batches are
slots of drives simulated and decoded once at start (`simulators.fleet._playback`), thinned to
the configured samples per second. Every vehicle's session runs in one thread on one select
loop (`simulators.fleet._runner`). docs/simulator.md, "Fleet load generator".

Errors: `FleetError` (a `SimulatorError`): bad options, an unreadable credentials file, a
mix drive that cannot be simulated, a broker that does not answer at start.
"""

from ._config import DEFAULT_MIX, FleetConfig, MixEntry, parse_mix, vehicle_ids
from ._credentials import (
    Provisioned,
    fleet_credentials,
    provision,
    read_credentials,
    write_credentials,
)
from ._runner import Fleet, FleetStats

__all__ = [
    "DEFAULT_MIX",
    "Fleet",
    "FleetConfig",
    "FleetStats",
    "MixEntry",
    "Provisioned",
    "fleet_credentials",
    "parse_mix",
    "provision",
    "read_credentials",
    "vehicle_ids",
    "write_credentials",
]
