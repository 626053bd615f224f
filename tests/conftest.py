"""Test-suite configuration: each service concern is a fixture plugin of its own."""

pytest_plugins = [
    "tests.fixtures.fix_dirs",
    "tests.fixtures.fix_mqtt",
    "tests.fixtures.fix_db",
]
