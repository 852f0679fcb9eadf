"""The whole dialer as real processes: Celery worker(s), beat and the webhook as
subprocesses, the simulator in-process (so tests read its records), real Redis,
and SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.simulator_fixtures import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN
from tests.support.waiting import free_port, port_open, wait_for
from worker.models import Job

if TYPE_CHECKING:
    from simulator import Simulator

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


class Process:
    """A subprocess whose output goes to a log file the test can wait on and show."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return text in self.log()

        wait_for(seen, timeout=timeout, what=f"{self.name} to log {text!r}")

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


class Stack:
    def __init__(self, workdir: Path, redis_url: str, database_url: str, sim: Simulator,
                 **settings: str) -> None:
        self.workdir = workdir
        self.sim = sim
        self.webhook_port = free_port()
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
                     queues: Iterable[str] = ("dial", "events", "default")) -> Process:
        process = self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", ",".join(queues),
            "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "INFO",
        ])
        process.wait_for_log(" ready.")
        return process

    def start_beat(self) -> Process:
        process = self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "INFO",
            "-s", str(self.workdir / "beat-schedule"), "--pidfile", "",
        ])
        process.wait_for_log("beat: Starting")
        return process

    def start_webhook(self) -> Process:
        process = self._spawn("webhook", [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.webhook_port}",
            "--workers", "2", "--threads", "4", "webhook:create_app()",
        ])
        wait_for(lambda: port_open(self.webhook_port), timeout=20, what="webhook to listen")
        return process

    def start_all(self, workers: int = 1, concurrency: int = 2) -> Stack:
        self.start_webhook()
        for n in range(workers):
            self.start_worker(f"w{n + 1}", concurrency)
        self.start_beat()
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in self.processes)


def job_in(job_id: str, statuses: Iterable[str]) -> Job | None:
    """The job, if it is in one of `statuses` (for wait_for)."""
    from worker.producer import get_job

    job = get_job(job_id)
    return job if job is not None and job.status in set(statuses) else None
