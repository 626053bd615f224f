"""Care triggers: rule files evaluated on the telemetry stream, alerts and their delivery.

::

    rules = load_rules([Path("my-rules.toml")], builtin=True)   # validated (docs/rules.md)
    engine = Engine(rules)
    changes = engine.process("veh-1", state, observations, now_ms=now)   # pure, event time

The pure core is here: the rule model and loader, the condition language (`rules.expr`), the
engine (`rules.engine`) and its `AlertChange` output. The database side is in modules of their
own: `rules.store` (alerts, lifecycle, audit, change feed), `rules.delivery` (webhooks),
`rules.campaigns`, `rules.feed` and `rules.worker` (the rules worker). docs/rules.md,
docs/alerts.md.

Errors (`rules.errors`)::

    RulesError
     ├── RuleFileError, ExpressionError       rule files and conditions
     ├── AlertNotFound, InvalidTransition     the alert lifecycle
     ├── InvalidCursor                        alert list paging
     ├── WebhookNotFound, InvalidWebhook      delivery channels
     └── CampaignNotFound, InvalidCampaign    campaigns
"""

from .changes import AlertChange, alert_key
from .engine import Engine, Observations, VehicleEvent, VehicleState
from .errors import ExpressionError, RuleFileError, RulesError
from .expr import Condition, compile_condition
from .loader import load_builtin, load_rules, parse_rules
from .model import Instance, Rule, RuleSet

__all__ = [
    "AlertChange",
    "Condition",
    "Engine",
    "ExpressionError",
    "Instance",
    "Observations",
    "Rule",
    "RuleFileError",
    "RuleSet",
    "RulesError",
    "VehicleEvent",
    "VehicleState",
    "alert_key",
    "compile_condition",
    "load_builtin",
    "load_rules",
    "parse_rules",
]
