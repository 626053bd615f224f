"""Each vehicle's drive through its own edge agent, offline and at full speed.

A worker process per core simulates drives and runs their frames through the edge agent's
real pipeline (`simulators.suite.run_agent`: decoder, sampler, crash detector, wire codec and
durable outbox), collecting what the agent would publish and when, on the drive's clock.
The publisher then sends it at the demo's speed-up.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
    from simulators.labels import Label
    from simulators.suite import Outgoing, SuiteDrive

__all__ = ["FleetPlan", "Prepared", "prepare_fleet"]

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "agent.example.toml"


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """What builds the fleet's drives, deterministically (sent to the worker processes)."""

    vehicles: int
    seed: int
    duration_s: float
    end_time: float

    def drives(self) -> tuple[SuiteDrive, ...]:
        return _drives(self)


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """One vehicle: its drive, ground truth and the agent's outgoing messages."""

    drive: SuiteDrive
    labels: tuple[Label, ...]
    records: tuple[Outgoing, ...]
    frames: int

    @property
    def vehicle_id(self) -> str:
        return self.drive.vehicle_id


@functools.cache
def _drives(plan: FleetPlan) -> tuple[SuiteDrive, ...]:
    from simulators.demo_fleet import build_demo_fleet

    return build_demo_fleet(
        plan.vehicles, plan.seed, duration_s=plan.duration_s, end_time=plan.end_time
    )


@functools.cache
def agent_config() -> AgentConfig:
    """The shipped example configuration; each vehicle's identity and outbox replace its own."""
    from edge_agent.config import load_config

    return load_config(EXAMPLE_CONFIG, env={}, overrides={"mqtt.tls": False})


def _run(job: tuple[FleetPlan, int]) -> tuple[list[dict[str, Any]], tuple[Outgoing, ...], int]:
    """Vehicle ``index`` of the plan, in a worker process (labels as JSON: their read-only
    mappings do not pickle)."""
    from simulators.suite import run_agent

    plan, index = job
    run = run_agent(plan.drives()[index], agent_config())
    return [label.to_json() for label in run.labels], run.records, run.frames


def _quiet() -> None:
    """The agents' own warnings (a crash detected) are the demo's subject, not news."""
    logging.getLogger("edge_agent").setLevel(logging.ERROR)


def prepare_fleet(
    plan: FleetPlan, jobs: int, progress: Callable[[int], None] | None = None
) -> list[Prepared]:
    """Every vehicle of ``plan`` through its agent, in ``jobs`` processes; ``progress`` gets
    the number of vehicles done so far."""
    from simulators.labels import Label

    drives = plan.drives()
    work = [(plan, i) for i in range(len(drives))]
    out: list[Prepared] = []
    with ProcessPoolExecutor(max(1, jobs), initializer=_quiet) as pool:
        for drive, (labels, records, frames) in zip(
            drives, pool.map(_run, work, chunksize=1), strict=True
        ):
            out.append(Prepared(drive, tuple(Label.from_json(x) for x in labels), records, frames))
            if progress is not None:
                progress(len(out))
    return out
