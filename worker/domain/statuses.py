"""Every status the dialer speaks of, defined once: jobs, attempts (Twilio's CallStatus plus
our side of a create) and campaigns."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for next_attempt_at
    QUEUED = "queued"  # place_call published
    DIALING = "dialing"  # claimed by a worker; the Twilio call exists or is being created
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
WAITING_JOB_STATUSES = (JobStatus.SCHEDULED, JobStatus.QUEUED)
# The outcome of a job canceled because its campaign reached its end_at before it was dialed.
EXPIRED = "expired"


class AttemptStatus(StrEnum):
    """Twilio's CallStatus, plus the states our side of a create can be in."""

    CREATING = "creating"  # row written, calls.create about to be sent
    UNKNOWN = "unknown"  # create sent, answer ambiguous (read timeout, 500): the reconciler decides
    REJECTED = "rejected"  # Twilio refused the create with a permanent error: no call exists
    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


# Twilio's CallStatus values, as status callbacks and fetched calls report them.
LIVE_CALL_STATUSES = frozenset({AttemptStatus.QUEUED, AttemptStatus.INITIATED,
                                AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS})
TERMINAL_CALL_STATUSES = frozenset({AttemptStatus.COMPLETED, AttemptStatus.BUSY,
                                    AttemptStatus.NO_ANSWER, AttemptStatus.FAILED,
                                    AttemptStatus.CANCELED})
CALL_STATUSES = LIVE_CALL_STATUSES | TERMINAL_CALL_STATUSES
# The outcomes a job may be retried on (its retry_on is a subset).
RETRYABLE_CALL_STATUSES = ("busy", "no-answer", "failed")
# An attempt whose create's fate is not known yet: the reconciler looks for its call.
UNRESOLVED_ATTEMPT_STATUSES = (AttemptStatus.UNKNOWN, AttemptStatus.CREATING)


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELED = "canceled"
    DONE = "done"
