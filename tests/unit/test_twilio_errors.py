"""worker/domain/twilio_errors.py: which failed creates may be retried.

The network failures are made for real against tiny local servers, so the
exceptions are exactly what requests (and the twilio client on top of it) raise.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    ProtocolError,
    ReadTimeoutError,
)

from harness.waiting import free_port
from tests.unit.standins import answer_twilio_error
from worker.adapters.twilio import make_client
from worker.domain.twilio_errors import (
    CreateFailure,
    classify_create_error,
    error_code,
    error_message,
)
from worker.settings import Settings

URI = "/2010-04-01/Accounts/AC123/Calls.json"
TRANSIENT, PERMANENT, AMBIGUOUS = (CreateFailure.TRANSIENT, CreateFailure.PERMANENT,
                                   CreateFailure.AMBIGUOUS)


def twilio_error(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(status, URI, f"HTTP {status}", code, method="POST")


# --- Twilio's answers ---------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, None), (429, 20429), (400, 20429),
                                              (503, None), (503, 20500)])
def test_rate_limits_and_unavailable_are_transient(status, code):
    assert classify_create_error(twilio_error(status, code)) is TRANSIENT


@pytest.mark.parametrize(
    ("status", "code"),
    [
        *[(400, code) for code in (21201, 21205, 21210, 21211, 21212, 21213, 21214, 21215,
                                   21216, 21217, 21219)],
        (401, 20003),
        (404, 20404),
        (400, None),
        (403, 21215),
        (422, 99999),
    ],
)
def test_refusals_are_permanent(status, code):
    assert classify_create_error(twilio_error(status, code)) is PERMANENT


@pytest.mark.parametrize(("status", "code"), [(408, None), (500, None), (500, 20500), (502, None),
                                              (504, None)])
def test_server_errors_are_ambiguous(status, code):
    assert classify_create_error(twilio_error(status, code)) is AMBIGUOUS


# --- network failures, shaped as requests raises them -------------------------------------


def test_a_connect_timeout_is_transient():
    assert classify_create_error(requests.ConnectTimeout()) is TRANSIENT
    shaped = requests.ConnectTimeout(
        MaxRetryError(None, URI, ConnectTimeoutError(None, "timed out")))  # type: ignore[arg-type]
    assert classify_create_error(shaped) is TRANSIENT


def test_a_name_resolution_failure_is_transient():
    reason = NameResolutionError("api.example.invalid", None, OSError("no such host"))  # type: ignore[arg-type]
    exc = requests.ConnectionError(MaxRetryError(None, URI, reason))  # type: ignore[arg-type]
    assert classify_create_error(exc) is TRANSIENT


def test_a_shaped_read_timeout_is_ambiguous():
    exc = requests.ReadTimeout(ReadTimeoutError(None, URI, "read timed out"))  # type: ignore[arg-type]
    assert classify_create_error(exc) is AMBIGUOUS


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("boom"),
        RuntimeError("boom"),
        OSError("boom"),
        TimeoutError(),
        requests.ConnectionError(),  # no cause: we cannot tell the request never left
        requests.ConnectionError("connection aborted"),
        requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())),
        requests.exceptions.ChunkedEncodingError(),
        requests.exceptions.SSLError(),
        requests.RequestException(),
        json.JSONDecodeError("bad", "x", 0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_anything_else_is_ambiguous(exc):
    assert classify_create_error(exc) is AMBIGUOUS


# --- real network failures ----------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Listens (the kernel completes the handshake) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def hangup_port() -> Iterator[int]:
    """Accepts, reads the whole request, then closes without a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def caught(fn: object, *args: object, **kwargs: object) -> BaseException:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_connection_refused_is_transient(closed_port):
    exc = caught(requests.post, f"http://127.0.0.1:{closed_port}/Calls.json",
                 data={"To": "+14155552671"}, timeout=2)
    assert isinstance(exc, requests.ConnectionError)
    assert classify_create_error(exc) is TRANSIENT


def test_a_real_read_timeout_is_ambiguous(silent_port):
    exc = caught(requests.post, f"http://127.0.0.1:{silent_port}/Calls.json",
                 data={"To": "+14155552671"}, timeout=0.2)
    assert isinstance(exc, requests.ReadTimeout)
    assert classify_create_error(exc) is AMBIGUOUS


def test_a_server_that_hangs_up_after_the_request_is_ambiguous(hangup_port):
    exc = caught(requests.post, f"http://127.0.0.1:{hangup_port}/Calls.json",
                 data={"To": "+14155552671"}, timeout=2)
    assert isinstance(exc, requests.ConnectionError)
    assert not isinstance(exc, requests.Timeout)
    assert "RemoteDisconnected" in repr(exc.args[0]) or "aborted" in str(exc)
    assert classify_create_error(exc) is AMBIGUOUS


# --- the same through the twilio client worker.adapters.twilio.make_client builds ----------


def client_for(port: int):
    return make_client(Settings.from_env({
        "TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}", "DIALER_TWILIO_TIMEOUT": "0.3",
    }))


def create(client) -> BaseException:
    return caught(client.calls.create, to="+14155552671", from_="+14155550100",
                  url="https://example.com/voice")


class _Answer(BaseHTTPRequestHandler):
    status = 500
    code: int | None = None

    def do_POST(self) -> None:  # http.server's naming
        answer_twilio_error(self, self.status, self.code, "simulated")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def answering_server() -> Iterator[type[_Answer]]:
    handler = type("Answer", (_Answer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.port = server.server_address[1]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield handler
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, TRANSIENT),
        (503, None, TRANSIENT),
        (400, 21211, PERMANENT),
        (401, 20003, PERMANENT),
        (404, 20404, PERMANENT),
        (500, None, AMBIGUOUS),
        (502, None, AMBIGUOUS),
    ],
)
def test_twilio_client_errors_are_classified(answering_server, status, code, expected):
    answering_server.status, answering_server.code = status, code
    exc = create(client_for(answering_server.port))
    assert isinstance(exc, TwilioRestException)
    assert (exc.status, exc.code) == (status, code)
    assert classify_create_error(exc) is expected
    assert error_code(exc) == code
    assert error_message(exc).startswith(f"HTTP {status}")


def test_twilio_client_connection_refused_is_transient(closed_port):
    assert classify_create_error(create(client_for(closed_port))) is TRANSIENT


def test_twilio_client_read_timeout_is_ambiguous(silent_port):
    exc = create(client_for(silent_port))
    assert isinstance(exc, requests.ReadTimeout)
    assert classify_create_error(exc) is AMBIGUOUS


def test_twilio_client_hang_up_is_ambiguous(hangup_port):
    exc = create(client_for(hangup_port))
    assert isinstance(exc, requests.ConnectionError)
    assert classify_create_error(exc) is AMBIGUOUS


# --- what is recorded ---------------------------------------------------------------------


def test_error_code_and_message():
    exc = TwilioRestException(400, URI, "The 'To' number is not a valid phone number.", 21211)
    assert error_code(exc) == 21211
    assert error_message(exc) == "HTTP 400: The 'To' number is not a valid phone number."
    assert error_code(ValueError("x")) is None
    assert error_message(ValueError("bad thing")) == "ValueError: bad thing"
    assert len(error_message(RuntimeError("x" * 2000))) == 500
