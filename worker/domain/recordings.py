"""Recordings and answering machine detection: Twilio's vocabulary and the rules that make
their callbacks safe to receive twice, late or out of order. Pure functions, no I/O."""

from __future__ import annotations

from enum import StrEnum


class RecordingStatus(StrEnum):
    """RecordingStatus as recording status callbacks report it."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"  # nothing audible was recorded: no media
    FAILED = "failed"


RECORDING_STATUSES = frozenset(RecordingStatus)
# A recording's status moves forward only; the final ones never change again.
_RECORDING_RANK = {RecordingStatus.IN_PROGRESS: 0, RecordingStatus.COMPLETED: 1,
                   RecordingStatus.ABSENT: 1, RecordingStatus.FAILED: 1}

# AnsweredBy as AMD reports it, synchronously (status callbacks) or asynchronously.
ANSWERED_BY = frozenset({"human", "machine_start", "machine_end_beep", "machine_end_silence",
                         "machine_end_other", "fax", "unknown"})
# Results a later AMD report may refine: `machine_start` (Enable) comes before the end of the
# message; `unknown` is no result at all.
_PROVISIONAL_ANSWERS = frozenset({"machine_start", "unknown"})


def recording_moves_forward(current: str | None, incoming: str) -> bool:
    """Whether a recording status callback may replace the stored status (None: none yet)."""
    if current is None:
        return True
    return _RECORDING_RANK[RecordingStatus(incoming)] > _RECORDING_RANK[RecordingStatus(current)]


def answer_replaces(current: str | None, incoming: str) -> bool:
    """Whether an AMD result may replace the attempt's answered_by: a first result, or one
    that refines a provisional one. The same result again changes nothing."""
    if incoming == current:
        return False
    return current is None or (current in _PROVISIONAL_ANSWERS and incoming != "unknown")
