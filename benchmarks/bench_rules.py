"""The built-in care catalogue on the simulator's labelled scenario suite (issue 7).

Builds the suite (``--drives``, at least 100, over a third hard negatives), sends each drive's
frames through the edge agent's own pipeline offline, configured as deploy/agent.example.toml
(decoder, sampler, crash detector, wire codec, outbox), decodes what it published as the
cloud does, and runs the built-in catalogue through the engine one message at a time per
vehicle, the state persisted as JSON between messages. Prints recall, precision and
detection delay per scenario kind, the false alerts, the acceptance, and the engine's
throughput, for each ``--seeds`` suite.

    python -m benchmarks.bench_rules [--drives 120] [--seeds 0 1 2] [--jobs 2] [--out FILE]

Cloud-side signals and context (connectivity, service records, the registry) are not
simulated: their rules are tested elsewhere.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
    from rules.changes import AlertChange
    from rules.engine import Engine, Observations
    from simulators.suite import ObservedDrive, Published, SuiteDrive

_EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "agent.example.toml"


def agent_config() -> AgentConfig:
    """The shipped example configuration (its vehicle and outbox are replaced per drive)."""
    from edge_agent.config import load_config

    return load_config(_EXAMPLE, env={}, overrides={"mqtt.tls": False})


def observations(observed: ObservedDrive) -> list[Observations]:
    """The drive's published messages as the engine's input, in the order they arrived."""
    from rules.engine import Observations, VehicleEvent

    return [
        Observations(
            signals=m.signals,
            events=[VehicleEvent(e.time_ms, e.kind, e.payload) for e in m.events],
        )
        for m in observed.messages
    ]


@functools.cache
def _suite(drives: int, seed: int) -> tuple[SuiteDrive, ...]:
    from simulators.suite import build_suite

    return build_suite(drives, seed)


def _observe(job: tuple[int, int, int]) -> tuple[list[dict[str, Any]], tuple[Published, ...], int]:
    """Observe drive ``index`` of suite ``(drives, seed)``, in a worker process (labels as
    JSON: scenario values are read-only mappings, which do not pickle)."""
    from simulators.suite import observe_drive

    drives, seed, index = job
    observed = observe_drive(_suite(drives, seed)[index], agent_config())
    return [label.to_json() for label in observed.labels], observed.messages, observed.frames


def observe_all(drives: int, seed: int, jobs: int) -> list[ObservedDrive]:
    from simulators.labels import Label
    from simulators.suite import ObservedDrive

    work = [(drives, seed, i) for i in range(drives)]
    if jobs <= 1:
        results = [_observe(job) for job in work]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_observe, work, chunksize=1))
    return [
        ObservedDrive(drive, tuple(Label.from_json(x) for x in labels), messages, frames)
        for drive, (labels, messages, frames) in zip(_suite(drives, seed), results, strict=True)
    ]


def evaluate(
    engine: Engine, observed: Sequence[ObservedDrive]
) -> tuple[list[AlertChange], int, int, float, int]:
    """Changes of all drives; samples evaluated, calls, engine seconds, largest state."""
    from rules.replay import replay

    changes: list[AlertChange] = []
    samples = calls = largest = 0
    seconds = 0.0
    for drive in observed:
        messages = observations(drive)
        start = time.perf_counter()
        result = replay(engine, drive.vehicle_id, messages)
        seconds += time.perf_counter() - start
        changes.extend(result.changes)
        samples += result.samples
        calls += result.calls
        largest = max(largest, result.state_bytes)
    return changes, samples, calls, seconds, largest


def run_seed(engine: Engine, drives_n: int, seed: int, jobs: int) -> tuple[bool, str]:
    from rules.scoring import score_alerts
    from simulators.suite import suite_kinds

    drives = _suite(drives_n, seed)
    hard = sum(d.hard_negative for d in drives)
    hours = sum(d.config.duration for d in drives) / 3600
    start = time.perf_counter()
    observed = observe_all(drives_n, seed, jobs)
    observe_s = time.perf_counter() - start
    changes, samples, calls, engine_s, largest = evaluate(engine, observed)
    labels = [label for o in observed for label in o.labels]
    score = score_alerts(labels, changes)
    problems = score.acceptance()
    frames = sum(o.frames for o in observed)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(suite_kinds(drives).items()))
    out = [
        f"### Suite seed {seed}",
        "",
        f"{len(drives)} drives ({hard} hard negatives, {hard / len(drives):.0%}), "
        f"{hours:,.1f} h of simulated driving and parking, {frames:,} frames through the "
        f"edge agent in {observe_s:,.1f} s; scenarios: {kinds}.",
        "",
        score.table(),
        "",
        f"Engine: {samples:,} samples of the rules' signals in {calls:,} messages evaluated in "
        f"{engine_s:,.2f} s: **{samples / engine_s:,.0f} samples/s**, "
        f"{calls / engine_s:,.0f} messages/s (state as JSON between messages; largest "
        f"state {largest:,} bytes).",
        "",
        "Acceptance (every rescue-worthy episode exactly one alert, no rescue alert on a hard "
        "negative, one alert per episode): "
        + ("**met**" if not problems else "**NOT met**: " + "; ".join(problems)),
        "",
    ]
    return not problems, "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drives", type=int, default=120)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    if args.drives < 100:
        print(f"note: {args.drives} drives, fewer than the acceptance's 100", file=sys.stderr)
    from rules.engine import Engine
    from rules.loader import load_builtin

    engine = Engine(load_builtin())
    command = "python -m benchmarks.bench_rules " + " ".join(sys.argv[1:])
    header = [
        "## Care rules on the labelled scenario suite (issue 7)",
        "",
        f"`{command.strip()}`, {datetime.now(UTC):%Y-%m-%d}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {args.jobs} observing processes.",
        "",
    ]
    print("\n".join(header), flush=True)
    report = list(header)
    met = True
    for seed in args.seeds:
        ok, text = run_seed(engine, args.drives, seed, args.jobs)
        met &= ok
        print(text, flush=True)
        report.append(text)
    if args.out is not None:
        args.out.write_text("\n".join(report), encoding="utf-8")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
