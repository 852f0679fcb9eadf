"""bench/ceiling.py's baseline: a real Celery worker, started as the ceiling's but on
bench/noop_app.py, drains no-op messages pushed to a real Redis as the dialer pushes
them, and the figures count every one of them."""

from __future__ import annotations

import argparse

import pytest

from bench.ceiling import NOOP_APP, baseline
from bench.common import servers
from bench.noop_app import NOOP_TASK
from worker.demo.processes import worker_argv

pytestmark = pytest.mark.integration


def test_baseline_drains_every_noop_message_with_the_ceilings_worker() -> None:
    with servers() as started:
        base = baseline(started, argparse.Namespace(concurrency=2, baseline_tasks=60))
    assert base["task"] == NOOP_TASK
    assert base["complete"] and base["succeeded"] == base["tasks"] == 60
    expected = worker_argv("noop", 2)
    expected[expected.index("-A") + 1] = NOOP_APP
    assert base["worker_argv"] == expected[1:]
    assert base["processes"] == 3  # the main process and its two prefork children
    assert base["cpu_ms_per_task"] > 0
    assert base["tasks_per_s"] > 0 and base["drain_s"] >= base["push_s"]
