"""What Twilio refuses on `POST .../Calls.json`, on a call's update and on an Application:
pure checks, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
APPLICATION_SID = re.compile(r"^AP[0-9a-fA-F]{32}$")
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
RECORDING_EVENTS = ("in-progress", "completed", "absent")
METHODS = frozenset({"GET", "POST"})
TWIML_MAX = 4000  # characters, per the Calls resource
SIP_MAX = 255  # a SIP URI's length, per "Making SIP calls"
# Parameters the Calls resource ignores when an ApplicationSid is given: the application's
# own voice URL and status callback apply instead.
APPLICATION_OVERRIDES = ("Url", "Method", "FallbackUrl", "FallbackMethod", "StatusCallback",
                         "StatusCallbackMethod", "StatusCallbackEvent")
CHOICES = {
    "MachineDetection": ("Enable", "DetectMessageEnd"),
    # Twilio documents AsyncAmd as the strings `true` and `false`, nothing else.
    "AsyncAmd": ("true", "false"),
    "RecordingChannels": ("mono", "dual"),
    "RecordingTrack": ("inbound", "outbound", "both"),
    "Trim": ("trim-silence", "do-not-trim"),
}


class CreateError(Exception):
    """A Twilio error answer: code, message and HTTP status."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _first(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def valid_url(value: str) -> bool:
    """An absolute http(s) URL with a hostname Twilio accepts (no underscore) and nothing
    that would have to be escaped before it goes on the wire."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in parts.netloc


def event_names(values: Sequence[str]) -> list[str]:
    """Events given as repeated parameters, each of which may hold several names separated
    by spaces or commas (the form TwiML uses), in the order given, without repeats."""
    names: list[str] = []
    for value in values:
        for name in re.split(r"[\s,]+", value.strip()):
            if name and name not in names:
                names.append(name)
    return names


def _check_url(form: Mapping[str, Sequence[str]], name: str, code: int = 20001) -> None:
    value = _first(form, name)
    if value and not valid_url(value):
        raise CreateError(code, f"{name} is not a valid URL: {value}")


def _check_method(form: Mapping[str, Sequence[str]], name: str) -> None:
    value = _first(form, name)
    if value and value.upper() not in METHODS:
        raise CreateError(20001, f"{name} must be GET or POST, not {value!r}")


def _check_choice(form: Mapping[str, Sequence[str]], name: str) -> None:
    value = _first(form, name)
    if value is not None and value not in CHOICES[name]:
        raise CreateError(20001, f"{name} must be one of {', '.join(CHOICES[name])}: {value!r}")


def _check_twiml(form: Mapping[str, Sequence[str]]) -> None:
    twiml = _first(form, "Twiml")
    if twiml is not None and len(twiml) > TWIML_MAX:
        raise CreateError(20001, f"Twiml must be at most {TWIML_MAX} characters, "
                          f"not {len(twiml)}")


def check_endpoints(to: str | None, from_: str | None) -> None:
    """A phone number `To` needs a phone number `From`; a SIP `To` takes any caller name
    (it becomes the SIP From user); a `client:` `To` takes a number or a client identity."""
    if not to:
        raise CreateError(21201, "No 'To' number is specified")
    sip = to.lower().startswith("sip:")
    client = to.startswith("client:")
    if sip and not (len(to) < SIP_MAX and re.match(r"^sip:[^@\s]+@[^@\s]+$", to, re.I)):
        raise CreateError(21211, f"Invalid 'To' SIP address: {to}")
    if client and not re.match(r"^client:\S+$", to):
        raise CreateError(21211, f"Invalid 'To' client identifier: {to}")
    if not (sip or client or E164.match(to)):
        raise CreateError(21211, f"Invalid 'To' Phone Number: {to}")
    if not from_:
        raise CreateError(21213, "No 'From' number is specified")
    if any(c.isspace() for c in from_):
        raise CreateError(21212, f"Invalid 'From' Phone Number: {from_}")
    if sip:
        return
    if client:
        if not (E164.match(from_) or re.match(r"^(client:)?[A-Za-z0-9_.@+-]+$", from_)):
            raise CreateError(21212, f"Invalid 'From': {from_}")
        return
    if not E164.match(from_):
        raise CreateError(21212, f"Invalid 'From' Phone Number: {from_} (a phone number "
                          "'To' needs a phone number 'From')")


def check_create(form: Mapping[str, Sequence[str]]) -> None:
    """Raise CreateError for the first thing Twilio would refuse, naming the parameter."""
    check_endpoints(_first(form, "To"), _first(form, "From"))
    given = [n for n in ("Url", "Twiml", "ApplicationSid") if _first(form, n)]
    if not given:
        raise CreateError(21205, "Url, Twiml or ApplicationSid is required")
    application = _first(form, "ApplicationSid")
    if application is not None and not APPLICATION_SID.match(application):
        raise CreateError(21218, f"Invalid ApplicationSid: {application}")
    if application is None:
        _check_url(form, "Url", 21205)
        _check_url(form, "StatusCallback", 21609)
        _check_url(form, "FallbackUrl")
        for name in ("Method", "StatusCallbackMethod", "FallbackMethod"):
            _check_method(form, name)
        unknown = [e for e in event_names(form.get("StatusCallbackEvent", []))
                   if e not in CALLBACK_EVENTS]
        if unknown:
            raise CreateError(21626, f"Invalid StatusCallbackEvent {', '.join(unknown)}: "
                              f"must be among {', '.join(CALLBACK_EVENTS)}")
    _check_twiml(form)
    for name, low, high in (("Timeout", 1, 600), ("TimeLimit", 1, 14400),
                            ("MachineDetectionTimeout", 3, 59)):
        value = _first(form, name)
        if value is not None and not (value.isdigit() and low <= int(value) <= high):
            raise CreateError(20001, f"{name} must be a whole number of seconds, "
                              f"{low} to {high}: {value!r}")
    record = _first(form, "Record")
    if record is not None and record.lower() not in ("true", "false"):
        raise CreateError(20001, f"Record must be true or false: {record!r}")
    for name in CHOICES:
        _check_choice(form, name)
    for name in ("RecordingStatusCallback", "AsyncAmdStatusCallback"):
        _check_url(form, name)
    for name in ("RecordingStatusCallbackMethod", "AsyncAmdStatusCallbackMethod"):
        _check_method(form, name)
    unknown = [e for e in event_names(form.get("RecordingStatusCallbackEvent", []))
               if e not in RECORDING_EVENTS]
    if unknown:
        raise CreateError(20001, f"RecordingStatusCallbackEvent {', '.join(unknown)}: "
                          f"must be among {', '.join(RECORDING_EVENTS)}")


def check_update(form: Mapping[str, Sequence[str]]) -> None:
    """What the Call instance's POST refuses whatever state the call is in."""
    status = _first(form, "Status")
    if status not in (None, "canceled", "completed"):
        raise CreateError(20001, f"Status must be canceled or completed, not {status!r}")
    if _first(form, "Url") and _first(form, "Twiml"):
        raise CreateError(20001, "Url and Twiml are mutually exclusive: give one")
    _check_url(form, "Url", 21205)
    _check_url(form, "StatusCallback", 21609)
    _check_url(form, "FallbackUrl")
    for name in ("Method", "StatusCallbackMethod", "FallbackMethod"):
        _check_method(form, name)
    _check_twiml(form)
    limit = _first(form, "TimeLimit")
    if limit is not None and not (limit.isdigit() and 1 <= int(limit) <= 14400):
        raise CreateError(20001, f"TimeLimit must be a whole number of seconds, 1 to 14400: "
                          f"{limit!r}")


def check_application(form: Mapping[str, Sequence[str]]) -> None:
    """What creating or updating an Application refuses."""
    name = _first(form, "FriendlyName")
    if name is not None and len(name) > 64:
        raise CreateError(20001, "FriendlyName must be at most 64 characters")
    for url in ("VoiceUrl", "VoiceFallbackUrl", "StatusCallback", "SmsUrl", "SmsFallbackUrl",
                "SmsStatusCallback", "MessageStatusCallback"):
        _check_url(form, url)
    for method in ("VoiceMethod", "VoiceFallbackMethod", "StatusCallbackMethod", "SmsMethod",
                   "SmsFallbackMethod"):
        _check_method(form, method)
    for flag in ("VoiceCallerIdLookup", "PublicApplicationConnectEnabled"):
        value = _first(form, flag)
        if value is not None and value.lower() not in ("true", "false"):
            raise CreateError(20001, f"{flag} must be true or false: {value!r}")
