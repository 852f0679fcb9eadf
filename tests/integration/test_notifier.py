"""The notifier's POSTs over real HTTP: kept-alive connections, no redirect followed, and the
environment's proxy settings honoured as requests honours them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from worker.adapters.http import PooledNotifier

pytestmark = pytest.mark.integration

BODY = b'{"id":"msg_1"}'
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1"}


@dataclass
class Server:
    """Answers each POST with `answer` (a redirect for 307), noting the request line's
    target, the body and the client's port (one port per connection)."""
    answer: int = 204
    targets: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    url: str = ""


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: int = 204) -> Server:
        seen = Server(answer)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                seen.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                seen.targets.append(self.path)
                seen.ports.add(self.client_address[1])
                self.send_response(seen.answer)
                if seen.answer == 307:
                    self.send_header("Location", seen.url + "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        seen.url = f"http://127.0.0.1:{server.server_address[1]}"
        return seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_posts_share_one_kept_alive_connection(serve: Any) -> None:
    receiver = serve()
    notifier = PooledNotifier()
    answers = [notifier.post(receiver.url + "/hooks", BODY, HEADERS, 5) for _ in range(3)]
    assert answers == [204] * 3
    assert receiver.bodies == [BODY] * 3
    assert len(receiver.ports) == 1


def test_a_redirect_is_answered_not_followed(serve: Any) -> None:
    receiver = serve(307)
    assert PooledNotifier().post(receiver.url + "/hooks", BODY, HEADERS, 5) == 307
    assert receiver.targets == ["/hooks"]


def test_the_environments_proxy_carries_the_post_unless_no_proxy_names_the_host(
        serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert PooledNotifier().post("http://receiver.test/hooks", BODY, HEADERS, 5) == 204
    # A proxy receives the absolute URL in the request line.
    assert proxy.targets == ["http://receiver.test/hooks"]
    assert proxy.bodies == [BODY]

    receiver = serve()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert PooledNotifier().post(receiver.url + "/hooks", BODY, HEADERS, 5) == 204
    assert receiver.targets == ["/hooks"]
    assert proxy.targets == ["http://receiver.test/hooks"]
