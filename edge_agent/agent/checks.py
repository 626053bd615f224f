"""The configuration checked against the catalogue it names.

`load_config` checks the values themselves; whether the VSS paths and patterns they name are
in the catalogue can only be checked once it is loaded. `check_catalogue` does that, with
the checks of the parts that use those paths (`rule_problems`, `capture_problems`,
`crash_problems`): the agent calls it before it builds them, and ``can2care edge config``
calls it so that a wrong path is reported before the agent is started.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..config import ConfigValueError
from ..events import crash_problems
from ..sampling import capture_problems, rule_problems

if TYPE_CHECKING:
    from ..config import AgentConfig
    from ..wire import WireSchema

__all__ = ["check_catalogue"]


def check_catalogue(config: AgentConfig, schema: WireSchema) -> None:
    """Raise `ConfigValueError` listing every VSS path or pattern of ``config`` that the
    catalogue of ``schema`` lacks, each with its key and the configuration file: sampling
    rule patterns, capture triggers and patterns, and, when crash detection is enabled,
    the crash signals."""
    problems = [
        *rule_problems(schema, config.sampling),
        *capture_problems(schema, config.captures),
    ]
    if config.crash.enabled:
        problems.extend(crash_problems(schema, config.crash))
    if problems:
        raise ConfigValueError(replace(problem, path=config.source) for problem in problems)
