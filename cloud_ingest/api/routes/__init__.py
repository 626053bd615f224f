"""The API's routers, one module per resource; `ROUTERS` in the order the document lists them."""

from . import alerts, broker_logins, campaigns, health, rules, tokens, vehicles, webhooks

ROUTERS = (
    health.router,
    vehicles.router,
    broker_logins.router,
    alerts.router,
    campaigns.router,
    rules.router,
    webhooks.router,
    tokens.router,
)

__all__ = ["ROUTERS"]
