"""Waiting on a condition with a deadline, never a bare sleep that hopes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from worker.demo.processes import free_port, port_open

__all__ = ["free_port", "port_open", "wait_for"]

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition!r}")
        time.sleep(interval)
        last = condition()
    return last
