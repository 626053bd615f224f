"""The API's routers, one module per resource; `ROUTERS` in the order the document lists them."""

from . import alerts, campaigns, health, rules, tokens, vehicles, webhooks

ROUTERS = (
    health.router,
    vehicles.router,
    alerts.router,
    campaigns.router,
    rules.router,
    webhooks.router,
    tokens.router,
)

__all__ = ["ROUTERS"]
