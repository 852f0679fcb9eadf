"""TwilioCalls.warm over real HTTP: one request to the API base, once, and never an error."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from harness.waiting import free_port
from worker.adapters.twilio import TwilioCalls
from worker.settings import Settings

pytestmark = pytest.mark.integration


class Counting(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads the paths."""


@pytest.fixture
def api() -> Iterator[str]:
    Counting.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def calls(base_url: str) -> TwilioCalls:
    return TwilioCalls(Settings.from_env({
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_BASE_URL": base_url, "DIALER_TWILIO_TIMEOUT": "2"}))


def test_warm_sends_one_request_to_the_api_base_once(api):
    twilio = calls(api)
    twilio.warm()
    twilio.warm()
    assert Counting.paths == ["/"]


def test_warm_against_a_closed_port_raises_nothing():
    twilio = calls(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    twilio.warm()  # the create reports what is wrong, not the warm-up
