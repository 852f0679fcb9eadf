"""The shapes Twilio answers with: the Call resource and the error body."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import phonenumbers

API_VERSION = "2010-04-01"
FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Twilio's Call resource has no `initiated` status (its callbacks do): it reads `queued`.
RESOURCE_STATUS = {"initiated": "queued"}
SIP_CODES = {"completed": 200, "busy": 486, "no-answer": 487, "canceled": 487, "failed": 404}


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def now() -> datetime:
    return datetime.now(UTC)


def formatted(endpoint: str) -> str:
    """A North American number for display, `(415) 555-0100`; any other number in E.164;
    SIP addresses and client identifiers as given (the spec's `to_formatted`)."""
    if not endpoint.startswith("+"):
        return endpoint
    try:
        number = phonenumbers.parse(endpoint)
    except phonenumbers.NumberParseException:
        return endpoint
    if number.country_code != 1:
        return endpoint
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def account_base(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def page(items: list[dict[str, Any]], key: str, path: str, page_number: int, page_size: int,
         filters: dict[str, str]) -> dict[str, Any]:
    """Twilio's list envelope around one page of `items` (all of them, already filtered)."""
    chosen = items[page_number * page_size:(page_number + 1) * page_size]

    def uri(n: int) -> str:
        return path + "?" + urlencode({**filters, "PageSize": page_size, "Page": n})

    more = len(items) > (page_number + 1) * page_size
    return {key: chosen, "page": page_number, "page_size": page_size,
            "start": page_number * page_size,
            "end": page_number * page_size + max(len(chosen) - 1, 0),
            "uri": uri(page_number), "first_page_uri": uri(0),
            "next_page_uri": uri(page_number + 1) if more else None,
            "previous_page_uri": uri(page_number - 1) if page_number > 0 else None}


def error_body(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


@dataclass
class Call:
    sid: str
    account_sid: str
    to: str
    from_: str
    params: dict[str, list[str]]
    created_at: datetime = field(default_factory=now)
    status: str = "queued"
    updated_at: datetime = field(default_factory=now)
    start_time: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    duration_s: int | None = None
    queue_time_ms: int = 0
    answered_by: str | None = None
    sequence: int = 0
    instructions: list[dict[str, Any]] = field(default_factory=list)
    recording_sids: list[str] = field(default_factory=list)
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_events: tuple[str, ...] = ("completed",)
    kind_sequences: dict[str, int] = field(default_factory=dict)

    def first(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def async_amd(self) -> bool:
        """Detection runs beside the call and reports to AsyncAmdStatusCallback only."""
        return bool(self.first("MachineDetection")) and self.first("AsyncAmd") == "true"

    def kind_sequence(self, kind: str) -> int:
        """0, 1, 2, ... for each recording or AMD callback of this call."""
        number = self.kind_sequences.get(kind, 0)
        self.kind_sequences[kind] = number + 1
        return number

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def to_json(self) -> dict[str, Any]:
        base = self.uri.removesuffix(".json")
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.updated_at),
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": formatted(self.to),
            "from": self.from_,
            "from_formatted": formatted(self.from_),
            "phone_number_sid": None,
            "status": RESOURCE_STATUS.get(self.status, self.status),
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": None if self.duration_s is None else str(self.duration_s),
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": str(self.queue_time_ms),
            "trunk_sid": None,
            "uri": self.uri,
            "subresource_uris": {
                name: f"{base}/{path}.json" for name, path in (
                    ("notifications", "Notifications"), ("recordings", "Recordings"),
                    ("payments", "Payments"), ("events", "Events"), ("siprec", "Siprec"),
                    ("streams", "Streams"), ("transcriptions", "Transcriptions"),
                    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                    ("user_defined_messages", "UserDefinedMessages"))
            },
        }

    def billed_minutes(self) -> int:
        return math.ceil((self.duration_s or 0) / 60)


@dataclass
class Recording:
    """A call's recording (`Record=true`), made when the call is answered."""

    sid: str
    account_sid: str
    call_sid: str
    channels: int
    track: str
    start_time: datetime
    status: str = "in-progress"
    duration_s: int | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def media_path(self) -> str:
        """The media URL without an extension (WAV), as RecordingUrl carries it."""
        return f"{account_base(self.account_sid)}/Recordings/{self.sid}"

    def to_json(self) -> dict[str, Any]:
        """The Recording resource; the call's Recordings list reads the same fields."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": self.call_sid,
            "conference_sid": None,
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.updated_at),
            "start_time": rfc2822(self.start_time),
            "duration": None if self.duration_s is None else str(self.duration_s),
            "sid": self.sid,
            "price": None,
            "price_unit": "USD",
            "status": self.status,
            "channels": self.channels,
            "source": "OutboundAPI",
            "error_code": None,
            "track": self.track,
            "uri": self.media_path + ".json",
            "encryption_details": None,
            "subresource_uris": {
                "add_on_results": f"{self.media_path}/AddOnResults.json",
                "transcriptions": f"{self.media_path}/Transcriptions.json",
            },
            "media_url": None,
        }


APPLICATION_FIELDS = {
    "FriendlyName": "friendly_name", "ApiVersion": "api_version",
    "VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url", "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback", "StatusCallbackMethod": "status_callback_method",
    "VoiceCallerIdLookup": "voice_caller_id_lookup",
    "SmsUrl": "sms_url", "SmsMethod": "sms_method", "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method", "SmsStatusCallback": "sms_status_callback",
    "MessageStatusCallback": "message_status_callback",
    "PublicApplicationConnectEnabled": "public_application_connect_enabled",
}
APPLICATION_FLAGS = frozenset({"VoiceCallerIdLookup", "PublicApplicationConnectEnabled"})


@dataclass
class Application:
    """An Application: where calls placed with its SID get their TwiML and send their
    status callbacks."""

    sid: str
    account_sid: str
    fields: dict[str, Any]
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        values: dict[str, Any] = {name: None for name in APPLICATION_FIELDS.values()}
        values |= {"api_version": API_VERSION, "voice_method": "POST",
                   "voice_fallback_method": "POST", "status_callback_method": "POST",
                   "sms_method": "POST", "sms_fallback_method": "POST",
                   "voice_caller_id_lookup": False,
                   "public_application_connect_enabled": False}
        return values

    def apply(self, form: dict[str, list[str]]) -> None:
        for param, name in APPLICATION_FIELDS.items():
            values = form.get(param)
            if not values:
                continue
            value: Any = values[0]
            if param in APPLICATION_FLAGS:
                value = value.lower() == "true"
            elif param.endswith("Method"):
                value = value.upper()
            self.fields[name] = value
        self.updated_at = now()

    def to_json(self) -> dict[str, Any]:
        return {"account_sid": self.account_sid, "sid": self.sid,
                "date_created": rfc2822(self.created_at),
                "date_updated": rfc2822(self.updated_at),
                "uri": f"{account_base(self.account_sid)}/Applications/{self.sid}.json",
                **self.fields}
