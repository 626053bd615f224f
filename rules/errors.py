"""The rules package's exceptions.

::

    RulesError                  every error raised by the rules package
    ├── AlertNotFound           no alert with that id (also a LookupError; permanent)
    ├── InvalidTransition       a lifecycle action not allowed in the alert's status (permanent)
    ├── InvalidCursor           a list cursor that this code did not make (also a ValueError)
    ├── WebhookNotFound         no webhook with that id (also a LookupError; permanent)
    └── InvalidWebhook          a webhook definition that cannot work (also a ValueError)

Database errors (``psycopg.Error``) are not wrapped: they propagate after the transaction
rolled back, and their type says whether to retry (``OperationalError``) or not.
"""

from __future__ import annotations

__all__ = [
    "AlertNotFound",
    "InvalidCursor",
    "InvalidTransition",
    "InvalidWebhook",
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
