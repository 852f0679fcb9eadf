"""A job's recordings: find the one an operator asks for and fetch its media from Twilio."""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.recordings import RecordingStatus
from worker.engine.context import Context
from worker.store.models import WITH_ATTEMPTS, Attempt, Job


@dataclass(frozen=True)
class RecordingMedia:
    recording_sid: str
    attempt: int  # the attempt's number in its job
    content: bytes


def _attempt(job: Job, number: int | None) -> Attempt:
    if not job.attempt_rows:
        raise ValueError(f"job_id: job {job.id} has made no attempt")
    if number is None:
        return job.attempt_rows[-1]
    for attempt in job.attempt_rows:
        if attempt.ordinal == number:
            return attempt
    raise ValueError(f"attempt: job {job.id} has no attempt {number} "
                     f"(it has {len(job.attempt_rows)})")


def _recording_sid(job: Job, attempt: Attempt) -> str:
    """The attempt's latest completed recording; a status callback's RecordingSid when no
    recording callback came (the job named a recording_status_callback of its own)."""
    recordings = attempt.recordings
    completed = [r for r in recordings if r.status == RecordingStatus.COMPLETED]
    if completed:
        return completed[-1].sid
    if recordings:
        last = recordings[-1]
        raise ValueError(f"attempt {attempt.ordinal} of job {job.id}: recording {last.sid} is "
                         f"{last.status}, not completed")
    if attempt.recording_sid:
        return attempt.recording_sid
    raise ValueError(f"attempt {attempt.ordinal} of job {job.id} has no recording")


def recording_media(ctx: Context, job_id: str, attempt: int | None = None) -> RecordingMedia:
    """The media of the recording of the job's last attempt (or attempt number `attempt`).

    ValueError naming what is missing: the job, the attempt, a completed recording; a
    TwilioRestException when Twilio refuses the download.
    """
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)
                                or attempt < 1):
        raise ValueError(f"attempt: a whole number from 1, got {attempt!r}")
    with ctx.database.session() as session:
        job = session.get(Job, job_id, options=[WITH_ATTEMPTS])
        if job is None:
            raise ValueError(f"job_id: no job {job_id!r}")
        chosen = _attempt(job, attempt)
        sid = _recording_sid(job, chosen)
        number = chosen.ordinal
    return RecordingMedia(sid, number, ctx.twilio.download_recording(sid))
