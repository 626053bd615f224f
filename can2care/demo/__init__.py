"""``can2care demo``: a simulated fleet through the whole chain, live (docs/getting-started.md).

::

    result = run_demo(DemoConfig(vehicles=50, keep_running=False), say=print)
    assert not result.problems

The private Mosquitto and TimescaleDB are started (or reused); a fresh ``can2care_demo``
database is made and the fleet registered in it; the statuses earlier demo fleets left
retained on the broker are cleared (`._retained`); then ``can2care ingest``, ``can2care rules
run`` and ``can2care api`` run as processes of their own. Each vehicle of a mixed fleet with
labelled scenarios (`simulators.demo_fleet`) has its drive simulated and its CAN frames run
through an edge agent of its own, offline at full speed (`._prepare`); what each agent would
publish is then sent by the vehicle's own MQTT client, paced ``speed`` times faster than the
drive's clock (`._publish`). When the rules have caught up, the alerts the care team received
are read back, matched to the labels and shown with the run's figures (`._report`).

Errors: `DemoError` (a service did not start or stopped, the chain stalled); the services'
own `can2care.devservices.ServiceError`.
"""

from ._run import DemoConfig, DemoError, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoError", "DemoResult", "run_demo"]
