"""The whole dialer as real processes: Celery worker(s), beat and the webhook as
subprocesses, the simulator in-process (so tests read its records), real Redis,
and SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness.waiting import free_port
from worker.api import get_job
from worker.demo.processes import (
    Process,
    api_argv,
    beat_argv,
    stop_all,
    wait_port,
    webhook_argv,
    worker_argv,
)
from worker.domain.names import QUEUES
from worker.store.models import Job

if TYPE_CHECKING:
    from simulator import Simulator

SIM_ACCOUNT_SID = "AC" + "a1" * 16
SIM_AUTH_TOKEN = "sim-test-token"
CALLER_ID = "+14155550100"
VOICE_URL = "https://example.com/voice.xml"

# Test-speed settings: ticks of a fraction of a second instead of production's seconds.
FAST_SETTINGS = {
    "DIALER_DISPATCH_INTERVAL": "0.2",
    "DIALER_QUEUED_STALE_SECONDS": "30",
    "DIALER_TWILIO_TIMEOUT": "5",
    "DIALER_DEFAULT_FROM": CALLER_ID,
}


def clean_environ() -> dict[str, str]:
    """The parent's environment without any dialer or Twilio setting (and no Twilio edge)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DIALER_", "TWILIO_", "CELERY_"))}


class Stack:
    def __init__(self, workdir: Path, redis_url: str, database_url: str, sim: Simulator,
                 **settings: str) -> None:
        self.workdir = workdir
        self.sim = sim
        self.webhook_port = free_port()
        self.api_port = free_port()
        self.env = {
            **clean_environ(),
            "PYTHONUNBUFFERED": "1",
            "TWILIO_ACCOUNT_SID": SIM_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": SIM_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": sim.url,
            "DIALER_PUBLIC_URL": f"http://127.0.0.1:{self.webhook_port}",
            "DIALER_DATABASE_URL": database_url,
            "DIALER_REDIS_URL": redis_url,
            **FAST_SETTINGS,
            **settings,
        }
        self.processes: list[Process] = []

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env, self.workdir)
        self.processes.append(process)
        return process

    def start_worker(self, name: str = "w1", concurrency: int = 2,
                     queues: Iterable[str] = QUEUES) -> Process:
        process = self._spawn(name, worker_argv(name, concurrency, queues))
        process.wait_for_log(" ready.")
        return process

    def start_beat(self) -> Process:
        process = self._spawn("beat", beat_argv(self.workdir / "beat-schedule"))
        process.wait_for_log("beat: Starting")
        return process

    def _spawn_webhook(self, workers: int = 1) -> Process:
        # One gunicorn worker unless asked: a test's callbacks are few, and a process costs
        # CPU to start.
        return self._spawn("webhook", webhook_argv(self.webhook_port, workers))

    def start_webhook(self, workers: int = 1) -> Process:
        process = self._spawn_webhook(workers)
        wait_port(process, self.webhook_port)
        return process

    def start_api(self, workers: int = 1) -> Process:
        """The producer API (`gunicorn "api:create_app()"`), listening on self.api_port."""
        process = self._spawn("api", api_argv(self.api_port, workers))
        wait_port(process, self.api_port)
        return process

    def start_all(self, workers: int = 1, concurrency: int = 2) -> Stack:
        """Every process started side by side, then waited for: none needs another to start."""
        webhook = self._spawn_webhook()
        started = [self._spawn(f"w{n + 1}", worker_argv(f"w{n + 1}", concurrency))
                   for n in range(workers)]
        beat = self._spawn("beat", beat_argv(self.workdir / "beat-schedule"))
        wait_port(webhook, self.webhook_port)
        for worker in started:
            worker.wait_for_log(" ready.")
        beat.wait_for_log("beat: Starting")
        return self

    def stop(self) -> None:
        stop_all(self.processes)

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in self.processes)


def start_api(workdir: Path, env: Mapping[str, str], workers: int = 1) -> tuple[Process, str]:
    """The producer API alone, with only these settings, for tests that need no workers:
    the process and its base URL."""
    port = free_port()
    process = Process("api", api_argv(port, workers),
                      {**clean_environ(), "PYTHONUNBUFFERED": "1", **env}, workdir)
    try:
        wait_port(process, port)
    except BaseException:
        stop_all([process])
        raise
    return process, f"http://127.0.0.1:{port}"


def dialer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dialer ARGS` as a user runs it, with only these settings."""
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], capture_output=True,
                          text=True, env={**clean_environ(), **env}, timeout=60)


def job_in(job_id: str, statuses: Iterable[str]) -> Job | None:
    """The job, if it is in one of `statuses` (for wait_for)."""
    job = get_job(job_id)
    return job if job is not None and job.status in set(statuses) else None
