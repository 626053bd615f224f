"""``kill -9`` at 20 random points: the outbox opens cleanly and loses nothing it accepted.

A child process (:mod:`._crash_child`) puts records (single puts and ``put_many``, every
priority, 9 bytes to 6 kB) and acks some, reporting each id only after ``put`` returned.  The
test kills it with SIGKILL at seeded random moments, 4 during start-up and opening, 16 while it
works, all on the same file; after each kill the outbox must open without complaint, pass
SQLite's ``integrity_check``, and hold every reported record that was not acked, byte for byte,
once.  Power loss cannot be simulated here; ``docs/outbox.md`` says what covers it.
"""

from __future__ import annotations

import logging
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.outbox import RECORD_OVERHEAD, Outbox

from ._crash_child import BUDGET, MAX_BATCH, record_for

REPO = Path(__file__).resolve().parents[3]
KILLS = 20
KILLS_WHILE_OPENING = 4
SEED = 20240611


def _wait_for_ready(out: Path, proc: subprocess.Popen[bytes], limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not out.read_bytes().startswith(b"R\n"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the child never opened the outbox: {err.decode(errors='replace')}")
        time.sleep(0.005)


def _run_and_kill(
    path: Path, first_seq: int, seed: int, out: Path, delay: float, ready: bool
) -> list[str]:
    """Start the child, SIGKILL it ``delay`` seconds after start (or after it is ready)."""
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.edge_agent.outbox._crash_child",
                str(path),
                str(first_seq),
                str(seed),
            ],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.PIPE,
        )
        try:
            if ready:
                _wait_for_ready(out, proc)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the child ended by itself: {err.decode()}"
    text = out.read_text()
    return text.split("\n")[:-1]  # a line cut short by the kill has no newline: dropped


def _open_and_read(path: Path, caplog: pytest.LogCaptureFixture) -> dict[int, int]:
    """Open the outbox as the agent would; every record's id and sequence number, all checked."""
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="edge_agent.outbox"),
        Outbox(path, max_bytes=BUDGET, on_corrupt="raise") as outbox,
    ):
        records = outbox.pending(10**9)
        stats = outbox.stats()
    assert not caplog.records, "opening after a kill should be silent"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()

    assert [(r.priority, r.id) for r in records] == sorted((r.priority, r.id) for r in records)
    present: dict[int, int] = {}
    for r in records:
        seq = int.from_bytes(r.payload[:8], "big")
        topic, payload, priority = record_for(seq)
        assert (r.topic, r.payload, r.priority, r.qos) == (topic, payload, priority, 1), r.id
        present[r.id] = seq
    assert len(set(present.values())) == len(present), "a record is stored twice"
    assert stats.records == len(records)
    assert stats.bytes == sum(len(r.payload) + len(r.topic) + RECORD_OVERHEAD for r in records)
    return present


def test_kill_9_at_random_points_loses_nothing_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    rng = random.Random(SEED)
    plan = [True] * (KILLS - KILLS_WHILE_OPENING) + [False] * KILLS_WHILE_OPENING
    rng.shuffle(plan)
    must: dict[int, int] = {}  # id -> seq of every record that has to be there
    top_id = 0  # the highest id reported or seen so far
    next_seq = 0
    puts = acks = 0
    for run, ready in enumerate(plan):
        delay = rng.uniform(0.0, 0.6) if ready else rng.uniform(0.0, 0.15)
        lines = _run_and_kill(
            path, next_seq, rng.randrange(2**32), tmp_path / f"run{run}.out", delay, ready
        )

        printed: dict[int, int] = {}
        maybe_acked: set[int] = set()
        for line in lines[1:] if lines[:1] == ["R"] else lines:
            kind, *fields = line.split(" ")
            if kind == "P":
                printed[int(fields[0])] = int(fields[1])
            else:
                assert kind == "A", line
                maybe_acked.update(int(f) for f in fields if f)
        if printed:
            assert min(printed) > top_id, "ids must keep increasing across restarts"
        must.update(printed)
        for id_ in maybe_acked:
            must.pop(id_, None)
        puts += len(printed)
        acks += len(maybe_acked)

        present = _open_and_read(path, caplog)
        lost = {id_: seq for id_, seq in must.items() if present.get(id_) != seq}
        assert not lost, f"run {run}: accepted records lost: {sorted(lost)[:10]}"
        high = max(printed.values(), default=next_seq - 1)
        for id_, seq in present.items():
            if id_ in must or id_ in maybe_acked:
                continue
            # Committed, but the kill came before the child could report it: only the last put.
            assert id_ > max(printed, default=top_id), (run, id_)
            assert high < seq <= high + MAX_BATCH, (run, id_, seq)
        must = dict(present)  # everything the outbox holds now is accepted from here on
        top_id = max([top_id, *printed, *present])
        next_seq = high + MAX_BATCH + 1

    # The kills did land while it worked (loose bounds: a slow disk makes each put slower).
    assert puts >= 100 and acks >= 10, (puts, acks)
