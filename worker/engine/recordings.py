"""handle_recording's and handle_amd's work: each callback stored once, moving forward only.

A recording is its own row, keyed by RecordingSid: a call may have several, and a
recording whose callback comes before the attempt holds its CallSid is kept and joins the
attempt by CallSid. An AMD result belongs to the attempt itself; one for a CallSid no
attempt holds is dropped once the task stops retrying (the call's status still decides it).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from worker.domain.callbacks import callback_int, callback_time
from worker.domain.clock import utcnow
from worker.domain.recordings import (
    ANSWERED_BY,
    RECORDING_STATUSES,
    RecordingStatus,
    answer_replaces,
    recording_moves_forward,
)
from worker.engine.context import Context
from worker.engine.status import UnknownCall
from worker.store.database import insert_unless_stored
from worker.store.models import Attempt, Recording

log = logging.getLogger(__name__)


def _recording_values(params: dict[str, str]) -> dict[str, Any]:
    """What a recording status callback says of its recording, the fields it leaves out
    left out."""
    values = {"status": params["RecordingStatus"], "url": params.get("RecordingUrl") or None,
              "duration": callback_int(params.get("RecordingDuration")),
              "channels": callback_int(params.get("RecordingChannels")),
              "source": (params.get("RecordingSource") or "")[:32] or None,
              "track": (params.get("RecordingTrack") or "")[:16] or None,
              "started_at": callback_time(params.get("RecordingStartTime")),
              # Twilio sends ErrorCode=0 when there is none.
              "error_code": callback_int(params.get("ErrorCode")) or None}
    return {name: value for name, value in values.items() if value is not None}


def handle_recording(ctx: Context, params: dict[str, str]) -> str:
    """Store a recording status callback once; returns 'stored', 'duplicate' or 'invalid', or
    raises UnknownCall when no attempt holds the CallSid yet (the recording is kept)."""
    call_sid = params.get("CallSid", "")
    sid = params.get("RecordingSid", "")
    status = params.get("RecordingStatus", "")
    if not call_sid or not sid or status not in RECORDING_STATUSES:
        log.warning("ignoring a recording report with CallSid=%r RecordingSid=%r "
                    "RecordingStatus=%r", call_sid[:40], sid[:40], status[:20])
        return "invalid"
    values = _recording_values(params)
    with ctx.database.session() as session:
        attempt = session.scalar(
            select(Attempt).where(Attempt.call_sid == call_sid).with_for_update())
        now = utcnow()
        inserted = session.execute(
            insert_unless_stored(session.get_bind().dialect.name, Recording, ("sid",))
            .values(sid=sid, call_sid=call_sid, created_at=now, updated_at=now, **values)
            .returning(Recording.sid)).scalar()
        recording = session.scalar(select(Recording).where(Recording.sid == sid)
                                   .with_for_update())
        assert recording is not None
        result = "stored" if inserted is not None else "duplicate"
        if inserted is None and recording_moves_forward(recording.status, status):
            for name, value in values.items():
                setattr(recording, name, value)
            result = "stored"
        if attempt is not None:
            _show_on_attempt(attempt, recording)
        stored_status = recording.status
    if attempt is None:
        raise UnknownCall(call_sid)
    log.info("recording %s of %s: %s (%s)", sid, call_sid, stored_status, result)
    return result


def _show_on_attempt(attempt: Attempt, recording: Recording) -> None:
    """The attempt's recording_* columns show the call's latest completed recording."""
    if recording.status == RecordingStatus.COMPLETED:
        attempt.recording_sid = recording.sid
        attempt.recording_url = recording.url
        attempt.recording_duration = recording.duration


def handle_amd(ctx: Context, params: dict[str, str]) -> str:
    """Store an asynchronous AMD result on its attempt; returns 'stored', 'duplicate' or
    'invalid', or raises UnknownCall when no attempt holds the CallSid yet."""
    call_sid = params.get("CallSid", "")
    answered_by = params.get("AnsweredBy", "")
    if not call_sid or answered_by not in ANSWERED_BY:
        log.warning("ignoring an AMD report with CallSid=%r AnsweredBy=%r", call_sid[:40],
                    answered_by[:40])
        return "invalid"
    duration = callback_int(params.get("MachineDetectionDuration"))
    with ctx.database.session() as session:
        attempt = session.scalar(
            select(Attempt).where(Attempt.call_sid == call_sid).with_for_update())
        if attempt is None:
            raise UnknownCall(call_sid)
        result = "stored" if _apply_amd(attempt, answered_by, duration) else "duplicate"
    log.info("AMD of %s: %s after %s ms (%s)", call_sid, answered_by, duration, result)
    return result


def _apply_amd(attempt: Attempt, answered_by: str, duration: int | None) -> bool:
    """Whether the attempt changed. A status callback may have brought the same answer
    first (without the time it took): the AMD callback adds its duration."""
    if answer_replaces(attempt.answered_by, answered_by):
        attempt.answered_by = answered_by
        attempt.machine_detection_duration = duration
        return True
    if (answered_by == attempt.answered_by and attempt.machine_detection_duration is None
            and duration is not None):
        attempt.machine_detection_duration = duration
        return True
    return False
