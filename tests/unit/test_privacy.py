"""What a redacted callback, contact and notification keep: pure rules."""

from __future__ import annotations

import pytest

from worker.domain.privacy import (
    REDACTED,
    mentions,
    redacted_callback,
    redacted_event_data,
    redacted_metadata,
    scrub,
)
from worker.domain.validation import normalize_to

NUMBER = "+14155550123"


def test_a_redacted_callback_keeps_the_call_and_its_course_only():
    payload = {"CallSid": "CA1", "AccountSid": "AC1", "CallStatus": "completed",
               "SequenceNumber": "3", "Timestamp": "Tue, 01 Dec 2026 12:00:00 +0000",
               "CallDuration": "42", "AnsweredBy": "human", "SipResponseCode": "200",
               "To": NUMBER, "From": "+14155550100", "Called": NUMBER, "Caller": "+1415",
               "ToCity": "SAN FRANCISCO", "ToZip": "94105", "CalledState": "CA",
               "ErrorMessage": f"{NUMBER} is unreachable", "ForwardedFrom": NUMBER}
    assert redacted_callback(payload, [NUMBER]) == {
        "CallSid": "CA1", "AccountSid": "AC1", "CallStatus": "completed",
        "SequenceNumber": "3", "Timestamp": "Tue, 01 Dec 2026 12:00:00 +0000",
        "CallDuration": "42", "AnsweredBy": "human", "SipResponseCode": "200"}


def test_scrub_replaces_the_numbers_in_text_and_json():
    value = {"a": [f"call {NUMBER}", 3, None, {"b": NUMBER}], "c": "+14155550199"}
    assert scrub(value, [NUMBER]) == {"a": [f"call {REDACTED}", 3, None, {"b": REDACTED}],
                                      "c": "+14155550199"}
    assert mentions(value, [NUMBER]) and not mentions(value, ["+14155550100"])
    assert scrub(None, [NUMBER]) is None


def test_contact_columns_stay_and_their_values_go():
    assert redacted_metadata({"name": "Ann", "state": "CA"}) == {"name": REDACTED,
                                                                  "state": REDACTED}


def test_a_notification_loses_the_number_and_the_contact():
    payload = {"id": "msg_1", "type": "call.finished", "data": {
        "job_id": "j1", "to": NUMBER, "status": "completed", "metadata": {"name": "Ann"},
        "attempts": [{"error_message": f"{NUMBER} busy"}]}}
    assert redacted_event_data(payload, [NUMBER]) == {
        "id": "msg_1", "type": "call.finished", "data": {
            "job_id": "j1", "to": REDACTED, "status": "completed",
            "metadata": {"name": REDACTED}, "attempts": [{"error_message": f"{REDACTED} busy"}]}}


def test_redacted_is_no_number():
    with pytest.raises(ValueError, match=r"^to:"):
        normalize_to(REDACTED)
