"""Decoding speed against cantools, and the whole decode pipeline against python-can.

In one run, on one synthetic candump log of the demo vehicle (benchmarks/_demo_log.py):

1. batch decode: frames/s of ``BatchDecoder.decode`` over the whole log against cantools'
   ``Message.decode`` on the same frames (cantools on the first ``--baseline-frames``,
   per-frame rate; it is too slow for millions);
2. pipeline: read the candump file, decode, write the long CSV, against python-can's
   ``LogReader`` + cantools + ``csv.writer`` (on the first ``--baseline-frames`` lines),
   checking that both write the same bytes there;
3. numba start-up: a fresh process decoding one frame with an empty on-disk cache (cold,
   compiles) and again with the cache filled (warm).

In 1 and 2 each side takes ``--rounds`` turns, alternating with the other, so that both see
the same moments of a shared machine; the best turn of each is compared, and each round's
ratio is printed too.

    python -m benchmarks.bench_decode [--frames 4000000] [--baseline-frames 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import can

from benchmarks._timing import interleaved
from dbc import demo_catalogue
from edge_agent.decoder import BatchDecoder
from edge_agent.export import LongCsvWriter
from edge_agent.export.pipeline import decode_logs
from edge_agent.frames import FrameBatch
from edge_agent.logs import LogReader

from ._demo_log import write_demo_candump

_STARTUP = """
import time; t = time.perf_counter()
from dbc import demo_catalogue
from edge_agent.decoder import BatchDecoder
from edge_agent.frames import FrameBatch
d = BatchDecoder(demo_catalogue().database)
d.decode(FrameBatch.from_rows([(0.0, 0xA0, 0, bytes(8))]))
print(time.perf_counter() - t)
"""


def _startup(cache: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", _STARTUP], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def bench_batch(path: Path, baseline_frames: int, rounds: int) -> None:
    db = demo_catalogue().database
    decoder = BatchDecoder(db)
    batches = list(LogReader(path))
    decoder.decode(FrameBatch.from_rows([(0.0, 0xA0, 0, bytes(8))]))  # compiled / loaded
    frames = sum(len(b) for b in batches)
    samples = sum(decoder.decode(batch).stats.samples for batch in batches)

    def fresh_run() -> None:
        for batch in batches:
            decoder.decode(batch)

    def reuse_run() -> None:
        for batch in batches:
            decoder.decode(batch, reuse=True)

    first = batches[0]
    by_key = {(m.frame_id, m.is_extended_frame): m for m in db.messages}
    work = []
    for i in range(min(baseline_frames, len(first))):
        work.append((by_key[(int(first.ids[i]), bool(first.extended[i]))], first.payload(i)))

    def cantools_run() -> None:
        for message, payload in work:
            message.decode(payload)

    reuse_run()  # the kept buffers grown to the batches' size
    reuse_times, fresh_times, cantools_times = interleaved(
        rounds, reuse_run, fresh_run, cantools_run
    )
    ours = frames / min(reuse_times)
    fresh = frames / min(fresh_times)
    theirs = len(work) / min(cantools_times)
    each = [
        (frames / r) / (len(work) / c) for r, c in zip(reuse_times, cantools_times, strict=True)
    ]
    print(f"batch decode: {frames:,} frames, {samples:,} samples")
    print(f"  can2care BatchDecoder   {ours:>14,.0f} frames/s  (streaming: buffers kept)")
    print(f"  can2care BatchDecoder   {fresh:>14,.0f} frames/s  (fresh arrays per batch)")
    print(f"  cantools Message.decode {theirs:>14,.0f} frames/s  (first {len(work):,} frames)")
    print(f"  ratio                   {ours / theirs:>14.1f}x  (target >= 150x)")
    print(f"  ratio in each round     {', '.join(f'{r:.0f}x' for r in each)}")


def bench_pipeline(path: Path, out_dir: Path, baseline_frames: int, rounds: int) -> None:
    db = demo_catalogue().database
    decoder = BatchDecoder(db)
    decoder.decode(FrameBatch.from_rows([(0.0, 0xA0, 0, bytes(8))]))
    target = out_dir / "ours.csv"
    frames = 0

    def ours_run() -> None:  # what `can2care decode LOG -o OUT.csv` runs
        nonlocal frames
        with LongCsvWriter(target, decoder) as writer:
            frames = decode_logs([path], decoder, writer).frames

    by_key = {(m.frame_id, m.is_extended_frame): m for m in db.messages}
    text = io.StringIO()
    count = 0

    def baseline_run() -> None:
        nonlocal text, count
        text = io.StringIO()
        pycan_reader = can.LogReader(path)
        rows = csv.writer(text, lineterminator="\n")
        rows.writerow(["timestamp", "frame_id", "message", "signal", "value"])
        count = 0
        for msg in itertools.islice(pycan_reader, baseline_frames):
            message = by_key[(msg.arbitration_id, msg.is_extended_id)]
            decoded: Any = message.decode(
                bytes(msg.data), decode_choices=False, allow_truncated=True
            )
            for name, value in decoded.items():
                rows.writerow([msg.timestamp, msg.arbitration_id, message.name, name, value])
            count += 1
        (out_dir / "baseline.csv").write_text(text.getvalue())
        pycan_reader.stop()

    # One untimed turn each first: it compiles nothing but maps the memory the buffers and
    # the output's page cache use (on this virtual machine a first touch of memory costs
    # many times a later one).
    ours_run()
    baseline_run()
    ours_times, baseline_times = interleaved(rounds, ours_run, baseline_run)
    ours = frames / min(ours_times)
    theirs = count / min(baseline_times)
    each = [(frames / o) / (count / b) for o, b in zip(ours_times, baseline_times, strict=True)]
    with target.open() as ours_file:
        head = "".join(itertools.islice(ours_file, text.getvalue().count("\n")))
    same = head == text.getvalue()
    size = target.stat().st_size
    print(f"pipeline (candump -> decode -> long CSV): {frames:,} frames, {size / 1e6:,.0f} MB")
    print(f"  can2care LogReader + BatchDecoder + LongCsvWriter {ours:>12,.0f} frames/s")
    print(
        f"  python-can LogReader + cantools + csv.writer      {theirs:>12,.0f} frames/s"
        f"  (first {count:,} frames)"
    )
    print(f"  ratio {ours / theirs:.1f}x (target >= 50x); identical CSV on those frames: {same}")
    print(f"  ratio in each round {', '.join(f'{r:.0f}x' for r in each)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4_000_000)
    parser.add_argument("--baseline-frames", type=int, default=200_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns each side takes (best of them is shown)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="can2care-bench-") as tmp:
        path = Path(tmp) / "demo.log"
        write_demo_candump(path, args.frames)
        print(
            f"log: {args.frames:,} frames of the demo vehicle, "
            f"{path.stat().st_size / 1e6:,.0f} MB candump"
        )
        bench_batch(path, args.baseline_frames, args.rounds)
        bench_pipeline(path, Path(tmp), args.baseline_frames, args.rounds)
        cold = _startup(str(Path(tmp) / "numba-cache"))
        warm = _startup(str(Path(tmp) / "numba-cache"))
        print(
            f"numba start-up (import, compile or load, decode one frame): cold {cold:.2f} s,"
            f" warm {warm:.2f} s"
        )


if __name__ == "__main__":
    main()
