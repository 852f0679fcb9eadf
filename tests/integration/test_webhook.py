"""The webhook over real HTTP against a real redis-server: what it accepts, what it refuses,
and exactly what it publishes (read back from the `events` list the worker consumes)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

from harness.servers import RedisServer
from harness.stack import clean_environ
from harness.waiting import free_port, wait_for
from tests.data import STATUS_CALLBACKS
from webhook import create_app
from worker.demo.processes import Process, wait_port, webhook_argv
from worker.domain.names import (
    AMD_CALLBACK_PATH,
    EVENTS_QUEUE,
    HANDLE_AMD_TASK,
    HANDLE_RECORDING_TASK,
    HANDLE_STATUS_TASK,
    RECORDING_CALLBACK_PATH,
)
from worker.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "webhook-test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2
RECORDING_SID = "RE" + "0123456789abcdef" * 2
PHONE = "+14155550123"
PATH = "/twilio/status"

Params = Mapping[str, str] | MultiDict[str, str]


def callback(**overrides: str | None) -> dict[str, str]:
    """A small valid status callback; an override of None drops the field."""
    params = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "CallStatus": "completed",
              "To": PHONE, "From": "+15105550100", "SequenceNumber": "3", "CallDuration": "7"}
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def recording_callback(**overrides: str | None) -> dict[str, str]:
    """A recording status callback as Twilio documents it; an override of None drops a field."""
    params = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "RecordingSid": RECORDING_SID,
              "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
                              f"/Recordings/{RECORDING_SID}",
              "RecordingStatus": "completed", "RecordingDuration": "6",
              "RecordingChannels": "1", "RecordingStartTime": "Tue, 01 Dec 2026 10:00:00 +0000",
              "RecordingSource": "OutboundAPI", "RecordingTrack": "both", "ErrorCode": "0"}
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def amd_callback(**overrides: str | None) -> dict[str, str]:
    """An asynchronous AMD callback as Twilio documents it."""
    params = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "AnsweredBy": "machine_end_beep",
              "MachineDetectionDuration": "4210"}
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def sign(url: str, params: Params, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, MultiDict):
        return list(params.items(multi=True))
    return list(params.items())


@dataclass
class Served:
    base: str
    settings: Settings
    app: Flask | None = None

    @property
    def url(self) -> str:
        return self.base + PATH

    def post(self, params: Params, *, target: str = PATH, signed_for: str | None = None,
             token: str = TOKEN, headers: Mapping[str, str] | None = None) -> requests.Response:
        """POST `params` to `target`, signed for `signed_for` (by default the URL posted to).

        The target goes on the wire byte for byte (requests would normalise %7E to ~), as
        Twilio sends the URL it signed.
        """
        url = self.base + target
        all_headers = {"X-Twilio-Signature": sign(signed_for or url, params, token),
                       **(headers or {})}
        with requests.Session() as session:
            prepared = session.prepare_request(
                requests.Request("POST", url, data=_pairs(params), headers=all_headers))
            prepared.url = url
            return session.send(prepared, timeout=10)


def settings_env(redis_url: str, public_url: str, **env: str) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TOKEN,
            "DIALER_PUBLIC_URL": public_url, "DIALER_REDIS_URL": redis_url, **env}


@contextmanager
def serve(redis_url: str, prepare: Callable[[Flask], None] | None = None,
          **env: str) -> Iterator[Served]:
    """create_app() behind werkzeug's threaded HTTP server on a port of its own choosing."""
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)
    base = f"http://127.0.0.1:{server.port}"
    settings = Settings.from_env(settings_env(redis_url, base, **env))
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Served(base, settings, app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def webhook(redis_server: RedisServer, broker: redis.Redis) -> Iterator[Served]:
    with serve(redis_server.url) as served:
        yield served


def published(client: redis.Redis) -> list[dict[str, Any]]:
    """The task messages in `events`, oldest first, with the body decoded (protocol 2)."""
    messages = []
    for raw in reversed(client.lrange(EVENTS_QUEUE, 0, -1)):
        message = json.loads(raw)
        assert message["properties"]["body_encoding"] == "base64"
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append({"task": message["headers"]["task"], "args": args, "kwargs": kwargs})
    return messages


def test_valid_callback_is_published_once(webhook: Served, broker: redis.Redis) -> None:
    params = callback()
    response = webhook.post(params, headers={"I-Twilio-Idempotency-Token": "idem-1"})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert published(broker) == [{
        "task": HANDLE_STATUS_TASK, "args": [],
        "kwargs": {"params": params, "idempotency_token": "idem-1", "source": "callback"},
    }]


def test_message_headers_name_the_call_but_not_the_numbers(webhook: Served,
                                                          broker: redis.Redis) -> None:
    params = callback()
    assert webhook.post(params).status_code == 204
    headers = json.loads(broker.lindex(EVENTS_QUEUE, 0))["headers"]
    assert headers["argsrepr"] == "()"
    assert params["CallSid"] in headers["kwargsrepr"]
    assert params["CallStatus"] in headers["kwargsrepr"]
    assert params["To"] not in headers["kwargsrepr"]
    assert params["From"] not in headers["kwargsrepr"]


def test_without_idempotency_token_publishes_none(webhook: Served, broker: redis.Redis) -> None:
    assert webhook.post(callback()).status_code == 204
    assert published(broker)[0]["kwargs"]["idempotency_token"] is None


@pytest.mark.parametrize("case", ["forged", "missing", "other-url", "wrong-token"])
def test_bad_signature_is_refused(webhook: Served, broker: redis.Redis,
                                  caplog: pytest.LogCaptureFixture, case: str) -> None:
    params = callback()
    headers: dict[str, str] = {}
    if case == "forged":
        headers["X-Twilio-Signature"] = base64.b64encode(b"x" * 20).decode()
        response = webhook.post(params, headers=headers)
    elif case == "missing":
        response = requests.post(webhook.url, data=params, timeout=10)
    elif case == "other-url":
        response = webhook.post(params, signed_for=webhook.base + "/twilio/other")
    else:
        response = webhook.post(params, token="not-the-" + TOKEN)
    assert response.status_code == 403
    assert "signature" in response.json()["error"]
    assert published(broker) == []
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("webhook")]
    assert warnings, "a refused callback is logged"
    for text in warnings:
        assert TOKEN not in text
        assert PHONE not in text and "+15105550100" not in text
        if case != "missing":
            assert response.request.headers["X-Twilio-Signature"] not in text


def test_no_auth_token_refuses_everything(redis_server: RedisServer,
                                          broker: redis.Redis) -> None:
    with serve(redis_server.url, TWILIO_AUTH_TOKEN="") as served:
        assert served.post(callback()).status_code == 403
    assert published(broker) == []


@pytest.mark.parametrize(("overrides", "field"), [
    ({"CallSid": None}, "CallSid"),
    ({"CallSid": "CA123"}, "CallSid"),
    ({"CallSid": "PN" + "0" * 32}, "CallSid"),
    ({"CallSid": CALL_SID + "0"}, "CallSid"),
    ({"CallStatus": None}, "CallStatus"),
    ({"CallStatus": "dialing"}, "CallStatus"),
    ({"CallStatus": ""}, "CallStatus"),
])
def test_bad_fields_are_400_naming_the_field(webhook: Served, broker: redis.Redis,
                                             overrides: dict[str, str | None],
                                             field: str) -> None:
    response = webhook.post(callback(**overrides))
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert published(broker) == []


def test_body_over_the_limit_is_413(webhook: Served, broker: redis.Redis) -> None:
    limit = webhook.settings.webhook_max_body
    response = webhook.post(callback(Padding="x" * limit))
    assert response.status_code == 413
    assert response.json()["error"]
    assert published(broker) == []


def test_chunked_body_over_the_limit_is_413(webhook: Served, broker: redis.Redis) -> None:
    """No Content-Length to refuse on: the limit holds while reading the stream."""
    body = b"CallSid=" + CALL_SID.encode() + b"&Padding=" + b"x" * 1024

    def chunks() -> Iterator[bytes]:
        for _ in range(webhook.settings.webhook_max_body // len(body) + 2):
            yield body

    response = requests.post(webhook.url, data=chunks(), timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})
    assert response.status_code == 413
    assert published(broker) == []


def test_get_is_405(webhook: Served) -> None:
    response = requests.get(webhook.url, timeout=10)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.json()["error"]


@pytest.mark.parametrize("body", [
    b"CallSid=" + CALL_SID.encode() + b"&CallStatus=completed&To=\xff\xfe",
    b"CallSid=" + CALL_SID.encode() + b"&CallStatus=completed&To=%FF%FE",
])
def test_non_utf8_body_is_400(webhook: Served, broker: redis.Redis, body: bytes) -> None:
    response = requests.post(webhook.url, data=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(webhook.url, callback())})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]
    assert published(broker) == []


def test_body_of_another_content_type_is_no_form(webhook: Served, broker: redis.Redis) -> None:
    """Only a form content type makes the body fields, as werkzeug's `request.form`: the same
    bytes sent as text/plain are signed for the URL alone, so their signature fails."""
    params = callback()
    response = webhook.post(params, headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert webhook.post(params, signed_for=webhook.url, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}).status_code == 204
    assert len(published(broker)) == 1


def test_repeated_keys_are_part_of_the_signature(webhook: Served, broker: redis.Redis) -> None:
    params = MultiDict([*callback().items(), ("StatusCallbackEvent", "initiated"),
                        ("StatusCallbackEvent", "completed")])
    # Signed over one of the two values only: the second one was not signed.
    forged = webhook.post(params, headers={"X-Twilio-Signature": sign(
        webhook.url, {**callback(), "StatusCallbackEvent": "initiated"})})
    assert forged.status_code == 403
    assert published(broker) == []

    assert webhook.post(params).status_code == 204
    [message] = published(broker)
    assert message["kwargs"]["params"] == params.to_dict(flat=True)


def test_signature_covers_the_raw_query_string(webhook: Served, broker: redis.Redis) -> None:
    """Escapes that request.url would re-encode (%7E, %2F, +) must verify as sent."""
    target = PATH + "?campaign=a+b%2Fc&note=%7Ex%20y&empty="
    assert webhook.post(callback(), target=target).status_code == 204
    assert len(published(broker)) == 1


def test_signature_without_the_port_is_refused_at_a_port(webhook: Served,
                                                         broker: redis.Redis) -> None:
    """Twilio signs the URL as configured, port included; twilio's own validator would also
    take the signature made for the same URL without its port."""
    assert webhook.base.count(":") == 2
    without_port = webhook.base.rsplit(":", 1)[0] + PATH
    assert webhook.post(callback(), signed_for=without_port).status_code == 403
    assert published(broker) == []
    assert webhook.post(callback()).status_code == 204  # signed for base + PATH, port and all
    assert len(published(broker)) == 1


@pytest.mark.parametrize(("public_url", "other"), [
    ("https://public.example", "https://public.example:443"),
    ("https://public.example:443", "https://public.example"),
    ("http://public.example", "http://public.example:80"),
    ("http://public.example:80", "http://public.example"),
])
def test_default_port_counts_as_written_in_the_public_url(redis_server: RedisServer,
                                                         broker: redis.Redis, public_url: str,
                                                         other: str) -> None:
    """DIALER_PUBLIC_URL is what the worker gives Twilio, so what Twilio signs: with or
    without its default port, only that spelling verifies."""
    with serve(redis_server.url, DIALER_PUBLIC_URL=public_url) as served:
        assert served.post(callback(), signed_for=other + PATH).status_code == 403
        assert published(broker) == []
        assert served.post(callback(), signed_for=public_url + PATH).status_code == 204
    assert len(published(broker)) == 1


def test_trusted_proxy_host_port_is_part_of_the_url(redis_server: RedisServer,
                                                    broker: redis.Redis) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example:8443"}
    with serve(redis_server.url, DIALER_TRUSTED_PROXIES="1") as served:
        assert served.post(callback(), signed_for="https://public.example" + PATH,
                           headers=headers).status_code == 403
        assert published(broker) == []
        assert served.post(callback(), signed_for="https://public.example:8443" + PATH,
                           headers=headers).status_code == 204
    assert len(published(broker)) == 1


def test_trusted_proxy_headers_rebuild_the_url(redis_server: RedisServer,
                                               broker: redis.Redis) -> None:
    public = "https://public.example" + PATH
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example",
               "X-Forwarded-For": "203.0.113.7"}
    with serve(redis_server.url, DIALER_TRUSTED_PROXIES="1") as served:
        assert served.post(callback(), signed_for=public, headers=headers).status_code == 204
        # Signed for the backend address, but the proxy says the client called public.example.
        assert served.post(callback(), headers=headers).status_code == 403
    assert len(published(broker)) == 1

    with serve(redis_server.url, DIALER_TRUSTED_PROXIES="0") as served:
        assert served.post(callback(), signed_for=public, headers=headers).status_code == 403
        assert served.post(callback(), headers=headers).status_code == 204
    assert len(published(broker)) == 2


def test_trusted_proxy_prefix(redis_server: RedisServer, broker: redis.Redis) -> None:
    """A proxy that strips /dialer says so in X-Forwarded-Prefix; the signed URL keeps it."""
    public = "https://public.example/dialer" + PATH
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example",
               "X-Forwarded-Prefix": "/dialer"}
    with serve(redis_server.url, DIALER_TRUSTED_PROXIES="1") as served:
        assert served.post(callback(), signed_for=public, headers=headers).status_code == 204
    assert len(published(broker)) == 1


def test_every_documented_callback_body_is_accepted(webhook: Served,
                                                    broker: redis.Redis) -> None:
    fixtures = json.loads(STATUS_CALLBACKS.read_text())
    bodies = [body for name, value in fixtures.items() if name != "_about"
              for body in (value if isinstance(value, list) else [value])]
    assert len(bodies) >= 8
    for body in bodies:
        response = webhook.post(body)
        assert response.status_code == 204, (body.get("CallStatus"), response.text)
    assert [m["kwargs"]["params"] for m in published(broker)] == bodies


def test_healthz_ok(webhook: Served) -> None:
    response = requests.get(webhook.base + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"broker": "ok"}


def test_broker_down_is_503_fast_and_recovers(tmp_path: Path) -> None:
    own = RedisServer(tmp_path).start()
    try:
        with serve(own.url) as served:
            assert served.post(callback()).status_code == 204
            own.stop()

            started = time.monotonic()
            response = served.post(callback())
            assert response.status_code == 503
            assert response.json() == {"error": "broker unavailable"}
            health = requests.get(served.base + "/healthz", timeout=10)
            assert health.status_code == 503
            assert health.json() == {"broker": "unreachable"}
            assert time.monotonic() - started < 5

            own.start()
            wait_for(lambda: requests.get(served.base + "/healthz", timeout=10).ok,
                     timeout=10, what="/healthz to see the broker again")
            assert served.post(callback()).status_code == 204
            assert len(published(redis.Redis.from_url(own.url))) == 1  # no persistence
    finally:
        own.stop()


def test_unexpected_error_is_a_generic_500(redis_server: RedisServer,
                                           broker: redis.Redis) -> None:
    def boom() -> str:
        raise RuntimeError("secret detail " + TOKEN)

    def add_route(app: Flask) -> None:
        app.add_url_rule("/boom", view_func=boom)

    with serve(redis_server.url, prepare=add_route) as served:
        response = requests.get(served.base + "/boom", timeout=10)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_webhook_imports_no_database_code() -> None:
    """Of the worker package, only the settings, the logs, the pure domain layer and the
    Celery message format."""
    allowed = ("worker.settings", "worker.logs", "worker.adapters",
               "worker.adapters.task_messages")
    code = ("import sys, webhook; webhook.create_app; "
            "bad = [m for m in sys.modules if m == 'sqlalchemy' or m.startswith('sqlalchemy.')"
            f" or (m.startswith('worker.') and m not in {allowed!r}"
            " and m != 'worker.domain' and not m.startswith('worker.domain.'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


@dataclass
class Deployed(Served):
    """The webhook under gunicorn exactly as `webhook_argv` (and docs/WEBHOOK.md) runs it."""

    process: Process | None = None
    port: int = 0

    def log_since(self, offset: int) -> str:
        assert self.process is not None
        return self.process.log()[offset:]

    def log_size(self) -> int:
        return len(self.process.log()) if self.process is not None else 0


@pytest.fixture(scope="module")
def deployed(redis_server: RedisServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**clean_environ(), **settings_env(redis_server.url, base), "PYTHONPATH": str(ROOT)}
    process = Process("webhook", webhook_argv(port), env, tmp_path_factory.mktemp("webhook"))
    try:
        wait_port(process, port, timeout=30)
        yield Deployed(base, Settings.from_env(settings_env(redis_server.url, base)),
                       process=process, port=port)
    finally:
        process.stop()


def test_under_gunicorn(deployed: Deployed, broker: redis.Redis) -> None:
    """The documented command, with gunicorn's RAW_URI and chunked input."""
    target = PATH + "?campaign=a+b%2Fc&note=%7Ex"
    assert deployed.post(callback(), target=target).status_code == 204
    assert deployed.post(callback(), target=target, token="wrong").status_code == 403

    body = urlencode(callback()).encode()
    response = requests.post(deployed.url, data=iter([body[:20], body[20:]]), timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "X-Twilio-Signature": sign(deployed.url, callback())})
    assert response.status_code == 204, response.text
    assert len(published(broker)) == 2


def _head(deployed: Deployed, params: Params, *, length: int | None = None,
          close: bool = False) -> bytes:
    """A signed callback's request line and headers: a Content-Length, or chunked."""
    framing = (f"Content-Length: {length}" if length is not None
               else "Transfer-Encoding: chunked")
    lines = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{deployed.port}",
             "Content-Type: application/x-www-form-urlencoded", framing,
             f"X-Twilio-Signature: {sign(deployed.url, params)}",
             *(["Connection: close"] if close else [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP response off a raw socket (http.client parses it)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


SLOW_CLIENTS = 64
IDLE_CLIENTS = 16


def test_slow_and_idle_clients_leave_room_for_a_callback(deployed: Deployed,
                                                         broker: redis.Redis) -> None:
    """Clients that send headers and never the body, kept-alive and silent connections:
    none of them holds what a genuine callback needs."""
    params = callback()
    body = urlencode(params).encode()
    with ExitStack() as stack:
        for _ in range(IDLE_CLIENTS):  # kept alive after an answered request
            conn = http.client.HTTPConnection("127.0.0.1", deployed.port, timeout=10)
            stack.callback(conn.close)
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() and conn.sock is not None
        for _ in range(IDLE_CLIENTS):  # connected, never a byte
            stack.enter_context(socket.create_connection(("127.0.0.1", deployed.port),
                                                         timeout=10))
        slow = [stack.enter_context(socket.create_connection(("127.0.0.1", deployed.port),
                                                             timeout=10))
                for _ in range(SLOW_CLIENTS)]
        for sock in slow:
            sock.sendall(_head(deployed, params, length=len(body)))

        started = time.monotonic()
        response = deployed.post(callback(CallStatus="ringing"))
        assert response.status_code == 204, response.text
        assert time.monotonic() - started < 2.0
        assert [m["kwargs"]["params"]["CallStatus"] for m in published(broker)] == ["ringing"]

        # They were held, not dropped: each body still arrives and is a callback.
        for sock in slow:
            sock.sendall(body)
        assert [_response(sock)[0] for sock in slow] == [204] * SLOW_CLIENTS
    assert len(published(broker)) == 1 + SLOW_CLIENTS


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


BODY = urlencode(callback()).encode()
MALFORMED_CHUNKED = {
    "size-not-hex": b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size-too-small": f"{len(BODY) - 5:x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n",
    "second-chunk-bad": _chunk(BODY[:10]) + b"-1\r\n" + BODY[10:] + b"\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "close"])
@pytest.mark.parametrize("name", list(MALFORMED_CHUNKED))
def test_malformed_chunked_body_is_400_without_a_traceback(deployed: Deployed,
                                                           broker: redis.Redis, name: str,
                                                           close: bool) -> None:
    offset = deployed.log_size()
    with socket.create_connection(("127.0.0.1", deployed.port), timeout=10) as sock:
        sock.sendall(_head(deployed, callback(), close=close) + MALFORMED_CHUNKED[name])
        status, body = _response(sock)
    assert status == 400, body
    assert "body could not be read" in json.loads(body)["error"]
    assert published(broker) == []
    # The connection's framing is lost: whatever gunicorn does next is no error of ours.
    assert deployed.post(callback()).status_code == 204
    log = deployed.log_since(offset)
    assert "Traceback" not in log and "ERROR" not in log, log


# The recording and AMD callbacks take the status callback's path through the webhook:
# the same checks, then their own required fields and task.
OTHER_CALLBACKS = [
    pytest.param(RECORDING_CALLBACK_PATH, recording_callback, HANDLE_RECORDING_TASK,
                 id="recording"),
    pytest.param(AMD_CALLBACK_PATH, amd_callback, HANDLE_AMD_TASK, id="amd"),
]


@pytest.mark.parametrize(("path", "make", "task"), OTHER_CALLBACKS)
def test_recording_and_amd_callbacks_are_published_to_their_task(
        webhook: Served, broker: redis.Redis, path: str, make: Callable[..., dict[str, str]],
        task: str) -> None:
    params = make()
    response = webhook.post(params, target=path, headers={"I-Twilio-Idempotency-Token": "i-2"})
    assert response.status_code == 204, response.text
    assert published(broker) == [{
        "task": task, "args": [],
        "kwargs": {"params": params, "idempotency_token": "i-2", "source": "callback"},
    }]
    headers = json.loads(broker.lindex(EVENTS_QUEUE, 0))["headers"]
    assert CALL_SID in headers["kwargsrepr"]


@pytest.mark.parametrize(("path", "make", "task"), OTHER_CALLBACKS)
def test_recording_and_amd_callbacks_with_a_bad_signature_are_403(
        webhook: Served, broker: redis.Redis, caplog: pytest.LogCaptureFixture, path: str,
        make: Callable[..., dict[str, str]], task: str) -> None:
    # Signed for the status path: a signature is only good for the URL Twilio called.
    assert webhook.post(make(), target=path, signed_for=webhook.url).status_code == 403
    assert webhook.post(make(), target=path, token="not-the-" + TOKEN).status_code == 403
    unsigned = requests.post(webhook.base + path, data=make(), timeout=10)
    assert unsigned.status_code == 403
    assert published(broker) == []
    kind = path.rsplit("/", 1)[1]
    assert any(f"refused a callback ({kind})" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("path", "params", "field"), [
    (RECORDING_CALLBACK_PATH, recording_callback(CallSid=None), "CallSid"),
    (RECORDING_CALLBACK_PATH, recording_callback(CallSid="CA123"), "CallSid"),
    (RECORDING_CALLBACK_PATH, recording_callback(RecordingSid=None), "RecordingSid"),
    (RECORDING_CALLBACK_PATH, recording_callback(RecordingSid=CALL_SID), "RecordingSid"),
    (RECORDING_CALLBACK_PATH, recording_callback(RecordingSid=RECORDING_SID + "0"),
     "RecordingSid"),
    (RECORDING_CALLBACK_PATH, recording_callback(RecordingStatus=None), "RecordingStatus"),
    (RECORDING_CALLBACK_PATH, recording_callback(RecordingStatus="paused"), "RecordingStatus"),
    (AMD_CALLBACK_PATH, amd_callback(CallSid=None), "CallSid"),
    (AMD_CALLBACK_PATH, amd_callback(CallSid="RE" + "0" * 32), "CallSid"),
    (AMD_CALLBACK_PATH, amd_callback(AnsweredBy=None), "AnsweredBy"),
    (AMD_CALLBACK_PATH, amd_callback(AnsweredBy="robot"), "AnsweredBy"),
])
def test_recording_and_amd_bad_fields_are_400_naming_the_field(
        webhook: Served, broker: redis.Redis, path: str, params: dict[str, str],
        field: str) -> None:
    response = webhook.post(params, target=path)
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert published(broker) == []


@pytest.mark.parametrize("status", ["in-progress", "completed", "absent", "failed"])
def test_every_recording_status_is_accepted(webhook: Served, broker: redis.Redis,
                                            status: str) -> None:
    params = recording_callback(RecordingStatus=status)
    assert webhook.post(params, target=RECORDING_CALLBACK_PATH).status_code == 204
    assert published(broker)[0]["kwargs"]["params"]["RecordingStatus"] == status


@pytest.mark.parametrize(("path", "make", "task"), OTHER_CALLBACKS)
def test_recording_and_amd_signatures_cover_the_raw_query_string(
        webhook: Served, broker: redis.Redis, path: str, make: Callable[..., dict[str, str]],
        task: str) -> None:
    target = path + "?job=a+b%2Fc&note=%7Ex%20y"
    assert webhook.post(make(), target=target).status_code == 204
    assert webhook.post(make(), target=target, signed_for=webhook.base + path).status_code == 403
    assert [m["task"] for m in published(broker)] == [task]


@pytest.mark.parametrize(("path", "make", "task"), OTHER_CALLBACKS)
def test_recording_and_amd_callbacks_behind_a_trusted_proxy(
        redis_server: RedisServer, broker: redis.Redis, path: str,
        make: Callable[..., dict[str, str]], task: str) -> None:
    public = "https://public.example" + path
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}
    with serve(redis_server.url, DIALER_TRUSTED_PROXIES="1") as served:
        assert served.post(make(), target=path, signed_for=public,
                           headers=headers).status_code == 204
        assert served.post(make(), target=path, headers=headers).status_code == 403
    assert [m["task"] for m in published(broker)] == [task]


def test_metrics_count_each_kind_of_callback(webhook: Served, broker: redis.Redis) -> None:
    def count(kind: str, result: str) -> float:
        text = requests.get(webhook.base + "/metrics", timeout=10).text
        line = f'dialer_callbacks_total{{callback="{kind}",result="{result}"}} '
        found = [float(row.split(" ")[1]) for row in text.splitlines() if row.startswith(line)]
        return found[0] if found else 0.0

    before = {(k, r): count(k, r) for k in ("status", "recording", "amd")
              for r in ("accepted", "bad_request", "bad_signature")}
    assert webhook.post(recording_callback(), target=RECORDING_CALLBACK_PATH).status_code == 204
    assert webhook.post(amd_callback(AnsweredBy="x"), target=AMD_CALLBACK_PATH).status_code == 400
    assert requests.post(webhook.base + AMD_CALLBACK_PATH, data=amd_callback(),
                         timeout=10).status_code == 403
    assert webhook.post(callback()).status_code == 204
    after = {key: count(*key) for key in before}
    assert {key: after[key] - before[key] for key in before if after[key] != before[key]} == {
        ("recording", "accepted"): 1, ("amd", "bad_request"): 1, ("amd", "bad_signature"): 1,
        ("status", "accepted"): 1}
