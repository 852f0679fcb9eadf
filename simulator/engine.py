"""The simulated account: calls, their lifecycles, pacing and status callbacks.

Everything here runs on the simulator's own event loop; other threads only read
copies of the records, taken under `lock`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from simulator.applications import Applications
from simulator.create_rules import CreateError, check_create, check_update, event_names
from simulator.records import CallbackRecord, CreateRecord, Faults
from simulator.resources import (
    API_VERSION,
    FINAL,
    SIP_CODES,
    Application,
    Call,
    Recording,
    account_base,
    error_body,
    now,
    page,
    rfc2822,
)
from simulator.scenario import Outcome, Scenario
from simulator.signing import signature

log = logging.getLogger(__name__)

# A call's timeline in Twilio seconds, multiplied by the time scale.
DIAL_S = 1.0  # initiated -> ringing
RING_S = 3.0  # ringing -> answered
BUSY_S = 2.0  # ringing -> busy
FAIL_S = 0.5  # initiated -> failed
AMD_S = 2.5  # answered -> AsyncAmd's verdict (Enable; DetectMessageEnd on a human)
AMD_MESSAGE_END_S = 6.0  # answered -> the machine's beep (DetectMessageEnd)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
DEFAULT_TIMEOUT_S = 60
CALLBACK_TIMEOUT_S = 15  # how long Twilio waits for a callback's answer
STRICT_GRACE_S = 0.01  # network jitter tolerated before strict mode answers 429
ERROR_STATUS = {20003: 401, 20404: 404, 20429: 429}
FAULT_CODES = {429: (20429, "Too Many Requests"), 503: (20503, "Service Unavailable")}
EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: int) -> None:
        super().__init__(message)
        self.body = error_body(code, message, status)
        self.status = status


@dataclass(frozen=True)
class Callback:
    """One request to send: a status callback, or a recording or AMD callback (`kind`)."""

    url: str
    method: str
    params: dict[str, str]
    token: str
    final: bool
    kind: str
    call_sid: str
    call_status: str
    sequence: int


class Engine:
    def __init__(self, account_sid: str, auth_token: str, cps: float = 1.0, strict: bool = False,
                 time_scale: float = 1.0, seed: int | None = None, base_url: str = "") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = base_url
        self.lock = threading.Lock()
        self.seed = seed
        self.configure(cps=cps, strict=strict, time_scale=time_scale)
        self.scenario = Scenario()
        self.faults = Faults()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        # Applications are the account's configuration, like the settings: a reset keeps
        # them. Their SIDs come from a stream of their own so they never shift call SIDs.
        self.applications = Applications(
            account_sid, random.Random(None if seed is None else f"applications-{seed}"))
        self._clear()

    def configure(self, cps: float | None = None, strict: bool | None = None,
                  time_scale: float | None = None) -> None:
        if cps is not None:
            if not cps > 0:
                raise ValueError(f"cps must be positive, not {cps!r}")
            self.cps = float(cps)
        if strict is not None:
            self.strict = bool(strict)
        if time_scale is not None:
            if not time_scale > 0:
                raise ValueError(f"time_scale must be positive, not {time_scale!r}")
            self.time_scale = float(time_scale)

    def _clear(self) -> None:
        # Two streams, so a call's SID depends only on the creates before it: the callback
        # stream (tokens, recording SIDs, callback faults) is drawn whenever a lifecycle
        # reaches a step, which interleaves with creates by timing.
        self.rng = random.Random(self.seed)
        self.callback_rng = random.Random(None if self.seed is None else f"callbacks-{self.seed}")
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self.attempts: Counter[str] = Counter()
        self._next_slot = 0.0
        self._outboxes: dict[str, asyncio.Queue[Callback | None]] = {}
        with self.lock:
            self.create_log: list[CreateRecord] = []
            self.callback_log: list[CallbackRecord] = []

    async def reset(self) -> None:
        """Forget every call and record; cancel lifecycles and pending callbacks."""
        tasks = [t for ts in self._tasks.values() for t in ts]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._clear()

    async def close(self) -> None:
        await self.reset()
        if self._session is not None:
            await self._session.close()

    # --- REST: create, fetch, update, list -------------------------------------------

    async def create(self, form: Mapping[str, Sequence[str]]) -> tuple[int, dict[str, Any]]:
        arrived_at = time.time()
        params = {k: list(v) for k, v in form.items()}
        first = {k: v[0] for k, v in params.items() if v}

        def answer(status: int, body: dict[str, Any], sid: str | None = None,
                   code: int | None = None) -> tuple[int, dict[str, Any]]:
            with self.lock:
                self.create_log.append(CreateRecord(arrived_at, first.get("To"),
                                                    first.get("From"), params, status, sid, code))
            return status, body

        fault = self._api_fault()
        if fault and not self.faults.ambiguous_after_create:
            await self._latency()
            return answer(fault.status, fault.body, code=fault.body["code"])
        try:
            check_create(params)
            application = self._application_of(first.get("ApplicationSid"))
        except CreateError as exc:
            return answer(exc.status, error_body(exc.code, exc.message, exc.status),
                          code=exc.code)
        to = first["To"]
        outcome = self.scenario.outcome(to, self.attempts[to] + 1)
        if outcome.error_code is not None:
            # Refused before it is queued: counts as an attempt, takes no CPS slot.
            self.attempts[to] += 1
            status = ERROR_STATUS.get(outcome.error_code, 400)
            return answer(status, error_body(outcome.error_code,
                                              f"Scenario error {outcome.error_code}", status),
                          code=outcome.error_code)
        slot = self._take_slot()
        if slot is None:
            return answer(429, error_body(20429, "Too Many Requests", 429), code=20429)
        self.attempts[to] += 1
        call = Call(sid=self._sid("CA"), account_sid=self.account_sid, to=to,
                    from_=first["From"], params=params)
        self._route(call, application)
        self.calls[call.sid] = call
        self._start(call, outcome, slot)
        await self._latency()
        if fault:
            return answer(fault.status, fault.body, sid=call.sid, code=fault.body["code"])
        return answer(201, call.to_json(), sid=call.sid)

    def _application_of(self, sid: str | None) -> Application | None:
        if sid is None:
            return None
        application = self.applications.items.get(sid)
        if application is None:
            raise CreateError(21218, f"Invalid ApplicationSid: {sid} is not an application "
                              "of this account")
        return application

    def _route(self, call: Call, application: Application | None) -> None:
        """Where the call's TwiML and status callbacks go: the application's voice URL and
        status callback (completed only) when it has one, else the create's own."""
        if application is not None:
            fields = application.fields
            call.status_callback = fields["status_callback"]
            call.status_callback_method = fields["status_callback_method"] or "POST"
            call.status_events = ("completed",)
            self._instruct(call, "create", url=fields["voice_url"],
                           method=fields["voice_method"] or "POST",
                           application_sid=application.sid)
            return
        call.status_callback = call.first("StatusCallback")
        call.status_callback_method = (call.first("StatusCallbackMethod") or "POST").upper()
        call.status_events = tuple(event_names(call.params.get("StatusCallbackEvent", []))
                                   or ["completed"])
        url = call.first("Url")
        if url:  # Twilio ignores Twiml when Url is given too
            self._instruct(call, "create", url=url,
                           method=(call.first("Method") or "POST").upper())
        else:
            self._instruct(call, "create", twiml=call.first("Twiml"))

    @staticmethod
    def _instruct(call: Call, source: str, url: str | None = None, method: str | None = None,
                  twiml: str | None = None, application_sid: str | None = None) -> None:
        call.instructions.append({"at": now().isoformat(), "source": source, "url": url,
                                  "method": method if url else None, "twiml": twiml,
                                  "application_sid": application_sid})

    def fetch(self, sid: str) -> dict[str, Any]:
        return self._call(sid).to_json()

    def instructions(self, sid: str) -> list[dict[str, Any]]:
        return [dict(step) for step in self._call(sid).instructions]

    def update(self, sid: str, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """`Status=canceled` ends a queued or ringing call; `completed` hangs up (and, on a
        call not answered yet, cancels it). `Url` or `Twiml` redirects a call in progress.
        A call that cannot take the change answers 21220."""
        call = self._call(sid)
        try:
            check_update(form)
        except CreateError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from None
        first = {k: v[0] for k, v in form.items() if v}
        status = first.get("Status")
        redirect = "Url" in first or "Twiml" in first
        if call.is_final or (redirect and status is None and call.status != "in-progress"):
            raise ApiError(21220, "Call is not in-progress. Cannot redirect.", 400)
        if "StatusCallback" in first:
            call.status_callback = first["StatusCallback"]
        if "StatusCallbackMethod" in first:
            call.status_callback_method = first["StatusCallbackMethod"].upper()
        if status == "completed" or (status == "canceled" and call.status != "in-progress"):
            self._stop_lifecycle(call)
            self._finish(call, "completed" if call.status == "in-progress" else "canceled")
        elif redirect and call.status == "in-progress":
            if "Url" in first:
                self._instruct(call, "redirect", url=first["Url"],
                               method=first.get("Method", "POST").upper())
            else:
                self._instruct(call, "redirect", twiml=first["Twiml"])
            call.updated_at = now()
        return call.to_json()

    def delete(self, sid: str) -> None:
        call = self._call(sid)
        if not call.is_final:
            raise ApiError(20009, "Cannot delete a call that is in progress", 400)
        del self.calls[sid]

    def list_calls(self, query: Mapping[str, str], path: str) -> dict[str, Any]:
        page_size = _int_param(query, "PageSize", 50, 1, 1000)
        page_number = _int_param(query, "Page", 0, 0, 10**6)
        calls = sorted(self.calls.values(), key=lambda c: c.created_at, reverse=True)
        for name in ("To", "From"):
            if name in query:
                calls = [c for c in calls if getattr(c, "to" if name == "To" else "from_")
                         == query[name]]
        if "Status" in query:
            calls = [c for c in calls if c.to_json()["status"] == query["Status"]]
        for key, keep in (("StartTime", _same_day), ("StartTime>", _on_or_after),
                          ("StartTime<", _on_or_before)):
            if key in query:
                bound = _moment(query[key], key)
                calls = [c for c in calls if keep(c.start_time or c.created_at, bound)]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}
        return page([c.to_json() for c in calls], "calls", path, page_number, page_size,
                    filters)

    def _call(self, sid: str) -> Call:
        call = self.calls.get(sid)
        if call is None:
            raise ApiError(20404, f"The requested resource /{API_VERSION}/Accounts/"
                           f"{self.account_sid}/Calls/{sid}.json was not found", 404)
        return call

    # --- REST: recordings and applications -------------------------------------------

    def recording(self, sid: str, call_sid: str | None = None) -> Recording:
        found = self.recordings.get(sid)
        if found is None or (call_sid is not None and found.call_sid != call_sid):
            raise ApiError(20404, f"The requested resource {account_base(self.account_sid)}"
                           f"/Recordings/{sid} was not found", 404)
        return found

    def list_recordings(self, query: Mapping[str, str], path: str,
                        call_sid: str | None = None) -> dict[str, Any]:
        if call_sid is not None:
            self._call(call_sid)
        page_size = _int_param(query, "PageSize", 50, 1, 1000)
        page_number = _int_param(query, "Page", 0, 0, 10**6)
        chosen = sorted((r for r in self.recordings.values()
                         if call_sid is None or r.call_sid == call_sid),
                        key=lambda r: r.created_at, reverse=True)
        if "CallSid" in query:
            chosen = [r for r in chosen if r.call_sid == query["CallSid"]]
        filters = {k: v for k, v in query.items() if k == "CallSid"}
        return page([r.to_json() for r in chosen], "recordings", path, page_number, page_size,
                    filters)

    def application_request(self, action: str, form: Mapping[str, Sequence[str]],
                            sid: str = "", query: Mapping[str, str] | None = None,
                            path: str = "") -> dict[str, Any] | None:
        """One Applications request; Twilio's errors come back as ApiError."""
        try:
            if action == "create":
                return self.applications.create(form)
            if action == "fetch":
                return self.applications.get(sid).to_json()
            if action == "update":
                return self.applications.update(sid, form)
            if action == "delete":
                self.applications.delete(sid)
                return None
            query = query or {}
            return self.applications.list(query, path,
                                          _int_param(query, "Page", 0, 0, 10**6),
                                          _int_param(query, "PageSize", 50, 1, 1000))
        except CreateError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from None

    # --- faults and pacing ----------------------------------------------------------

    def _api_fault(self) -> ApiError | None:
        if not self.faults.api_error_rate or self.rng.random() >= self.faults.api_error_rate:
            return None
        status = self.rng.choice(self.faults.api_error_statuses)
        code, message = FAULT_CODES.get(status, (20500, "Internal Server Error"))
        return ApiError(code, message, status)

    async def _latency(self) -> None:
        if self.faults.api_latency:
            await asyncio.sleep(self.faults.api_latency)

    def _take_slot(self) -> float | None:
        """When the call leaves the queue: Twilio dequeues at the account's CPS.
        In strict mode a create that would have to queue is refused instead."""
        loop_now = asyncio.get_running_loop().time()
        slot = max(loop_now, self._next_slot)
        if self.strict and slot > loop_now + STRICT_GRACE_S:
            return None
        self._next_slot = slot + 1 / self.cps
        return slot

    def _sid(self, prefix: str, rng: random.Random | None = None) -> str:
        return f"{prefix}{(rng or self.rng).getrandbits(128):032x}"

    # --- lifecycle ----------------------------------------------------------------------

    def _start(self, call: Call, outcome: Outcome, slot: float) -> None:
        outbox: asyncio.Queue[Callback | None] = asyncio.Queue()
        self._outboxes[call.sid] = outbox
        loop = asyncio.get_running_loop()
        self._tasks[call.sid] = [loop.create_task(self._lifecycle(call, outcome, slot)),
                                 loop.create_task(self._deliver_all(outbox))]

    def _stop_lifecycle(self, call: Call) -> None:
        tasks = self._tasks.get(call.sid)
        if tasks:
            tasks[0].cancel()

    async def _pause(self, twilio_seconds: float) -> None:
        await asyncio.sleep(twilio_seconds * self.time_scale)

    async def _lifecycle(self, call: Call, outcome: Outcome, slot: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, slot - loop.time()))
        call.queue_time_ms = int((datetime.now(UTC) - call.created_at).total_seconds() * 1000)
        call.start_time = now()
        self._move(call, "initiated")
        if outcome.kind == "failed":
            await self._pause(FAIL_S)
            self._finish(call, "failed")
            return
        await self._pause(DIAL_S)
        self._move(call, "ringing")
        timeout = int(call.first("Timeout") or DEFAULT_TIMEOUT_S)
        if outcome.kind == "busy":
            await self._pause(min(BUSY_S, timeout))
            self._finish(call, "busy")
            return
        if outcome.kind == "no-answer" or timeout <= RING_S:
            await self._pause(timeout)
            self._finish(call, "no-answer")
            return
        await self._pause(RING_S)
        call.answer_time = now()
        detected = self._answered_by(call, outcome)
        if not call.async_amd:
            call.answered_by = detected
        self._move(call, "in-progress")
        self._start_recording(call)
        limit = float(call.first("TimeLimit") or 14400)
        talk_s = min(outcome.talk_s, limit)
        if call.async_amd and detected is not None:
            detection_s = min(talk_s, AMD_MESSAGE_END_S if detected == "machine_end_beep"
                              else AMD_S)
            await self._pause(detection_s)
            call.answered_by = detected
            self._emit_amd(call, detection_s)
            talk_s -= detection_s
            await self._pause(talk_s)
            self._finish(call, "completed", talked_s=talk_s + detection_s)
            return
        await self._pause(talk_s)
        self._finish(call, "completed", talked_s=talk_s)

    @staticmethod
    def _answered_by(call: Call, outcome: Outcome) -> str | None:
        detection = call.first("MachineDetection")
        if not detection:
            return None
        if outcome.kind != "machine":
            return "human"
        return "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"

    def _move(self, call: Call, status: str) -> None:
        call.status = status
        call.updated_at = now()
        self._emit(call, EVENT_OF_STATUS[status], {})

    def _finish(self, call: Call, status: str, talked_s: float | None = None) -> None:
        """`talked_s`: the scenario's talk time, for a call that ran its course; a call ended
        early (an update to the call) talked for the scaled time that passed. The scenario's
        figure, not the clock's, so a loaded machine does not lengthen a simulated call."""
        if call.is_final:
            return
        call.end_time = call.updated_at = now()
        if talked_s is None:
            elapsed = (call.end_time - call.answer_time).total_seconds() if call.answer_time else 0
            talked_s = elapsed / self.time_scale
        call.duration_s = round(talked_s)
        call.status = status
        extra = {"CallDuration": str(call.duration_s), "SipResponseCode": str(SIP_CODES[status]),
                 "Duration": str(call.billed_minutes())}
        recording = self.recordings.get(call.recording_sids[-1]) if call.recording_sids else None
        if recording is not None:
            recording.duration_s = call.duration_s
            recording.status = "completed" if call.duration_s else "absent"
            recording.updated_at = now()
            extra |= {"RecordingSid": recording.sid, "RecordingDuration": str(call.duration_s),
                      "RecordingUrl": self.base_url + recording.media_path}
        self._emit(call, "completed", extra)
        if recording is not None:
            self._emit_recording(call, recording)
        outbox = self._outboxes.pop(call.sid, None)
        if outbox is not None:
            outbox.put_nowait(None)

    def _start_recording(self, call: Call) -> None:
        if (call.first("Record") or "").lower() != "true":
            return
        recording = Recording(
            sid=self._sid("RE", self.callback_rng), account_sid=self.account_sid,
            call_sid=call.sid, channels=2 if call.first("RecordingChannels") == "dual" else 1,
            track=call.first("RecordingTrack") or "both", start_time=now())
        self.recordings[recording.sid] = recording
        call.recording_sids.append(recording.sid)
        self._emit_recording(call, recording)

    # --- callbacks ----------------------------------------------------------------------

    def _queue(self, call: Call, callback: Callback) -> None:
        outbox = self._outboxes.get(call.sid)
        if outbox is not None:
            outbox.put_nowait(callback)

    def _token(self) -> str:
        return f"{self.account_sid}-{self.callback_rng.getrandbits(128):032x}"

    def _emit(self, call: Call, event: str, extra: dict[str, str]) -> None:
        url = call.status_callback
        if not url or event not in call.status_events:
            return
        params = {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_,
                  "To": call.to, "Called": call.to, "Caller": call.from_,
                  "CallStatus": call.status, "Direction": "outbound-api",
                  "ApiVersion": API_VERSION, "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(call.sequence), "Timestamp": rfc2822(now()) or ""}
        if call.answered_by and not call.async_amd:
            params["AnsweredBy"] = call.answered_by
        params |= extra
        self._queue(call, Callback(url, call.status_callback_method, params, self._token(),
                                   call.status in FINAL, "status", call.sid, call.status,
                                   call.sequence))
        call.sequence += 1

    def _emit_recording(self, call: Call, recording: Recording) -> None:
        """Twilio's RecordingStatusCallback: `in-progress` when the recording starts,
        `completed` (or `absent`, for a recording with no audio) after the call ends."""
        url = call.first("RecordingStatusCallback")
        events = event_names(call.params.get("RecordingStatusCallbackEvent", [])) or [
            "completed"]
        if not url or recording.status not in events:
            return
        params = {"AccountSid": call.account_sid, "CallSid": call.sid,
                  "RecordingSid": recording.sid,
                  "RecordingUrl": self.base_url + recording.media_path,
                  "RecordingStatus": recording.status,
                  "RecordingDuration": str(recording.duration_s or 0),
                  "RecordingChannels": str(recording.channels),
                  "RecordingStartTime": rfc2822(recording.start_time) or "",
                  "RecordingSource": "OutboundAPI", "RecordingTrack": recording.track}
        if recording.status == "in-progress":
            del params["RecordingDuration"]
        if recording.status == "absent":
            params["ErrorCode"] = "0"
        method = (call.first("RecordingStatusCallbackMethod") or "POST").upper()
        self._queue(call, Callback(url, method, params, self._token(), True, "recording",
                                   call.sid, call.status, call.kind_sequence("recording")))

    def _emit_amd(self, call: Call, detection_s: float) -> None:
        url = call.first("AsyncAmdStatusCallback")
        if not url or call.answered_by is None:
            return
        params = {"AccountSid": call.account_sid, "CallSid": call.sid,
                  "AnsweredBy": call.answered_by,
                  "MachineDetectionDuration": str(round(detection_s * 1000))}
        method = (call.first("AsyncAmdStatusCallbackMethod") or "POST").upper()
        self._queue(call, Callback(url, method, params, self._token(), True, "amd", call.sid,
                                   call.status, call.kind_sequence("amd")))

    async def _deliver_all(self, outbox: asyncio.Queue[Callback | None]) -> None:
        """One call's callbacks, in order unless the reorder fault holds one back until the
        next one has gone."""
        held: list[Callback] = []
        while (callback := await outbox.get()) is not None:
            if (not callback.final
                    and self.callback_rng.random() < self.faults.callback_reorder_rate):
                held.append(callback)
                continue
            await self._deliver(callback)
            for late in held:
                await self._deliver(late)
            held.clear()
        for late in held:
            await self._deliver(late)

    async def _deliver(self, callback: Callback) -> None:
        if self.callback_rng.random() < self.faults.callback_drop_rate:
            self._record_callback(callback, None, dropped=True)
            return
        times = 2 if self.callback_rng.random() < self.faults.callback_duplicate_rate else 1
        for _ in range(times):
            await self._send(callback)

    async def _send(self, callback: Callback) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S),
                connector=aiohttp.TCPConnector(limit=256))
        url, body = callback.url, urlencode(callback.params)
        if callback.method == "GET":
            url += ("&" if "?" in url else "?") + body
        # Called and signed exactly as given: an encoded URL keeps its percent-escapes
        # (`%2C` stays `%2C`). Credentials and fragments never reach the receiver, and an
        # empty path goes as "/".
        target = URL(url, encoded=True) if url.isascii() else URL(url)
        wire = str(target.origin()) + target.raw_path_qs
        if callback.method == "GET":
            signed = signature(self.auth_token, wire)
        else:
            signed = signature(self.auth_token, wire, callback.params.items())
        headers = {"X-Twilio-Signature": signed, "I-Twilio-Idempotency-Token": callback.token,
                   "User-Agent": "TwilioProxy/1.1 (dialer simulator)"}
        if callback.method != "GET":
            headers["Content-Type"] = FORM_CONTENT_TYPE
        try:
            async with self._session.request(callback.method, target, headers=headers,
                                             data=None if callback.method == "GET"
                                             else body.encode()) as response:
                await response.read()
                self._record_callback(callback, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._record_callback(callback, None, error=f"{type(exc).__name__}: {exc}")

    def _record_callback(self, callback: Callback, status: int | None, dropped: bool = False,
                         error: str | None = None) -> None:
        with self.lock:
            self.callback_log.append(CallbackRecord(
                time.time(), callback.url, callback.method, dict(callback.params),
                callback.call_sid, callback.call_status, callback.sequence, callback.token,
                status, dropped, error, callback.kind))


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(20001, f"{name} must be a whole number from {low} to {high}", 400)
    return int(raw)


def _moment(raw: str, name: str) -> datetime | date:
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(20001, f"{name} must be YYYY-MM-DD or an ISO 8601 time: {raw!r}",
                       400) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _same_day(moment: datetime, bound: datetime | date) -> bool:
    return moment.date() == (bound.date() if isinstance(bound, datetime) else bound)


def _on_or_after(moment: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return moment >= bound
    return moment.date() >= bound


def _on_or_before(moment: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return moment <= bound
    return moment.date() <= bound
