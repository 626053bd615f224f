"""The care team's HTTP API (docs/api.md): alerts, vehicles, time series, service records,
campaigns, rules, webhooks, API tokens and vehicles' broker logins, over FastAPI.

::

    settings = Settings.from_env(database_url="postgresql://...")   # validated here
    app = create_app(settings)         # nothing is built before this call
    uvicorn.run(app)                   # `can2care api` does this

Every endpoint but ``/health`` needs a bearer token (`cloud_ingest.api.tokens`) whose role
allows it: ``agent`` < ``supervisor`` < ``admin``. Errors are RFC 9457 problem details, mapped
from the domain errors in one place (`cloud_ingest.api.problems`).

Errors::

    ApiError                        every error raised by cloud_ingest.api (and answered as a
     │                              problem: its ``status``, ``slug`` and ``title``)
     ├── Unauthorized        401    no token, or one that is unknown or revoked
     ├── Forbidden           403    the token's role does not allow the request
     ├── NotFound            404    no such vehicle, token, rule file, ... (also a LookupError)
     ├── Conflict            409    the request clashes with what is stored or configured
     └── InvalidRequest      422    a value the schema allows but the API does not (a range
                                    too long, too many points); names the field

The domain errors of `rules.errors` (AlertNotFound, InvalidTransition, ...) and
`psycopg.OperationalError` (503, retry) are mapped by the same table.
"""

from .app import create_app
from .errors import ApiError, Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from .settings import Settings, SettingsError
from .tokens import ROLES, Role, create_token, list_tokens, revoke_token

__all__ = [
    "ROLES",
    "ApiError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "Role",
    "Settings",
    "SettingsError",
    "Unauthorized",
    "create_app",
    "create_token",
    "list_tokens",
    "revoke_token",
]
