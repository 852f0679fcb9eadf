"""Fault injection and the promise checks shared by tests/faults and bench/chaos.py."""

from __future__ import annotations

import signal
import sqlite3
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from harness.servers import PostgresServer
from harness.stack import Stack
from harness.waiting import wait_for
from worker.api import get_job
from worker.demo.processes import Process
from worker.domain.statuses import FINAL_JOB_STATUSES, TERMINAL_CALL_STATUSES
from worker.domain.twilio_errors import longest_create_s
from worker.settings import get_settings

# Seconds instead of minutes: every name and bound is checked in worker/settings.py.
FAULT_SETTINGS = {
    "DIALER_CALLS_PER_SECOND": "10",
    "DIALER_RECONCILE_INTERVAL": "1",
    "DIALER_RECONCILE_SILENCE": "2",
    "DIALER_UNKNOWN_GRACE": "3",
    "DIALER_VISIBILITY_TIMEOUT": "5",
    "DIALER_QUEUED_STALE_SECONDS": "3",
    "DIALER_MAX_PACING_WAIT": "0.3",
    "DIALER_TWILIO_TIMEOUT": "1",
}


# How long a test waits for a step: the longest the settings let that step take, times
# LOAD_SLACK, and never under MIN_WAIT_S. The suite holds with every core also busy with
# other work (a CPU hog on each core), where a process queued behind the hog loses whole
# seconds whatever the settings say.
LOAD_SLACK = 3
MIN_WAIT_S = 20.0


def deadline(by_design: float) -> float:
    return max(MIN_WAIT_S, LOAD_SLACK * by_design)


def first_call_s(jobs: int) -> float:
    """Until workers are placing a campaign's calls: at most the campaign's pace away."""
    return deadline(jobs / get_settings().calls_per_second)


def reconciler_runs_s(runs: int) -> float:
    """`runs` more reconciler runs: beat sends one every interval; each waits its turn."""
    return deadline(runs * (get_settings().reconcile_interval + 1))


def drain_s(jobs: int, max_attempts: int, retry_delay: float) -> float:
    """A campaign under a fault: an attempt its worker left `creating` is released after
    longest_create_s() and the grace; then every attempt waits its pace slot, a dispatch
    tick, a stale-queue sweep and its retry delay."""
    settings = get_settings()
    per_attempt = (jobs / settings.calls_per_second + settings.dispatch_interval
                   + settings.queued_stale_after + retry_delay)
    create_s = longest_create_s(settings.max_pacing_wait, settings.twilio_timeout)
    return deadline(create_s + settings.unknown_grace + settings.reconcile_interval
                    + max_attempts * per_attempt)


def jobs_of(ids: dict[str, str]) -> dict[str, Any]:
    return {number: get_job(job_id) for number, job_id in ids.items()}


def snapshot(ids: dict[str, str]) -> dict[str, Any]:
    return {number: (job.status, job.attempts, job.outcome,
                     [(a.ordinal, a.call_sid, a.status) for a in job.attempt_rows])
            for number, job in jobs_of(ids).items()}


def breaches(stack: Stack, ids: dict[str, str]) -> dict[str, int]:
    """How often each promise of docs/RELIABILITY.md was broken, from the database and the
    simulator's record (each job has its own number)."""
    jobs = jobs_of(ids)
    accepted = [c for c in stack.sim.creates() if c.sid]
    placed = Counter(c.to for c in accepted)
    held = {a.call_sid: number for number, job in jobs.items()
            for a in job.attempt_rows if a.call_sid}
    return {
        "jobs not final": sum(job.status not in FINAL_JOB_STATUSES for job in jobs.values()),
        "calls beyond one per attempt": sum(
            max(0, placed[number] - sum(a.call_sid is not None for a in job.attempt_rows))
            for number, job in jobs.items()),
        "calls no attempt holds": sum(c.sid not in held or held[c.sid] != c.to
                                      for c in accepted),
        "calls to other numbers": sum(number not in ids for number in placed),
        "jobs over max_attempts": sum(
            not job.attempts == len(job.attempt_rows) <= job.max_attempts
            for job in jobs.values()),
        "calls left live": sum(c["status"] not in TERMINAL_CALL_STATUSES
                               for c in stack.sim.calls()),
    }


def worker_logs(stack: Stack) -> str:
    return "\n".join(p.log() for p in stack.processes if p.name not in ("beat", "webhook"))


def kill(process: Process) -> None:
    """SIGKILL the worker's whole process group: main process and prefork children."""
    process.signal_group(signal.SIGKILL)
    process.proc.wait(timeout=10)


def supervise(stack: Stack, process: Process) -> bool:
    """What a process supervisor (systemd, a container's restart policy) does: a worker that
    exited after losing its broker is started again. True if it had to be."""
    def settled() -> str | None:
        if process.proc.poll() is not None:
            return "exited"
        return "reconnected" if process.log().count("Connected to redis") >= 2 else None

    # Celery retries a lost broker at growing intervals, at most 30 s apart.
    if wait_for(settled, timeout=deadline(30), interval=0.1,
                what=f"{process.name} to reconnect or exit") == "reconnected":
        return False
    # Seen with celery 5.7.0 (not 5.6.3): the consumer closes the lost connection after
    # collect(), kombu then restores the unacknowledged deliveries through a connection it
    # no longer has, and the worker stops with "Unrecoverable error: AttributeError".
    warnings.warn(f"{process.name} exited after losing Redis instead of reconnecting; "
                  "restarted, as a supervisor would", stacklevel=2)
    stack.start_worker(process.name + "-restarted")
    return True


@contextmanager
def database_down(database_url: str, postgres: PostgresServer | None) -> Iterator[None]:
    """PostgreSQL stopped; SQLite write-locked (WAL readers still read) by a transaction held
    open for as long as the block runs."""
    if postgres is None:
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"),
                                     isolation_level=None)) as lock:
            lock.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                lock.execute("ROLLBACK")
        return
    postgres.stop()
    try:
        yield
    finally:
        postgres.start_again()
