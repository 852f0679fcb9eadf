"""What the engine talks to, handed in rather than looked up.

The Celery tasks and the producer API use the context built from the environment
(`worker.wiring`); tests and benchmarks build one with stand-ins (an in-memory broker, a
Twilio that answers from memory) and run the engine in-process, with no server at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from worker.settings import Settings
from worker.store.database import Database


class Broker(Protocol):
    def publish_place_calls(self, job_ids: Sequence[str]) -> None:
        """Publish one place_call message per job; raise if the broker refuses."""

    def dial_queue_length(self) -> int:
        """Messages waiting in the dial queue."""

    def publish_notifications(self, notification_ids: Sequence[str]) -> None:
        """Publish deliver_notification messages carrying these events, each a few; raise
        if the broker refuses."""


class Calls(Protocol):
    """Twilio's Calls resource and recording media: the answers are twilio's CallInstance,
    or alike."""

    def warm(self) -> None:
        """Pay a process's one-time cost of its first request to Twilio, once."""

    def create_call(self, params: dict[str, Any]) -> Any: ...

    def fetch_call(self, call_sid: str) -> Any: ...

    def end_call(self, call_sid: str, status: str) -> Any: ...

    def list_calls(self, to: str, from_: str, limit: int) -> list[Any]: ...

    def redirect_call(self, call_sid: str, params: dict[str, str]) -> Any: ...

    def download_recording(self, recording_sid: str) -> bytes:
        """A recording's media (WAV); raises TwilioRestException when Twilio refuses."""


class Pacer(Protocol):
    def reserve(self) -> float:
        """Reserve the next create slot; the seconds to wait for it."""

    def depart(self) -> float:
        """0 once this create may leave now (recorded), else the seconds to wait first."""

    def pace(self) -> float | None:
        """The account's calls per second, None before any is set."""

    def set_pace(self, calls_per_second: float) -> None:
        """Set the account's calls per second, for every worker."""


class Notifier(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST body to url; the response's status code. Raises if no response came."""


@dataclass(frozen=True)
class Context:
    settings: Settings
    database: Database
    broker: Broker
    twilio: Calls
    pacer: Pacer
    notifier: Notifier
    sleep: Callable[[float], None] = time.sleep
