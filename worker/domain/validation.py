"""Checks and normalisation of what producers hand us; pure, so every rule has a unit test.

Every error is a ValueError whose message starts with the field's name.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import phonenumbers
from phonenumbers import timezone as number_zones

from worker.domain.lifecycle import MAX_ATTEMPTS, MAX_RETRY_DELAY_S
from worker.domain.statuses import RETRYABLE_CALL_STATUSES
from worker.domain.windows import zone

# SIP URIs and Client identifiers are valid `To` values for Twilio as they are.
_SIP = re.compile(r"sip:[^@\s]+@[A-Za-z0-9.\-]+(:\d+)?(;[^\s]*)?", re.IGNORECASE)
_CLIENT = re.compile(r"client:[A-Za-z0-9_\-.]{1,256}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_APPLICATION_SID = re.compile(r"AP[0-9a-fA-F]{32}")
# The field a missing or ambiguous choice of what a call does is reported under.
VOICE_FIELDS = "url/twiml/application_sid"

MAX_TWIML_BYTES = 4000  # Twilio's limit on the Twiml parameter

# The Calls.create parameters a producer may pass through, with the Python type
# each takes. Everything else we set ourselves (To, From, Url/Twiml, the status
# callback) or do not support.
CALL_OPTIONS: dict[str, type] = {
    "timeout": int,
    "record": bool,
    "recording_channels": str,
    "recording_status_callback": str,
    "recording_status_callback_method": str,
    "recording_status_callback_event": list,
    "send_digits": str,
    "machine_detection": str,
    "machine_detection_timeout": int,
    "async_amd": bool,
    "async_amd_status_callback": str,
    "time_limit": int,
    "caller_id": str,
    "trim": str,
    "method": str,
}
_URL_OPTIONS = ("recording_status_callback", "async_amd_status_callback")
# Twilio's documented bounds (Calls.create); TimeLimit's 24 h is the longest call there is.
_OPTION_RANGES = {"timeout": (1, 600), "time_limit": (1, 86_400),
                  "machine_detection_timeout": (3, 59)}
_OPTION_CHOICES = {
    "machine_detection": ("Enable", "DetectMessageEnd"),
    "recording_channels": ("mono", "dual"),
    "trim": ("trim-silence", "do-not-trim"),
    "method": ("GET", "POST"),
    "recording_status_callback_method": ("GET", "POST"),
}
_SEND_DIGITS = re.compile(r"[0-9A-D#*wW]{1,32}")
_RECORDING_EVENTS = ("in-progress", "completed", "absent")
_TYPE_NAMES = {int: "a whole number", bool: "true or false", str: "a string", list: "a list"}


def normalize_to(value: object, field_name: str = "to") -> str:
    """A phone number in E.164, or a `sip:` / `client:` address as Twilio accepts it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field_name}: a phone number, sip: or client: address is required")
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("sip:"):
        if not _SIP.fullmatch(text):
            raise ValueError(f"{field_name}: {text!r} is not a valid SIP address (sip:user@host)")
        return text
    if lowered.startswith("client:"):
        if not _CLIENT.fullmatch(text):
            raise ValueError(f"{field_name}: {text!r} is not a valid client identifier")
        return text
    return normalize_number(text, field_name)


def normalize_number(text: str, field_name: str) -> str:
    number, _ = parse_number(text, field_name)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_number(text: str, field_name: str) -> tuple[phonenumbers.PhoneNumber, int]:
    """A valid number in international format, parsed, with its PhoneNumberType.

    Validity is `number_type(...) != UNKNOWN`, which is what is_valid_number computes;
    returning the type lets a campaign import look up time zones without computing it
    again (the type lookup is most of the cost of a row).
    """
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            f"{field_name}: {text!r} is not a phone number in international format (+country...)"
        ) from None
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise ValueError(f"{field_name}: {text!r} is not a valid phone number")
    return number, kind


def recipient(to: object, row_zone: str | None, default: str) -> tuple[str, tuple[str, ...]]:
    """A campaign row's normalised address and its zones: the row's, else the number's (every
    zone it may be in), else the campaign's default. The number is parsed once."""
    text = to.strip() if isinstance(to, str) else to
    if not isinstance(text, str) or not text.startswith("+"):
        return normalize_to(text, "to"), (row_zone or default,)
    number, kind = parse_number(text, "to")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if row_zone:
        zone(row_zone)
        return e164, (row_zone,)
    # time_zones_for_number would compute the number's type a second time.
    if phonenumbers.is_number_type_geographical(kind, number.country_code):
        found = number_zones.time_zones_for_geographical_number(number)
    else:
        found = number_zones.time_zones_for_number(number)
    return e164, tuple(z for z in found if z != number_zones.UNKNOWN_TIMEZONE) or (default,)


def recipients(rows: Sequence[tuple[object, str | None]], default: str
               ) -> list[tuple[str, tuple[str, ...]] | str]:
    """recipient() of each (to, row zone), or the ValueError's message for an invalid one:
    a plain function of plain data, so a process pool can share the work of an import."""
    checked: list[tuple[str, tuple[str, ...]] | str] = []
    for to, row_zone in rows:
        try:
            checked.append(recipient(to, row_zone, default))
        except ValueError as exc:
            checked.append(str(exc))
    return checked


def normalize_from(value: object, field_name: str = "from_") -> str:
    """Caller ID: an E.164 number or a client identifier (Twilio allows both for From)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field_name}: a caller ID is required (or set DIALER_DEFAULT_FROM)")
    return _normalize_caller_id(value, field_name)


@functools.lru_cache(maxsize=256)
def _normalize_caller_id(value: str, field_name: str) -> str:
    """Cached: a producer sends thousands of jobs from the same few caller IDs, and parsing
    one is about a fifth of a millisecond. Errors are raised, so never cached."""
    if value.strip().lower().startswith("client:"):
        return normalize_to(value, field_name)
    return normalize_number(value.strip(), field_name)


def check_url(value: object, field_name: str) -> str:
    """Absolute http(s) with a valid host and no underscore in it, as Twilio requires."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field_name}: must be an absolute http(s) URL")
    text = value.strip()
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port  # both raise on a malformed host or port
    except ValueError:
        raise ValueError(f"{field_name}: {text!r} has a malformed host or port") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{field_name}: {text!r} must be an absolute http(s) URL")
    if not host:
        raise ValueError(f"{field_name}: {text!r} has no host")
    if "_" in host:
        raise ValueError(f"{field_name}: host {host!r} has an underscore, which Twilio rejects")
    if not all(_HOST_LABEL.fullmatch(label) for label in host.rstrip(".").split(".")):
        raise ValueError(f"{field_name}: {host!r} is not a valid host name")
    return text


def check_call_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Each option typed and within the bounds Twilio documents, so a bad one fails here,
    naming it, instead of at the create (or, for a number, when a retry time overflows)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError("call_options: must be a mapping of Calls.create parameters")
    checked: dict[str, Any] = {}
    for name, value in options.items():
        expected = CALL_OPTIONS.get(name)
        if expected is None:
            raise ValueError(
                f"call_options: unknown parameter {name!r}; allowed: {', '.join(CALL_OPTIONS)}"
            )
        # bool is an int in Python; reject True where a number is meant, and the reverse.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(
                f"call_options.{name}: must be {_TYPE_NAMES[expected]}, got {value!r}")
        checked[name] = _check_option(name, value)
    if checked.get("async_amd") and "machine_detection" not in checked:
        raise ValueError("call_options.async_amd: needs machine_detection "
                         "(Enable or DetectMessageEnd)")
    return checked


def _check_option(name: str, value: Any) -> Any:
    field_name = f"call_options.{name}"
    if name in _URL_OPTIONS:
        return check_url(value, field_name)
    if name == "caller_id":
        return normalize_from(value, field_name)
    if name in _OPTION_RANGES:
        low, high = _OPTION_RANGES[name]
        if not low <= value <= high:
            raise ValueError(f"{field_name}: must be from {low} to {high}, got {value!r}")
    if name in _OPTION_CHOICES and value not in _OPTION_CHOICES[name]:
        raise ValueError(f"{field_name}: must be one of "
                         f"{', '.join(_OPTION_CHOICES[name])}, got {value!r}")
    if name == "send_digits" and not _SEND_DIGITS.fullmatch(value):
        raise ValueError(f"{field_name}: up to 32 of 0-9, A-D, # and *, with w (half a second) "
                         f"and W (a second) for pauses, got {value!r}")
    if name == "recording_status_callback_event":
        unknown = [e for e in value if e not in _RECORDING_EVENTS]
        if not value or unknown:
            raise ValueError(f"{field_name}: a non-empty list of "
                             f"{', '.join(_RECORDING_EVENTS)}, got {value!r}")
    return value


def check_retry_on(values: Iterable[str] | None, default: tuple[str, ...]) -> list[str]:
    if values is None:
        return list(default)
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    result = _as_list(values, "retry_on")
    unknown = [v for v in result if v not in RETRYABLE_CALL_STATUSES]
    if unknown:
        raise ValueError(
            f"retry_on: {', '.join(map(str, unknown))} cannot be retried; "
            f"choose from {', '.join(RETRYABLE_CALL_STATUSES)}"
        )
    return result


def check_retry_delays(values: Iterable[int] | None, default: tuple[int, ...]) -> list[int]:
    if values is None:
        return list(default)
    result = _as_list(values, "retry_delays")
    if not 1 <= len(result) <= MAX_ATTEMPTS or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_RETRY_DELAY_S
            for v in result):
        raise ValueError(f"retry_delays: must be a list of 1 to {MAX_ATTEMPTS} whole numbers of "
                         f"seconds from 0 to {MAX_RETRY_DELAY_S} (30 days)")
    return result


def _as_list(values: object, field_name: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValueError(f"{field_name}: must be a list, got {values!r}")
    return list(values)


def check_max_attempts(value: int | None, default: int) -> int:
    if value is None:
        return default
    if (not isinstance(value, int) or isinstance(value, bool)
            or not 1 <= value <= MAX_ATTEMPTS):
        raise ValueError(f"max_attempts: must be a whole number from 1 to {MAX_ATTEMPTS}, "
                         f"got {value!r}")
    return value


class VoiceInstructions(NamedTuple):
    """What a call does once connected: exactly one of the three is set."""

    url: str | None
    twiml: str | None
    application_sid: str | None


def check_voice_instructions(url: str | None, twiml: str | None,
                             application_sid: str | None = None) -> VoiceInstructions:
    """Twilio's three ways to say what a call does: a TwiML URL, TwiML itself, or the voice
    URL of a TwiML application (whose own status callback then replaces ours)."""
    given = [value for value in (url, twiml, application_sid) if value is not None]
    if len(given) != 1:
        raise ValueError(f"{VOICE_FIELDS}: give exactly one of url, twiml or application_sid")
    if url is not None:
        return VoiceInstructions(check_url(url, "url"), None, None)
    if application_sid is not None:
        if not isinstance(application_sid, str) or not _APPLICATION_SID.fullmatch(
                application_sid.strip()):
            raise ValueError(f"application_sid: {application_sid!r} is not an application SID "
                             "(AP followed by 32 hex digits)")
        return VoiceInstructions(None, None, application_sid.strip())
    twiml = check_twiml(twiml, "twiml")
    return VoiceInstructions(None, twiml, None)


def check_twiml(twiml: object, field_name: str) -> str:
    if not isinstance(twiml, str) or not twiml.strip():
        raise ValueError(f"{field_name}: must be a non-empty TwiML document")
    if len(twiml.encode()) > MAX_TWIML_BYTES:
        raise ValueError(f"{field_name}: longer than Twilio's limit of {MAX_TWIML_BYTES} bytes")
    return twiml


def check_at(value: object, field_name: str = "at") -> datetime | None:
    """When a call may be placed at the earliest: an aware datetime, or ISO 8601 text with
    its UTC offset. A time without an offset is refused: whose 09:00 would it be?"""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{field_name}: {value!r} is not an ISO 8601 date and time, "
                             "e.g. 2026-12-02T09:00:00+01:00") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{field_name}: must be a date and time, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field_name}: {value.isoformat()} has no UTC offset; "
                         "say which time zone it is in, e.g. +01:00 or Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC instant there is
        raise ValueError(f"{field_name}: {value.isoformat()} is out of range") from None


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValueError("idempotency_key: must be a non-empty string of at most 255 characters")
    return value


def check_metadata(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("metadata: must be a mapping")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata: must be JSON-serialisable ({exc})") from None
    return dict(value)
