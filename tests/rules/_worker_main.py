"""A delivery worker in a process of its own, for the test that kills one mid-delivery.

Usage: ``python -m tests.rules._worker_main <conninfo>``; runs until killed.
"""

from __future__ import annotations

import sys
import time

from rules.delivery import DeliveryConfig, DeliveryWorker


def main() -> None:
    worker = DeliveryWorker(sys.argv[1], DeliveryConfig(timeout_s=20.0, lease_s=60.0))
    worker.start()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
