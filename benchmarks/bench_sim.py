"""Simulator speed: one hour of one vehicle's full CAN traffic to a candump file.

Simulates an hour of the demo EV on the WLTP-like cycle, generates every frame at its DBC
cycle time and writes them with the candump writer, timed end to end (best of two).

    python -m benchmarks.bench_sim [--hours 1] [--variant ev]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dbc import demo_catalogue
from simulators import TrafficGenerator, VehicleConfig, simulate, write_log

_BUDGET = 20.0  # seconds for one hour of traffic


def _run(path: Path, hours: float, variant: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    config = VehicleConfig(variant=variant, cycle="wltp", duration=hours * 3600, seed=1)  # type: ignore[arg-type]
    drive = simulate(config)
    traffic = TrafficGenerator(drive.trace, demo_catalogue().database)
    frames = write_log(path, traffic.batches())
    return time.perf_counter() - start, frames, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--variant", choices=("ev", "combustion"), default="ev")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drive.log"
        runs = [_run(path, args.hours, args.variant) for _ in range(2)]
    seconds, frames, size = min(runs)
    budget = _BUDGET * args.hours
    print(
        f"{args.hours:g} h of {args.variant} traffic: {frames:,} frames, "
        f"{size / 1e6:.1f} MB candump"
    )
    print(
        f"{seconds:.2f} s, {budget:g} s budget, {budget / seconds:.1f} x under budget "
        f"({frames / seconds:,.0f} frames/s)"
    )


if __name__ == "__main__":
    main()
