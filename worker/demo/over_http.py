"""The demo's call over HTTP: one call enqueued through the producer API as a service in
any language would (the demo prints the curl command), and its signed result notification
received by a small local endpoint that checks the signature and keeps each event once."""

from __future__ import annotations

import hmac
import json
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from worker.domain.notifications import signature

NOTIFY_PATH = "/notify"


class NotificationReceiver:
    """Events by webhook-id (deliveries are at least once), only those signed with `key`."""

    def __init__(self, key: bytes) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = self.headers.get("webhook-id", "")
                timestamp = self.headers.get("webhook-timestamp", "")
                expected = (signature(key, event_id, int(timestamp), body)
                            if timestamp.isascii() and timestamp.isdigit() else None)
                signed = self.headers.get("webhook-signature", "").split()
                if expected is None or not any(hmac.compare_digest(s, expected)
                                               for s in signed):
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    receiver.events.setdefault(event_id, json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the demo shows what arrived in its own table."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{NOTIFY_PATH}"

    def finished(self, job_id: str) -> dict[str, Any] | None:
        """The job's call.finished event, once it has arrived."""
        return next((e for e in self.events.values()
                     if e["type"] == "call.finished" and e["data"]["job_id"] == job_id), None)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def curl_command(api_url: str, body: dict[str, Any]) -> str:
    """What a service would run; the key stays in $TOKEN."""
    return (f"curl -X POST {api_url}/v1/calls -H \"Authorization: Bearer $TOKEN\" "
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}")


def enqueue_over_http(api_url: str, token: str, body: dict[str, Any]) -> str:
    """POST /v1/calls; the new job's id."""
    response = requests.post(f"{api_url}/v1/calls", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 201:
        raise RuntimeError(f"the API answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["id"])
