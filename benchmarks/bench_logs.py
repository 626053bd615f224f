"""Candump log reading: python-can's ``LogReader`` against :class:`edge_agent.logs.LogReader`.

Writes a synthetic candump file (a mix of standard, extended and CAN FD frames) to a
temporary directory, reads it with both in the same run and prints frames per second.
python-can reads only the first ``--pycan-frames`` lines (it is slow); its rate is measured on
those and said so.  Each reader runs ``--repeat`` times and the best run counts, for both.

    python -m benchmarks.bench_logs [--frames 2000000] [--pycan-frames 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import can
import numpy as np

from edge_agent.logs import LogReader


def write_candump(path: Path, frames: int, seed: int = 1) -> None:
    """``frames`` lines: 60 % standard 8-byte, 30 % extended, 10 % CAN FD up to 64 bytes."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=frames, p=[0.6, 0.3, 0.1])
    lengths = rng.integers(0, 9, size=frames)
    fd_lengths = rng.choice([8, 12, 16, 20, 24, 32, 48, 64], size=frames)
    payload = rng.integers(0, 256, size=(4096, 64), dtype=np.uint8)
    hex_rows = [bytes(row).hex().upper() for row in payload]
    t0 = 1_700_000_000.0
    with path.open("w") as out:
        lines = []
        for i in range(frames):
            ts = f"({t0 + i * 0.0005:.6f})"
            data = hex_rows[i % 4096]
            kind = kinds[i]
            if kind == 0:
                frame = f"{i % 0x800:03X}#{data[: 2 * lengths[i]]}"
            elif kind == 1:
                frame = f"{(i * 7919) % 0x20000000:08X}#{data[: 2 * lengths[i]]}"
            else:
                frame = f"{i % 0x800:03X}##{i % 4}{data[: 2 * fd_lengths[i]]}"
            lines.append(f"{ts} can{i % 2} {frame} R\n")
            if len(lines) == 100_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)


def bench_pycan(path: Path, limit: int) -> tuple[int, float]:
    reader = can.LogReader(path)
    start = time.perf_counter()
    n = sum(1 for _ in itertools.islice(reader, limit))
    elapsed = time.perf_counter() - start
    reader.stop()
    return n, elapsed


def bench_ours(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with LogReader(path) as reader:
        n = sum(len(batch) for batch in reader)
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2_000_000)
    parser.add_argument("--pycan-frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        write_candump(path, args.frames)
        size = path.stat().st_size
        print(f"file: {args.frames:,} frames, {size / 1e6:.0f} MB")
        # Compile (or load the cached compiled scanner) outside the measurement.
        warm = Path(tmp) / "warm.log"
        write_candump(warm, 10)
        bench_ours(warm)
        n_ours, t_ours = min((bench_ours(path) for _ in range(args.repeat)), key=lambda r: r[1])
        n_pc, t_pc = min(
            (bench_pycan(path, args.pycan_frames) for _ in range(args.repeat)), key=lambda r: r[1]
        )
    rate_ours = n_ours / t_ours
    rate_pc = n_pc / t_pc
    whole = "whole file" if n_pc == args.frames else f"first {n_pc:,} frames, rate per frame"
    print(f"best of {args.repeat} runs each")
    print(f"python-can LogReader: {rate_pc:12,.0f} frames/s  ({whole}; {t_pc:.2f} s)")
    print(f"edge_agent LogReader: {rate_ours:12,.0f} frames/s  ({n_ours:,} frames; {t_ours:.2f} s)")
    print(f"speed-up: {rate_ours / rate_pc:.1f}x")
    if n_pc < args.frames:
        print(f"python-can on the whole file, extrapolated: {args.frames / rate_pc:.1f} s")


if __name__ == "__main__":
    main()
