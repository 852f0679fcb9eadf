"""The shapes Twilio answers with: the Call resource and the error body."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"
FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Twilio's Call resource has no `initiated` status (its callbacks do): it reads `queued`.
RESOURCE_STATUS = {"initiated": "queued"}
SIP_CODES = {"completed": 200, "busy": 486, "no-answer": 487, "canceled": 487, "failed": 404}


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def now() -> datetime:
    return datetime.now(UTC)


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

    def first(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

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
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
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
