"""Values as Twilio's callbacks write them, read leniently: a field that cannot be read is
absent, never an error, so one odd field does not cost the rest of the callback."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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
