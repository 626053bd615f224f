"""The process the crash-safety test kills: it stores records until SIGKILL stops it.

Run as ``python -m tests.edge_agent.outbox._crash_child OUTBOX FIRST_SEQ SEED``.  Each record
carries a sequence number ``seq``; its topic, priority and payload are functions of ``seq``
alone (:func:`record_for`), so the test can check every byte of what survived.

Lines written to stdout, each flushed at once:

* ``R`` when the outbox is open;
* ``P <id> <seq>`` after a ``put`` or ``put_many`` holding that record has returned;
* ``A <id> <id> ...`` before an ``ack`` of those ids (they may be gone after a kill).
"""

from __future__ import annotations

import hashlib
import random
import sys

from edge_agent.outbox import Outbox, Priority

#: Large enough that nothing is evicted during the test: every loss would be a bug.
BUDGET = 512 * 2**20

#: The most records one ``put_many`` holds.
MAX_BATCH = 8

_TOPICS = {
    Priority.EVENT: "v1/crash-test/events",
    Priority.STATUS: "v1/crash-test/status",
    Priority.TELEMETRY: "v1/crash-test/telemetry",
}


def record_for(seq: int) -> tuple[str, bytes, Priority]:
    """The topic, payload and priority of record ``seq``."""
    digest = hashlib.sha256(seq.to_bytes(8, "big")).digest()
    priority = (Priority.EVENT, Priority.STATUS, *[Priority.TELEMETRY] * 6)[digest[0] % 8]
    size = 1 + int.from_bytes(digest[1:3], "big") % 6000
    payload = seq.to_bytes(8, "big") + (digest * (size // 32 + 1))[:size]
    return _TOPICS[priority], payload, priority


def _emit(lines: list[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    path, first, seed = argv[0], int(argv[1]), int(argv[2])
    rng = random.Random(seed)
    seq = first
    draining = rng.random() < 0.5  # phases: fill (puts only), drain (puts and large acks)
    with Outbox(path, max_bytes=BUDGET) as outbox:
        _emit(["R"])
        while True:
            if rng.random() < 0.005:
                draining = not draining
            roll = rng.random()
            if draining and roll < 0.5:
                acked = [r.id for r in outbox.pending(rng.randint(1, 200))]
                _emit(["A " + " ".join(map(str, acked))])
                outbox.ack(acked)
            elif roll < 0.7:
                topic, payload, priority = record_for(seq)
                id_ = outbox.put(topic, payload, priority=priority)
                _emit([f"P {id_} {seq}"])
                seq += 1
            else:
                seqs = list(range(seq, seq + rng.randint(1, MAX_BATCH)))
                ids = outbox.put_many([record_for(s) for s in seqs])
                _emit([f"P {i} {s}" for i, s in zip(ids, seqs, strict=True)])
                seq = seqs[-1] + 1


if __name__ == "__main__":
    main(sys.argv[1:])
