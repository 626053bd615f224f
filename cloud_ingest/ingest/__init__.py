"""The ingest service: the fleet's MQTT messages into TimescaleDB, exactly once in storage.

::

    from cloud_ingest.ingest import IngestService, load_ingest_config

    service = IngestService(load_ingest_config(Path("ingest.toml")))
    service.start()
    ...
    service.stop()

Messages come from a shared MQTT 5 subscription with a persistent session, are decoded and
classified by the pure `classify`, stored in one transaction per flush (`storage.store_all`)
and acknowledged only after it commits; anything that cannot be stored is a dead letter with
its reason. A process removed for good is retired with its client id (`IngestService.retire`:
its queued share stored, the group left, the session ended). docs/ingest.md describes the
service, its configuration and metrics.

Errors::

    IngestError
     ├── IngestConfigError      the configuration is wrong (every problem, with where)
     ├── IngestStartError       the broker refused or the database cannot be prepared
     └── IngestRetireError      retiring a member stopped short (its session is kept)
"""

from .batcher import Batcher, Flush, Received
from .classify import Limits, Outcome, Reason, RegistryView, Rejected, classify, split_topic
from .config import IngestConfig, load_ingest_config
from .errors import IngestConfigError, IngestError, IngestRetireError, IngestStartError
from .service import IngestService, Retired, load_schemas
from .subscriber import topic_filters

__all__ = [
    "Batcher",
    "Flush",
    "IngestConfig",
    "IngestConfigError",
    "IngestError",
    "IngestRetireError",
    "IngestService",
    "IngestStartError",
    "Limits",
    "Outcome",
    "Reason",
    "Received",
    "RegistryView",
    "Rejected",
    "Retired",
    "classify",
    "load_ingest_config",
    "load_schemas",
    "split_topic",
    "topic_filters",
]
