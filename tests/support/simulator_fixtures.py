"""Fixtures for the simulator: one on a free port, and an HTTP listener that records callbacks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN
from simulator import Simulator


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with the raw query string, as sent
    headers: dict[str, str]
    form: list[tuple[str, str]]  # body pairs for POST, query pairs for GET

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)


class CallbackListener:
    """A real HTTP server on a free port that answers `status` and records every request."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self._received: list[Received] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                query = urlsplit(self.path).query
                pairs = parse_qsl(body if self.command == "POST" else query,
                                  keep_blank_values=True)
                with listener._lock:
                    listener._received.append(Received(self.command, self.path,
                                                       dict(self.headers.items()), pairs))
                self.send_response(listener.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests read the records instead."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A simulator at test speed (time scale 0.01) with a high CPS, on a free port."""
    sim = Simulator(account_sid=SIM_ACCOUNT_SID, auth_token=SIM_AUTH_TOKEN, cps=1000,
                    time_scale=0.01, seed=1).start()
    yield sim
    sim.stop()


@pytest.fixture
def callback_listener() -> Iterator[CallbackListener]:
    listener = CallbackListener()
    yield listener
    listener.stop()
