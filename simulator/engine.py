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

from simulator.create_rules import CreateError, check_create
from simulator.records import CallbackRecord, CreateRecord, Faults
from simulator.resources import API_VERSION, FINAL, SIP_CODES, Call, error_body, now, rfc2822
from simulator.scenario import Outcome, Scenario
from simulator.signing import signature

log = logging.getLogger(__name__)

# A call's timeline in Twilio seconds, multiplied by the time scale.
DIAL_S = 1.0  # initiated -> ringing
RING_S = 3.0  # ringing -> answered
BUSY_S = 2.0  # ringing -> busy
FAIL_S = 0.5  # initiated -> failed
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
    url: str
    method: str
    params: dict[str, str]
    token: str
    final: bool


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
        self.calls[call.sid] = call
        self._start(call, outcome, slot)
        await self._latency()
        if fault:
            return answer(fault.status, fault.body, sid=call.sid, code=fault.body["code"])
        return answer(201, call.to_json(), sid=call.sid)

    def fetch(self, sid: str) -> dict[str, Any]:
        return self._call(sid).to_json()

    def update(self, sid: str, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """`Status=canceled` ends a queued or ringing call; `completed` hangs up (and, on a
        call not answered yet, cancels it). A finished call cannot be changed (21220)."""
        call = self._call(sid)
        status = (form.get("Status") or [None])[0]
        if status not in (None, "canceled", "completed"):
            raise ApiError(20001, f"Status must be canceled or completed, not {status!r}", 400)
        if call.is_final:
            raise ApiError(21220, "Call is not in-progress. Cannot redirect.", 400)
        if status == "completed" or (status == "canceled" and call.status != "in-progress"):
            self._stop_lifecycle(call)
            self._finish(call, "completed" if call.status == "in-progress" else "canceled")
        return call.to_json()

    def delete(self, sid: str) -> None:
        call = self._call(sid)
        if not call.is_final:
            raise ApiError(20009, "Cannot delete a call that is in progress", 400)
        del self.calls[sid]

    def list_calls(self, query: Mapping[str, str], path: str) -> dict[str, Any]:
        page_size = _int_param(query, "PageSize", 50, 1, 1000)
        page = _int_param(query, "Page", 0, 0, 10**6)
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
        chosen = calls[page * page_size:(page + 1) * page_size]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return path + "?" + urlencode({**filters, "PageSize": page_size, "Page": n})

        more = len(calls) > (page + 1) * page_size
        return {"calls": [c.to_json() for c in chosen], "page": page, "page_size": page_size,
                "start": page * page_size, "end": page * page_size + max(len(chosen) - 1, 0),
                "uri": uri(page), "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if more else None,
                "previous_page_uri": uri(page - 1) if page > 0 else None}

    def _call(self, sid: str) -> Call:
        call = self.calls.get(sid)
        if call is None:
            raise ApiError(20404, f"The requested resource /{API_VERSION}/Accounts/"
                           f"{self.account_sid}/Calls/{sid}.json was not found", 404)
        return call

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
        call.answered_by = self._answered_by(call, outcome)
        self._move(call, "in-progress")
        limit = float(call.first("TimeLimit") or 14400)
        talk_s = min(outcome.talk_s, limit)
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
        extra = {"CallDuration": str(call.duration_s), "SipResponseCode": str(SIP_CODES[status])}
        if status == "completed":
            extra["Duration"] = str(call.billed_minutes())
            if (call.first("Record") or "").lower() == "true" and call.answer_time:
                recording = self._sid("RE", self.callback_rng)
                extra |= {"RecordingSid": recording, "RecordingDuration": str(call.duration_s),
                          "RecordingUrl": f"{self.base_url}/{API_VERSION}/Accounts/"
                                          f"{self.account_sid}/Recordings/{recording}"}
        self._emit(call, "completed", extra)
        outbox = self._outboxes.pop(call.sid, None)
        if outbox is not None:
            outbox.put_nowait(None)

    # --- status callbacks ---------------------------------------------------------------

    def _emit(self, call: Call, event: str, extra: dict[str, str]) -> None:
        url = call.first("StatusCallback")
        requested = call.params.get("StatusCallbackEvent") or ["completed"]
        outbox = self._outboxes.get(call.sid)
        if not url or event not in requested or outbox is None:
            return
        params = {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_,
                  "To": call.to, "Called": call.to, "Caller": call.from_,
                  "CallStatus": call.status, "Direction": "outbound-api",
                  "ApiVersion": API_VERSION, "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(call.sequence), "Timestamp": rfc2822(now()) or ""}
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        params |= extra
        call.sequence += 1
        token = f"{self.account_sid}-{self.callback_rng.getrandbits(128):032x}"
        method = (call.first("StatusCallbackMethod") or "POST").upper()
        outbox.put_nowait(Callback(url, method, params, token, call.status in FINAL))

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
        url, data = callback.url, callback.params
        if callback.method == "GET":
            url += ("&" if "?" in url else "?") + urlencode(callback.params)
        # Sign the URL as the receiver sees it arrive: aiohttp requotes the query (%2C -> ",")
        # and sends "/" for an empty path; credentials and fragments never reach it.
        target = URL(url)
        wire = str(target.origin()) + target.raw_path_qs
        if callback.method == "GET":
            signed = signature(self.auth_token, wire)
        else:
            signed = signature(self.auth_token, wire, data.items())
        headers = {"X-Twilio-Signature": signed, "I-Twilio-Idempotency-Token": callback.token,
                   "User-Agent": "TwilioProxy/1.1 (dialer simulator)"}
        try:
            async with self._session.request(callback.method, target, headers=headers,
                                             data=None if callback.method == "GET" else data
                                             ) as response:
                await response.read()
                self._record_callback(callback, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._record_callback(callback, None, error=f"{type(exc).__name__}: {exc}")

    def _record_callback(self, callback: Callback, status: int | None, dropped: bool = False,
                         error: str | None = None) -> None:
        params = callback.params
        with self.lock:
            self.callback_log.append(CallbackRecord(
                time.time(), callback.url, callback.method, dict(params), params["CallSid"],
                params["CallStatus"], int(params["SequenceNumber"]), callback.token, status,
                dropped, error))


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
