"""Stand-ins for the outside world the engine talks to (the broker, Twilio, the pace), kept in
memory so the engine runs in-process, in a test, with no server.

They do what worker/engine uses and no more; each one records what it was asked, for the
test to assert on.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from twilio.base.exceptions import TwilioRestException

from worker.adapters.pacing import PacingBacklog
from worker.domain.clock import utcnow
from worker.domain.statuses import TERMINAL_CALL_STATUSES

ACCOUNT_SID = "AC" + "1" * 32
CALLER_ID = "+14155550100"
TO = "+14155550123"
VOICE_URL = "https://example.com/voice.xml"


def answer_twilio_error(handler: BaseHTTPRequestHandler, status: int, code: int | None,
                        message: str) -> None:
    """Read the request's body and answer it as Twilio answers an error: JSON with the
    code, message and status."""
    handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    body = json.dumps({"code": code, "message": message, "status": status,
                       "more_info": "https://www.twilio.com/docs/errors"}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@dataclass(frozen=True)
class Dialed:
    """A job the engine has dialed, and the CallSid of its call."""

    job_id: str
    call_sid: str


class InMemoryBroker:
    """The dial and notify queues as deques of ids; `fail_next` makes the next publish raise."""

    def __init__(self) -> None:
        self.waiting: deque[str] = deque()
        self.published: list[str] = []  # every id ever published, in order
        self.notifications: deque[str] = deque()  # deliver_notification messages waiting
        self._failure: Exception | None = None

    def fail_next(self, exc: Exception | None = None) -> None:
        self._failure = exc or ConnectionError("broker unreachable")

    def publish_place_calls(self, job_ids: Sequence[str]) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        self.waiting.extend(job_ids)
        self.published.extend(job_ids)

    def dial_queue_length(self) -> int:
        return len(self.waiting)

    def publish_notifications(self, notification_ids: Sequence[str]) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        self.notifications.extend(notification_ids)

    def take(self) -> str:
        """The next waiting job id, as a dial worker would receive it."""
        return self.waiting.popleft()

    def drain(self) -> list[str]:
        """Every waiting job id, oldest first; the queue is left empty."""
        ids = list(self.waiting)
        self.waiting.clear()
        return ids


@dataclass
class FakeCall:
    """The attributes of twilio's CallInstance that the engine reads."""

    sid: str
    status: str
    account_sid: str
    to: str
    _from: str
    date_created: datetime
    duration: str | None = None
    answered_by: str | None = None
    end_time: datetime | None = None


def not_found(call_sid: str) -> TwilioRestException:
    return TwilioRestException(status=404, uri=f"/Calls/{call_sid}.json",
                               msg="The requested resource was not found", code=20404)


class FakeTwilio:
    """Twilio's Calls resource: calls live in a dict, and failures are set per number.

    `fail(to, exc)` makes the next create to `to` raise exc; with `created=True` the call
    exists anyway, as after a create whose answer was lost on its way back.
    """

    def __init__(self, account_sid: str = ACCOUNT_SID) -> None:
        self.account_sid = account_sid
        self.calls: dict[str, FakeCall] = {}
        self.creates: list[dict[str, Any]] = []  # the params of every create, failed or not
        self.ended: list[tuple[str, str]] = []  # (call_sid, status) of every end_call
        self.redirects: list[tuple[str, dict[str, str]]] = []  # (call_sid, params) of each
        self.redirect_failure: Exception | None = None  # raised by the next redirect_call
        self.next_sid: str | None = None  # the next call's SID, instead of a fresh one
        self.media: dict[str, bytes] = {}  # a recording's WAV by RecordingSid
        self.warmed = False  # set by warm()
        self._failures: dict[str, deque[tuple[Exception, bool]]] = {}
        self._sequence: dict[str, int] = {}

    def fail(self, to: str, exc: Exception, *, created: bool = False) -> None:
        self._failures.setdefault(to, deque()).append((exc, created))

    def warm(self) -> None:
        self.warmed = True

    def create_call(self, params: dict[str, Any]) -> FakeCall:
        self.creates.append(dict(params))
        failures = self._failures.get(params["to"])
        exc, created = failures.popleft() if failures else (None, True)
        call = None
        if created:
            sid, self.next_sid = self.next_sid or "CA" + uuid.uuid4().hex, None
            call = FakeCall(sid=sid, status="queued",
                            account_sid=self.account_sid, to=params["to"],
                            _from=params["from_"], date_created=utcnow())
            self.calls[call.sid] = call
        if exc is not None:
            raise exc
        assert call is not None
        return dataclasses.replace(call)

    def set_status(self, call_sid: str, status: str, *, duration: int | None = None,
                   answered_by: str | None = None) -> None:
        """What Twilio would answer for this call from now on."""
        call = self.calls[call_sid]
        call.status = status
        call.duration = None if duration is None else str(duration)
        call.answered_by = answered_by
        call.end_time = utcnow() if status in TERMINAL_CALL_STATUSES else None

    def report(self, call_sid: str, status: str, **extra: str) -> dict[str, str]:
        """The status callback Twilio sends when the call reaches `status`, numbered in
        sending order (SequenceNumber); the call's fetched state follows it."""
        sequence = self._sequence[call_sid] = self._sequence.get(call_sid, -1) + 1
        self.set_status(call_sid, status)
        call = self.calls[call_sid]
        return {"CallSid": call_sid, "CallStatus": status, "SequenceNumber": str(sequence),
                "AccountSid": self.account_sid, "To": call.to, "From": call._from,
                "Timestamp": format_datetime(utcnow(), usegmt=True), **extra}

    def fetch_call(self, call_sid: str) -> FakeCall:
        if call_sid not in self.calls:
            raise not_found(call_sid)
        return dataclasses.replace(self.calls[call_sid])

    def end_call(self, call_sid: str, status: str) -> FakeCall:
        if call_sid not in self.calls:
            raise not_found(call_sid)
        self.ended.append((call_sid, status))
        current = self.calls[call_sid].status
        # As Twilio: a cancel leaves an answered call in progress; only `completed` hangs up.
        if current not in TERMINAL_CALL_STATUSES and not (
                status == "canceled" and current == "in-progress"):
            self.set_status(call_sid, status)
        return dataclasses.replace(self.calls[call_sid])

    def redirect_call(self, call_sid: str, params: dict[str, str]) -> FakeCall:
        """As Twilio: a call not in progress cannot be redirected (21220)."""
        if self.redirect_failure is not None:
            failure, self.redirect_failure = self.redirect_failure, None
            raise failure
        if call_sid not in self.calls:
            raise not_found(call_sid)
        if self.calls[call_sid].status in TERMINAL_CALL_STATUSES:
            raise TwilioRestException(status=400, uri=f"/Calls/{call_sid}.json", code=21220,
                                      msg="Call is not in-progress. Cannot redirect.")
        self.redirects.append((call_sid, dict(params)))
        return dataclasses.replace(self.calls[call_sid])

    def list_calls(self, to: str, from_: str, limit: int) -> list[FakeCall]:
        """Newest first, as Twilio lists them."""
        matching = [c for c in self.calls.values() if c.to == to and c._from == from_]
        matching.sort(key=lambda c: c.date_created, reverse=True)
        return [dataclasses.replace(c) for c in matching[:limit]]

    def download_recording(self, recording_sid: str) -> bytes:
        if recording_sid not in self.media:
            raise TwilioRestException(status=404, uri=f"/Recordings/{recording_sid}.wav",
                                      msg="The requested resource was not found", code=20404)
        return self.media[recording_sid]


class InstantPacer:
    """Every slot is free at once; with `backlog` set, every reserve raises PacingBacklog."""

    def __init__(self) -> None:
        self.reservations = 0
        self.backlog: float | None = None
        self.calls_per_second: float | None = None
        self.departures = 0

    def reserve(self) -> float:
        if self.backlog is not None:
            raise PacingBacklog(self.backlog)
        self.reservations += 1
        return 0.0

    def depart(self) -> float:
        self.departures += 1
        return 0.0

    def pace(self) -> float | None:
        return self.calls_per_second

    def set_pace(self, calls_per_second: float) -> None:
        self.calls_per_second = calls_per_second


@dataclass
class Post:
    """One POST a RecordingNotifier was asked to send."""

    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float


class RecordingNotifier:
    """A receiver in memory: records each POST and answers the next of `answers` (a status
    code, or an exception to raise), 204 once they run out."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.answers: deque[int | Exception] = deque()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.posts.append(Post(url, body, dict(headers), timeout))
        answer = self.answers.popleft() if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return answer
