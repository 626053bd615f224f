"""kill -9 of the running agent at 20 random points: the outbox opens cleanly afterwards,
every batch the agent had accepted is in it exactly once, and no sequence number is reused."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from can2care.devservices._proc import free_port
from edge_agent.outbox import Outbox
from edge_agent.wire import peek
from simulators import write_log

from .._drive import drive_frames

ACCEPTED = re.compile(r"batch (\d+): \d+ samples, \d+ bytes")


def _config(tmp: Path, log: Path) -> Path:
    path = tmp / "agent.toml"
    path.write_text(
        f"""
[vehicle]
id = "kill-1"

[can]
log = "{log}"
replay_speed = 0

[telemetry]
batch_interval_s = 10.0

[mqtt]
host = "127.0.0.1"
port = {free_port()}
reconnect_min_s = 0.05
reconnect_max_s = 0.2

[outbox]
path = "{tmp / "outbox.sqlite"}"
""",
        encoding="utf-8",
    )
    return path


def test_kill_9_at_20_random_points_loses_nothing_accepted(tmp_path: Path) -> None:
    log = tmp_path / "drive.log"
    write_log(log, [drive_frames(3600.0, cycle="wltp", seed=4)])
    config = _config(tmp_path, log)
    rng = random.Random(20261123)
    accepted: list[int] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for _ in range(20):
        process = subprocess.Popen(
            [sys.executable, "-m", "can2care", "-vv", "edge", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        time.sleep(rng.uniform(0.3, 3.0))
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate()
        run = [int(m.group(1)) for m in ACCEPTED.finditer(err.decode(errors="replace"))]
        assert run == sorted(run)
        if accepted and run:
            assert run[0] > accepted[-1]  # a restart never reuses a sequence number
        accepted += run
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            assert outbox.moved_aside is None  # opened cleanly: nothing to salvage
            records = outbox.pending(1_000_000)
        stored = [peek(r.payload).sequence for r in records]
        assert len(stored) == len(set(stored))  # nothing twice
        assert set(accepted) <= set(stored)  # nothing accepted is lost
    assert len(accepted) > 20  # the kills landed while batches were being written
