"""``can2care demo`` end to end: private services, agents, ingest, rules and the API."""

from __future__ import annotations

import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from can2care.cli import build_parser
from can2care.demo import DemoConfig, run_demo
from rules.scoring import RESCUE_KINDS


def test_small_demo_shows_each_rescue_event_once_and_none_on_hard_negatives(
    service_dir: Path,
) -> None:
    lines: list[str] = []
    seen: list[int] = []

    def serving(result: object) -> None:  # never called: the demo does not keep running
        seen.append(1)

    config = DemoConfig(
        vehicles=7, speed=600.0, seed=3, keep_running=False, run_dir=service_dir,
        api_port=0, progress_every_s=1.0, scale=2,  # two ingest processes, two rules workers
    )  # fmt: skip
    result = run_demo(config, lines.append, serving=serving)

    assert result.problems == ()
    assert not seen
    rescue_labels = [lab for lab in result.labels if lab.kind in RESCUE_KINDS]
    assert {lab.kind for lab in rescue_labels} == set(RESCUE_KINDS)
    matched = Counter(
        (e.label.vehicle, e.label.kind)
        for e in result.alerts
        if e.label is not None and e.primary and e.change.category == "rescue"
    )
    assert matched == Counter((lab.vehicle, lab.kind) for lab in rescue_labels)
    hard_negative = {
        v
        for v in {lab.vehicle for lab in result.labels}
        if all(lab.label == "negative" for lab in result.labels if lab.vehicle == v)
    }
    assert len(hard_negative) == 2
    assert not [
        e for e in result.alerts if e.change.vehicle_id in hard_negative
        and e.change.category == "rescue"
    ]  # fmt: skip
    # the table shows each rescue alert with its label, the summary the figures
    for lab in rescue_labels:
        row = next(line for line in result.table.splitlines() if lab.vehicle in line)
        assert lab.kind in row.split()[-3]
    text = "\n".join(lines)
    assert "rescue events    3 of 3" in text
    assert "samples/s" in text and "alert latency    median" in text
    assert result.api_url in text
    # both ingest processes and both rules workers ran (each says so when it listens)
    for name in ("ingest-1", "ingest-2", "rules-1", "rules-2"):
        assert "Ctrl-C stops" in (service_dir / "demo" / f"{name}.log").read_text()
    # everything the demo started is stopped: its API no longer answers
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{result.api_url}/health", timeout=2)


def test_demo_options_are_checked() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--vehicles", "500", "--duration", "2h", "--speed", "30"])
    assert (args.vehicles, args.duration, args.speed, args.keep_running) == (500, 7200.0, 30, True)
    assert parser.parse_args(["demo", "--no-keep-running"]).keep_running is False
    for bad in (["--duration", "30m"], ["--vehicles", "0"], ["--duration", "soon"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["demo", *bad])
