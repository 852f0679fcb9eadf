"""Recording status and async AMD callbacks, in-process: stored once, forward only, shown
with the attempt, downloadable; and the create that asks Twilio for them."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from api.render import job_json
from tests.unit.standins import ACCOUNT_SID, TO, VOICE_URL, Dialed, FakeTwilio, InMemoryBroker
from worker.domain.recordings import ANSWERED_BY, answer_replaces, recording_moves_forward
from worker.engine.context import Context
from worker.engine.dialing import create_params, dial
from worker.engine.dispatch import dispatch_due
from worker.engine.notifications import event_data
from worker.engine.recordings import handle_amd, handle_recording
from worker.engine.status import UnknownCall, handle_status
from worker.producer.campaigns import create_campaign, export_rows
from worker.producer.jobs import enqueue_call, get_job
from worker.producer.recordings import recording_media
from worker.producer.reports import job_detail
from worker.settings import Settings
from worker.store.models import Attempt, Job, Recording

RE_1 = "RE" + "1" * 32
RE_2 = "RE" + "2" * 32


def recording(call_sid: str, status: str = "completed", sid: str = RE_1,
              **extra: str) -> dict[str, str]:
    """A recording status callback as Twilio documents it."""
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "RecordingSid": sid,
              "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
                              f"/Recordings/{sid}",
              "RecordingStatus": status, "RecordingChannels": "1",
              "RecordingSource": "OutboundAPI", "RecordingTrack": "both",
              "RecordingStartTime": "Tue, 01 Dec 2026 10:00:00 +0000", "ErrorCode": "0"}
    if status == "completed":
        params["RecordingDuration"] = "9"
    return {**params, **extra}


def amd(call_sid: str, answered_by: str, duration_ms: str = "3100") -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "AnsweredBy": answered_by,
            "MachineDetectionDuration": duration_ms}


def stored_recordings(ctx: Context) -> list[Recording]:
    with ctx.database.session() as session:
        return list(session.scalars(select(Recording).order_by(Recording.sid)))


def only_attempt(ctx: Context, job_id: str) -> Attempt:
    job = get_job(ctx, job_id)
    assert job is not None
    (attempt,) = job.attempt_rows
    return attempt


# --- the rules -------------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "incoming", "forward"), [
    (None, "in-progress", True), (None, "completed", True), ("in-progress", "completed", True),
    ("in-progress", "absent", True), ("in-progress", "failed", True),
    ("in-progress", "in-progress", False), ("completed", "in-progress", False),
    ("completed", "completed", False), ("completed", "absent", False),
    ("absent", "completed", False),
])
def test_a_recording_status_moves_forward_only(current: str | None, incoming: str,
                                               forward: bool) -> None:
    assert recording_moves_forward(current, incoming) is forward


def test_an_amd_result_is_set_once_and_only_refined() -> None:
    assert all(answer_replaces(None, answer) for answer in ANSWERED_BY)
    assert not any(answer_replaces(answer, answer) for answer in ANSWERED_BY)
    assert answer_replaces("machine_start", "machine_end_beep")
    assert answer_replaces("unknown", "human")
    assert not answer_replaces("machine_start", "unknown")
    assert not answer_replaces("human", "machine_start")
    assert not answer_replaces("machine_end_beep", "human")


# --- the create ------------------------------------------------------------------------------

def job_row(**call_options: Any) -> Any:
    class Row:
        to, from_, url, twiml, attempts = TO, "+14155550100", VOICE_URL, None, 1
    row = Row()
    row.call_options = call_options  # type: ignore[attr-defined]
    return row


def test_record_asks_for_recording_callbacks_at_our_webhook(engine_ctx: Context) -> None:
    params = create_params(engine_ctx.settings, job_row(record=True))
    assert params["recording_status_callback"] == "https://dialer.example.com/twilio/recording"
    assert params["recording_status_callback_method"] == "POST"
    assert params["recording_status_callback_event"] == ["in-progress", "completed", "absent"]
    assert "async_amd" not in params and "async_amd_status_callback" not in params


def test_a_job_s_own_recording_callback_and_events_are_kept(engine_ctx: Context) -> None:
    own = create_params(engine_ctx.settings, job_row(
        record=True, recording_status_callback="https://example.com/rec"))
    assert own["recording_status_callback"] == "https://example.com/rec"
    assert "recording_status_callback_method" not in own
    events = create_params(engine_ctx.settings, job_row(
        record=True, recording_status_callback_event=["completed"]))
    assert events["recording_status_callback_event"] == ["completed"]
    assert events["recording_status_callback"].endswith("/twilio/recording")
    assert "recording_status_callback" not in create_params(engine_ctx.settings,
                                                            job_row(record=False))


def test_async_amd_is_sent_lowercase_with_our_amd_callback(engine_ctx: Context) -> None:
    params = create_params(engine_ctx.settings, job_row(machine_detection="Enable",
                                                        async_amd=True))
    assert params["async_amd"] == "true"
    assert params["async_amd_status_callback"] == "https://dialer.example.com/twilio/amd"
    assert params["async_amd_status_callback_method"] == "POST"
    off = create_params(engine_ctx.settings, job_row(machine_detection="Enable",
                                                     async_amd=False))
    assert off["async_amd"] == "false"
    assert "async_amd_status_callback" not in off
    own = create_params(engine_ctx.settings, job_row(
        async_amd=True, async_amd_status_callback="https://example.com/amd"))
    assert own["async_amd_status_callback"] == "https://example.com/amd"


class CapturingHttp(HttpClient):
    """Twilio's HTTP layer in memory: what the official client would put on the wire."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False)
        self.data: dict[str, Any] = {}

    def request(self, method: str, url: str, params: Any = None, data: Any = None,
                headers: Any = None, auth: Any = None, timeout: Any = None,
                allow_redirects: bool = False) -> Response:
        self.data = dict(data or {})
        return Response(201, json.dumps({"sid": "CA" + uuid.uuid4().hex, "status": "queued"}))


def test_the_twilio_client_sends_the_documented_values(engine_ctx: Context) -> None:
    http = CapturingHttp()
    client = Client(ACCOUNT_SID, "token", http_client=http,
                    environment={"TWILIO_ACCOUNT_SID": ACCOUNT_SID})
    client.calls.create(**create_params(engine_ctx.settings, job_row(
        record=True, machine_detection="Enable", async_amd=True)))
    assert http.data["Record"] == "true"
    assert http.data["AsyncAmd"] == "true"
    assert http.data["AsyncAmdStatusCallback"] == "https://dialer.example.com/twilio/amd"
    assert http.data["RecordingStatusCallback"] == (
        "https://dialer.example.com/twilio/recording")
    assert http.data["RecordingStatusCallbackEvent"] == ["in-progress", "completed", "absent"]


# --- recording callbacks ---------------------------------------------------------------------

def test_a_recording_is_stored_once_and_shown_on_its_attempt(engine_ctx: Context,
                                                             dialed: Dialed) -> None:
    params = recording(dialed.call_sid)
    assert handle_recording(engine_ctx, params) == "stored"
    assert handle_recording(engine_ctx, params) == "duplicate"

    (row,) = stored_recordings(engine_ctx)
    assert (row.sid, row.call_sid, row.status, row.duration, row.channels, row.source,
            row.track, row.error_code) == (RE_1, dialed.call_sid, "completed", 9, 1,
                                           "OutboundAPI", "both", None)
    assert row.url == params["RecordingUrl"]
    assert row.started_at is not None and row.started_at.utcoffset() is not None
    attempt = only_attempt(engine_ctx, dialed.job_id)
    assert (attempt.recording_sid, attempt.recording_url, attempt.recording_duration) == (
        RE_1, params["RecordingUrl"], 9)


def test_an_older_recording_callback_changes_nothing(engine_ctx: Context,
                                                     dialed: Dialed) -> None:
    assert handle_recording(engine_ctx, recording(dialed.call_sid, "in-progress")) == "stored"
    # Only a completed recording is the attempt's: an in-progress one has no media yet.
    assert only_attempt(engine_ctx, dialed.job_id).recording_sid is None
    assert handle_recording(engine_ctx, recording(dialed.call_sid, "completed")) == "stored"
    late = recording(dialed.call_sid, "in-progress", RecordingUrl="https://elsewhere.example")
    assert handle_recording(engine_ctx, late) == "duplicate"
    assert handle_recording(engine_ctx, recording(dialed.call_sid, "absent")) == "duplicate"

    (row,) = stored_recordings(engine_ctx)
    assert (row.status, row.duration) == ("completed", 9)
    assert row.url != "https://elsewhere.example"


def test_a_call_keeps_each_of_its_recordings(engine_ctx: Context, dialed: Dialed) -> None:
    handle_recording(engine_ctx, recording(dialed.call_sid, sid=RE_1))
    handle_recording(engine_ctx, recording(
        dialed.call_sid, sid=RE_2, RecordingStartTime="Tue, 01 Dec 2026 10:05:00 +0000"))

    detail = job_detail(engine_ctx, dialed.job_id)
    assert detail is not None
    (attempt,) = detail["attempt_list"]
    assert [r["sid"] for r in attempt["recordings"]] == [RE_1, RE_2]
    assert attempt["recording_sid"] == RE_2  # the latest completed one


def test_a_recording_before_its_call_sid_is_kept_and_joins_the_attempt_later(
        engine_ctx: Context, dialed: Dialed) -> None:
    early = "CA" + "e" * 32
    with pytest.raises(UnknownCall):
        handle_recording(engine_ctx, recording(early))
    assert [r.call_sid for r in stored_recordings(engine_ctx)] == [early]

    # The create's answer arrives: the attempt holds that CallSid from now on.
    with engine_ctx.database.session() as session:
        session.execute(update(Attempt).where(Attempt.call_sid == dialed.call_sid)
                        .values(call_sid=early))
    assert handle_recording(engine_ctx, recording(early)) == "duplicate"  # the task's retry
    attempt = only_attempt(engine_ctx, dialed.job_id)
    assert attempt.recording_sid == RE_1
    assert [r.sid for r in attempt.recordings] == [RE_1]


def test_a_recording_callback_without_what_it_needs_is_ignored(engine_ctx: Context,
                                                               dialed: Dialed) -> None:
    assert handle_recording(engine_ctx, recording(dialed.call_sid, "paused")) == "invalid"
    assert handle_recording(engine_ctx, recording(dialed.call_sid, RecordingSid="")) == "invalid"
    assert stored_recordings(engine_ctx) == []


def test_unreadable_recording_fields_are_left_out(engine_ctx: Context, dialed: Dialed) -> None:
    handle_recording(engine_ctx, recording(dialed.call_sid, RecordingDuration="n/a",
                                           RecordingStartTime="yesterday", ErrorCode="x"))
    (row,) = stored_recordings(engine_ctx)
    assert (row.status, row.duration, row.started_at, row.error_code) == (
        "completed", None, None, None)


# --- AMD callbacks ---------------------------------------------------------------------------

def test_an_amd_result_is_stored_on_the_attempt_once(engine_ctx: Context,
                                                     dialed: Dialed) -> None:
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "machine_end_beep")) == "stored"
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "machine_end_beep")) == "duplicate"
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "human", "900")) == "duplicate"
    attempt = only_attempt(engine_ctx, dialed.job_id)
    assert (attempt.answered_by, attempt.machine_detection_duration) == (
        "machine_end_beep", 3100)


def test_a_provisional_amd_result_is_refined(engine_ctx: Context, dialed: Dialed) -> None:
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "machine_start", "1200")) == "stored"
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "machine_end_silence", "5400")) == "stored"
    attempt = only_attempt(engine_ctx, dialed.job_id)
    assert (attempt.answered_by, attempt.machine_detection_duration) == (
        "machine_end_silence", 5400)


def test_a_status_callback_does_not_undo_the_amd_result(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_amd(engine_ctx, amd(dialed.call_sid, "machine_end_beep"))
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "completed",
                                            AnsweredBy="machine_start"))
    assert only_attempt(engine_ctx, dialed.job_id).answered_by == "machine_end_beep"


def test_amd_adds_its_duration_to_the_answer_a_status_callback_brought(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "in-progress", AnsweredBy="human"))
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "human", "2500")) == "stored"
    attempt = only_attempt(engine_ctx, dialed.job_id)
    assert (attempt.answered_by, attempt.machine_detection_duration) == ("human", 2500)


def test_amd_for_an_unknown_call_stores_nothing(engine_ctx: Context, dialed: Dialed) -> None:
    with pytest.raises(UnknownCall):
        handle_amd(engine_ctx, amd("CA" + "f" * 32, "human"))
    assert handle_amd(engine_ctx, amd(dialed.call_sid, "robot")) == "invalid"
    assert only_attempt(engine_ctx, dialed.job_id).answered_by is None


# --- shown to producers ----------------------------------------------------------------------

def test_the_api_and_notifications_show_amd_and_recordings(engine_ctx: Context,
                                                           dialed: Dialed) -> None:
    handle_amd(engine_ctx, amd(dialed.call_sid, "human", "2500"))
    handle_recording(engine_ctx, recording(dialed.call_sid))
    job = get_job(engine_ctx, dialed.job_id)
    assert job is not None
    (api_attempt,) = job_json(job)["attempts"]
    (notified,) = event_data(job)["attempts"]
    for shown in (api_attempt, notified):
        assert (shown["answered_by"], shown["machine_detection_duration_ms"]) == ("human", 2500)
        (rec,) = shown["recordings"]
        assert (rec["sid"], rec["status"], rec["duration"]) == (RE_1, "completed", 9)
        assert rec["url"].endswith(RE_1)
    assert "created_at" in api_attempt and "started_at" in notified


# --- download --------------------------------------------------------------------------------

def test_download_fetches_the_last_attempt_s_completed_recording(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_recording(engine_ctx, recording(dialed.call_sid))
    twilio.media[RE_1] = b"RIFF....WAVE"
    media = recording_media(engine_ctx, dialed.job_id)
    assert (media.recording_sid, media.attempt, media.content) == (RE_1, 1, b"RIFF....WAVE")
    assert recording_media(engine_ctx, dialed.job_id, attempt=1) == media


@pytest.mark.parametrize(("prepare", "attempt", "message"), [
    ("nothing", None, "has no recording"),
    ("in-progress", None, "is in-progress, not completed"),
    ("completed", 2, "attempt: job"),
    ("completed", 0, "attempt: a whole number"),
])
def test_download_says_what_is_missing(engine_ctx: Context, dialed: Dialed, prepare: str,
                                       attempt: int | None, message: str) -> None:
    if prepare != "nothing":
        handle_recording(engine_ctx, recording(dialed.call_sid, prepare))
    with pytest.raises(ValueError, match=message):
        recording_media(engine_ctx, dialed.job_id, attempt=attempt)


def test_download_of_no_job_or_no_attempt(engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match="job_id: no job"):
        recording_media(engine_ctx, "nope")
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    with pytest.raises(ValueError, match="has made no attempt"):
        recording_media(engine_ctx, job_id)


def test_download_passes_twilio_s_refusal_on(engine_ctx: Context, dialed: Dialed) -> None:
    handle_recording(engine_ctx, recording(dialed.call_sid))
    with pytest.raises(TwilioRestException) as refused:
        recording_media(engine_ctx, dialed.job_id)
    assert refused.value.code == 20404


def test_download_picks_the_asked_attempt(engine_ctx: Context, broker: InMemoryBroker,
                                          twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, retry_delays=[1])
    dial(engine_ctx, broker.take())
    (first,) = twilio.calls
    handle_recording(engine_ctx, recording(first, sid=RE_1))
    handle_status(engine_ctx, twilio.report(first, "busy"))
    with engine_ctx.database.session() as session:  # due now: dial the second attempt
        session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
    broker.publish_place_calls([job_id])
    dial(engine_ctx, broker.take())
    second = next(sid for sid in twilio.calls if sid != first)
    handle_recording(engine_ctx, recording(second, sid=RE_2))
    twilio.media.update({RE_1: b"first", RE_2: b"second"})

    assert recording_media(engine_ctx, job_id).content == b"second"
    assert recording_media(engine_ctx, job_id, attempt=1).content == b"first"


def test_settings_name_the_callback_urls() -> None:
    settings = Settings.from_env({"DIALER_PUBLIC_URL": "https://d.example/base"})
    assert settings.recording_callback_url == "https://d.example/base/twilio/recording"
    assert settings.amd_callback_url == "https://d.example/base/twilio/amd"


def test_the_campaign_export_has_the_last_attempt_s_answer_and_recording(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    result = create_campaign(engine_ctx, "recorded", contacts=[{"to": TO}], url=VOICE_URL,
                             call_options={"record": True}, window="00:00-23:59",
                             days="mon,tue,wed,thu,fri,sat,sun")
    assert result.campaign_id
    dispatch_due(engine_ctx)
    dial(engine_ctx, broker.take())
    (call_sid,) = twilio.calls
    handle_amd(engine_ctx, amd(call_sid, "human"))
    handle_recording(engine_ctx, recording(call_sid))
    (row,) = export_rows(engine_ctx, result.campaign_id)
    assert (row["answered_by"], row["recording_duration"]) == ("human", 9)
    assert row["recording_url"].endswith(RE_1)
