"""Fixtures live in tests/support/ as plugins, so each can be loaded on its own."""

from __future__ import annotations

import signal

import pytest

pytest_plugins = [
    "tests.support.server_fixtures",
    "tests.support.simulator_fixtures",
    "tests.support.stack_fixtures",
    "tests.support.api_fixtures",
]


def pytest_configure(config: pytest.Config) -> None:
    # Some tests press Ctrl-C on a process they start, as a user at a terminal would. A run
    # started in the background by a non-interactive shell (`make test &`, many CI scripts)
    # inherits SIGINT ignored (POSIX), and so would every process it starts: give the run
    # the disposition a terminal gives it. pytest-xdist's workers run this too.
    signal.signal(signal.SIGINT, signal.default_int_handler)


# Tests that run whole stacks of processes for up to a minute go first: run side by side
# (`pytest -n`), the suite then ends on short tests instead of waiting for one long one.
LONG_FIRST = ("tests/faults/", "tests/integration/test_demo.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(LONG_FIRST):
            return 0
        return 1 if "make_stack" in getattr(item, "fixturenames", ()) else 2

    items.sort(key=rank)
