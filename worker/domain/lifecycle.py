"""The call state machine and the retry policy: pure functions, no I/O.

Callbacks arrive out of order and more than once. An attempt's status only
moves forward in this order, and the job acts on a terminal status once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.domain.statuses import TERMINAL_CALL_STATUSES, AttemptStatus, JobStatus

_RANK = {
    AttemptStatus.CREATING: 0,
    AttemptStatus.UNKNOWN: 0,
    AttemptStatus.QUEUED: 1,
    AttemptStatus.INITIATED: 2,
    AttemptStatus.RINGING: 3,
    AttemptStatus.IN_PROGRESS: 4,
    **dict.fromkeys(TERMINAL_CALL_STATUSES, 5),
    AttemptStatus.REJECTED: 5,
}

RETRY_JITTER = 0.1  # up to +10%, so retries of a campaign do not land on one second
# Bounds on a retry policy: generous for any campaign, and far enough from the limits of
# datetime and of a database integer that no retry time or counter can overflow.
MAX_ATTEMPTS = 100
MAX_RETRY_DELAY_S = 30 * 24 * 3600


def status_rank(status: str) -> int:
    return _RANK[AttemptStatus(status)]


def moves_forward(current: str, incoming: str) -> bool:
    """Whether a status report may replace the attempt's current status."""
    return status_rank(incoming) > status_rank(current)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_CALL_STATUSES


def retry_delay(delays: list[int], attempts_made: int) -> int:
    """Seconds before attempt `attempts_made + 1`: delays[0] before the 2nd, the last repeats."""
    return delays[min(attempts_made, len(delays)) - 1]


@dataclass(frozen=True)
class JobPolicy:
    max_attempts: int
    retry_on: list[str]
    retry_delays: list[int]


@dataclass(frozen=True)
class JobDecision:
    status: JobStatus
    outcome: str
    next_attempt_at: datetime | None = None


def decide(policy: JobPolicy, attempts_made: int, call_status: str, now: datetime,
           rng: random.Random | None = None) -> JobDecision:
    """What a job becomes when its current attempt ends with `call_status`."""
    if call_status == AttemptStatus.COMPLETED:
        return JobDecision(JobStatus.COMPLETED, call_status)
    if call_status == AttemptStatus.CANCELED:
        return JobDecision(JobStatus.CANCELED, call_status)
    if call_status in policy.retry_on and attempts_made < policy.max_attempts:
        delay = retry_delay(policy.retry_delays, attempts_made)
        jitter = delay * RETRY_JITTER * (rng or random).random()
        return JobDecision(JobStatus.SCHEDULED, call_status,
                           now + timedelta(seconds=delay + jitter))
    return JobDecision(JobStatus.FAILED, call_status)
