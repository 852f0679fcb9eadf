"""Fixtures live in tests/support/ as plugins, so each can be loaded on its own."""

pytest_plugins = [
    "tests.support.server_fixtures",
    "tests.support.simulator_fixtures",
    "tests.support.stack_fixtures",
]
