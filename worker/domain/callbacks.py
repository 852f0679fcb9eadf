"""Values as Twilio's callbacks write them, read leniently: a field that cannot be read is
absent, never an error, so one odd field does not cost the rest of the callback."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from worker.domain.lifecycle import is_terminal, moves_forward
from worker.domain.recordings import ANSWERED_BY, answer_replaces


def callback_int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def callback_time(value: str | None) -> datetime | None:
    """An RFC 2822 time (Timestamp, RecordingStartTime), aware; `-0000` is read as UTC."""
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# Sequence numbers from here up are reports without one (a fetched call), one per status.
UNSEQUENCED_BASE = 1_000_000


def attempt_changes(attempt: Mapping[str, Any], call_status: str, sequence_number: int,
                    params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """What one status report changes on its attempt, by attribute name; {} when nothing.

    Only a newer status moves the attempt (reports arrive out of order); a field the report
    leaves empty keeps what an earlier report gave. `attempt` holds at least its status,
    last_sequence and answered_by.
    """
    changes: dict[str, Any] = {}
    if (sequence_number < UNSEQUENCED_BASE
            and sequence_number > (attempt["last_sequence"] if attempt["last_sequence"]
                                   is not None else -1)):
        changes["last_sequence"] = sequence_number
    if not moves_forward(attempt["status"], call_status):
        return changes
    changes["status"] = call_status
    for field, name in (("sip_response_code", "SipResponseCode"), ("duration", "CallDuration")):
        value = callback_int(params.get(name))
        if value:
            changes[field] = value
    answered_by = params.get("AnsweredBy")
    if answered_by in ANSWERED_BY and answer_replaces(attempt["answered_by"], answered_by):
        changes["answered_by"] = answered_by
    if params.get("RecordingSid"):
        changes.update(recording_sid=params["RecordingSid"],
                       recording_url=params.get("RecordingUrl"),
                       recording_duration=callback_int(params.get("RecordingDuration")))
    if params.get("ErrorCode"):
        changes.update(error_code=callback_int(params.get("ErrorCode")),
                       error_message=params.get("ErrorMessage"))
    if is_terminal(call_status):
        changes["ended_at"] = callback_time(params.get("Timestamp")) or now
    return changes
