"""attempt_changes: what one status report changes on its attempt (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.domain.callbacks import UNSEQUENCED_BASE, attempt_changes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def attempt(status: str = "queued", last_sequence: int | None = None,
            answered_by: str | None = None) -> dict[str, object]:
    return {"status": status, "last_sequence": last_sequence, "answered_by": answered_by}


def test_a_newer_status_moves_the_attempt_and_records_its_sequence() -> None:
    assert attempt_changes(attempt(), "in-progress", 2, {"CallDuration": ""}, NOW) == {
        "last_sequence": 2, "status": "in-progress"}


def test_an_older_status_only_advances_the_sequence_seen() -> None:
    assert attempt_changes(attempt("in-progress", 2), "ringing", 3, {}, NOW) == {
        "last_sequence": 3}
    assert attempt_changes(attempt("in-progress", 5), "ringing", 1, {}, NOW) == {}


def test_a_report_without_a_sequence_leaves_last_sequence_alone() -> None:
    assert attempt_changes(attempt("ringing", 1), "in-progress", UNSEQUENCED_BASE + 3, {},
                           NOW) == {"status": "in-progress"}


def test_the_terminal_report_carries_its_fields_and_its_end_time() -> None:
    params = {"CallDuration": "42", "SipResponseCode": "200", "AnsweredBy": "human",
              "RecordingSid": "RE1", "RecordingUrl": "https://r", "RecordingDuration": "40",
              "Timestamp": "Tue, 01 Dec 2026 11:59:00 +0000"}
    assert attempt_changes(attempt("in-progress", 2), "completed", 3, params, NOW) == {
        "last_sequence": 3, "status": "completed", "sip_response_code": 200,
        "duration": 42, "answered_by": "human", "recording_sid": "RE1",
        "recording_url": "https://r", "recording_duration": 40,
        "ended_at": datetime(2026, 12, 1, 11, 59, tzinfo=UTC)}


def test_empty_or_unreadable_fields_keep_what_an_earlier_report_gave() -> None:
    changes = attempt_changes(attempt("in-progress"), "busy", 4,
                              {"CallDuration": "0", "SipResponseCode": "x", "Timestamp": "?",
                               "ErrorCode": "oops", "ErrorMessage": "m"}, NOW)
    assert changes == {"last_sequence": 4, "status": "busy", "error_code": None,
                       "error_message": "m", "ended_at": NOW}
