"""The rules package's exceptions.

::

    RulesError                  every error raised by the rules package
    ├── RuleFileError           rule files that cannot be loaded: every problem, with the
    │                           file, line, rule and field (also a ValueError)
    ├── ExpressionError         a condition that cannot be compiled, with the column
    │                           (also a ValueError)
    ├── AlertNotFound           no alert with that id (also a LookupError; permanent)
    ├── InvalidTransition       a lifecycle action not allowed in the alert's status (permanent)
    ├── InvalidCursor           a list cursor that this code did not make (also a ValueError)
    ├── WebhookNotFound         no webhook with that id (also a LookupError; permanent)
    ├── InvalidWebhook          a webhook definition that cannot work (also a ValueError)
    ├── CampaignNotFound        no campaign with that id or name (also a LookupError)
    └── InvalidCampaign         a campaign, segment or outreach change that cannot be
                                (also a ValueError)

Database errors (``psycopg.Error``) are not wrapped: they propagate after the transaction
rolled back, and their type says whether to retry (``OperationalError``) or not.
"""

from __future__ import annotations

__all__ = [
    "AlertNotFound",
    "CampaignNotFound",
    "ExpressionError",
    "InvalidCampaign",
    "InvalidCursor",
    "InvalidTransition",
    "InvalidWebhook",
    "RuleFileError",
    "RulesError",
    "WebhookNotFound",
]


class RulesError(Exception):
    """Base of every error raised by ``rules``."""


class AlertNotFound(RulesError, LookupError):
    """No alert has this id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no alert with id {alert_id}")
        self.alert_id = alert_id


class InvalidTransition(RulesError):
    """A lifecycle action that the alert's current status does not allow."""

    def __init__(self, alert_id: int, action: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"cannot {action} alert {alert_id}: {from_status} -> {to_status} is not allowed"
        )
        self.alert_id = alert_id
        self.action = action
        self.from_status = from_status
        self.to_status = to_status


class InvalidCursor(RulesError, ValueError):
    """A pagination cursor that is malformed or was not made by `rules.store.list_alerts`."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"invalid alert list cursor {cursor!r}")
        self.cursor = cursor


class WebhookNotFound(RulesError, LookupError):
    """No webhook has this id."""

    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"no webhook with id {webhook_id}")
        self.webhook_id = webhook_id


class InvalidWebhook(RulesError, ValueError):
    """A webhook definition that cannot work (an unknown time zone, a bad URL, ...)."""


class RuleFileError(RulesError, ValueError):
    """Rule files that cannot be loaded; ``problems`` lists every one with where it is."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ExpressionError(RulesError, ValueError):
    """An expression that cannot be compiled: what, and the column (from 1) where."""

    def __init__(self, text: str, problem: str, column: int | None = None) -> None:
        self.text, self.problem, self.column = text, problem, column
        at = f" at column {column}" if column is not None else ""
        super().__init__(f"{problem}{at} in {text!r}")


class CampaignNotFound(RulesError, LookupError):
    """No campaign has this id or name."""

    def __init__(self, campaign: int | str) -> None:
        super().__init__(f"no campaign {campaign!r}")
        self.campaign = campaign


class InvalidCampaign(RulesError, ValueError):
    """A campaign, its segment or an outreach change that cannot be (what and why)."""
