"""Test-suite configuration: each service concern is a fixture plugin of its own."""

import os

from hypothesis import settings

pytest_plugins = [
    "tests.fixtures.fix_dirs",
    "tests.fixtures.fix_mqtt",
    "tests.fixtures.fix_db",
]

# CI replays the same examples every run; developers explore new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
