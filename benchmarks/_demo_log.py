"""A synthetic candump log of the demo vehicle's traffic, for the benchmarks.

Each message appears at its DBC cycle rate; payloads are random bytes (decoding cost does
not depend on values) with multiplexers steered to valid branches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dbc import demo_catalogue


def write_demo_candump(path: Path, frames: int, seed: int = 7) -> None:
    db = demo_catalogue().database
    messages = db.messages
    rates = np.array([1000.0 / (m.cycle_time or 1000) for m in messages])
    rng = np.random.default_rng(seed)
    choice = rng.choice(len(messages), frames, p=rates / rates.sum())
    step = 1.0 / rates.sum()
    payloads = rng.integers(0, 256, (8192, 64), dtype=np.uint8)
    payloads[:, 0] = rng.integers(0, 33, len(payloads))  # the DTC multiplexer in range
    hex_rows = [bytes(row).hex().upper() for row in payloads]
    heads = []
    for m in messages:
        frame_id = f"{m.frame_id:08X}" if m.is_extended_frame else f"{m.frame_id:03X}"
        heads.append((frame_id + ("##0" if m.is_fd else "#"), 2 * m.length))
    t0 = 1_700_000_000.0
    with path.open("w") as out:
        lines = []
        for i in range(frames):
            head, width = heads[choice[i]]
            lines.append(f"({t0 + i * step:.6f}) can0 {head}{hex_rows[i % 8192][:width]}\n")
            if len(lines) == 200_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
