"""worker/adapters/twilio.py: the client takes the environment's proxy settings when it is
built, and honours them on every request without looking them up again.

A tiny local HTTP server plays the proxy: a request that goes through it gets its answer,
one sent directly to the closed API port is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from harness.waiting import free_port
from tests.unit.standins import answer_twilio_error
from worker.adapters.twilio import make_client
from worker.settings import Settings

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")


class _Proxy(BaseHTTPRequestHandler):
    """Answers every POST with Twilio's 503, and remembers the request line's target."""

    targets: list[str]

    def do_POST(self) -> None:  # http.server's naming
        self.targets.append(self.path)
        answer_twilio_error(self, 503, 20500, "from the proxy")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """The proxy's URL, and the targets of the requests it received."""
    targets: list[str] = []
    handler = type("Proxy", (_Proxy,), {"targets": targets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", targets
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def client_at(api_port: int) -> Client:
    return make_client(Settings.from_env({
        "TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{api_port}", "DIALER_TWILIO_TIMEOUT": "2",
    }))


def create(client: Client) -> BaseException:
    try:
        client.calls.create(to="+14155552671", from_="+14155550100",
                            url="https://example.com/voice")
    except Exception as exc:
        return exc
    raise AssertionError("the create was answered with a call")


def test_a_proxy_in_the_environment_carries_every_request(no_proxy_environment, proxy):
    proxy_url, targets = proxy
    api_port = free_port()
    no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
    client = client_at(api_port)
    for _ in range(2):
        exc = create(client)
        assert isinstance(exc, TwilioRestException)
        assert (exc.status, exc.code) == (503, 20500)
    assert targets == [f"http://127.0.0.1:{api_port}/2010-04-01/Accounts/AC123/Calls.json"] * 2


def test_no_proxy_for_the_api_host_goes_direct(no_proxy_environment, proxy):
    proxy_url, targets = proxy
    no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
    no_proxy_environment.setenv("NO_PROXY", "127.0.0.1")
    assert isinstance(create(client_at(free_port())), requests.ConnectionError)
    assert targets == []


def test_the_environment_is_read_when_the_client_is_built(no_proxy_environment, proxy):
    proxy_url, targets = proxy
    client = client_at(free_port())
    no_proxy_environment.setenv("HTTP_PROXY", proxy_url)
    assert isinstance(create(client), requests.ConnectionError)
    assert targets == []
