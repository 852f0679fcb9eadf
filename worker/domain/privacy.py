"""What personal data the dialer keeps once a job's retention has passed or its number is
erased: the counts and outcomes reports need, never the number, the contact's details or
where the call went."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

# Stands for a removed number or value: not a number, so nothing can dial or match it.
REDACTED = "[redacted]"
# What a status callback keeps: which call, its status, in what order and when, and how it
# ended. To, From, Called, Caller and the places Twilio derives from them (ToCity, ...) go.
KEPT_CALLBACK_FIELDS = frozenset({
    "CallSid", "AccountSid", "ApiVersion", "Direction", "CallStatus", "SequenceNumber",
    "Timestamp", "CallbackSource", "CallDuration", "AnsweredBy", "SipResponseCode",
    "ErrorCode",
})


def scrub(value: Any, numbers: Collection[str]) -> Any:
    """`value` (text, or JSON made of dicts and lists) with every occurrence of each number
    replaced by REDACTED."""
    if isinstance(value, str):
        for number in numbers:
            value = value.replace(number, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {key: scrub(item, numbers) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, numbers) for item in value]
    return value


def mentions(value: Any, numbers: Collection[str]) -> bool:
    return scrub(value, numbers) != value


def redacted_callback(payload: Mapping[str, Any], numbers: Collection[str]) -> dict[str, Any]:
    """A stored callback with only KEPT_CALLBACK_FIELDS, none of them holding a number."""
    return {key: scrub(value, numbers) for key, value in payload.items()
            if key in KEPT_CALLBACK_FIELDS}


def redacted_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The contact's columns kept (an export keeps its shape), every value removed."""
    return dict.fromkeys(metadata, REDACTED)


def redacted_event_data(payload: Mapping[str, Any], numbers: Collection[str]) -> dict[str, Any]:
    """A result notification (its `data` a job, as notify_url receives it) with the job's
    number and contact details removed."""
    data = dict(payload.get("data") or {})
    if "to" in data:
        data["to"] = REDACTED
    if isinstance(data.get("metadata"), Mapping):
        data["metadata"] = redacted_metadata(data["metadata"])
    return scrub({**payload, "data": data}, numbers)
