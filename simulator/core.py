"""The in-process API: a simulator on its own thread and event loop, on a free port."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from aiohttp import web

from simulator.engine import Engine
from simulator.records import CallbackRecord, CreateRecord, Faults
from simulator.scenario import Scenario
from simulator.server import make_app


class Simulator:
    """Twilio's voice API and its status callbacks, on `self.url` once started.

    `time_scale` multiplies every duration of a call's life (0.02: a 10 s talk takes
    0.2 s); the calls-per-second pace is real time. The same `seed` gives the same SIDs
    and fault draws for the same sequence of requests.
    """

    def __init__(self, account_sid: str, auth_token: str, cps: float = 1.0,
                 strict: bool = False, time_scale: float = 1.0, seed: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = Engine(account_sid, auth_token, cps=cps, strict=strict,
                             time_scale=time_scale, seed=seed)
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Simulator:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.engine.base_url = self.url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator",
                                        daemon=True)
        self._thread.start()
        self._run(self._serve(sock))
        return self

    async def _serve(self, sock: socket.socket) -> None:
        self._runner = web.AppRunner(make_app(self.engine), access_log=None,
                                     handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None, "the simulator is not started"
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    def _on_loop(self, change: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a change on the simulator's loop, so it never races a request in flight."""
        async def apply() -> Any:
            return change(*args, **kwargs)
        return self._run(apply()) if self._loop else change(*args, **kwargs)

    # --- control ------------------------------------------------------------------

    def set_scenario(self, rules: Mapping[str, Sequence[str] | str] | None = None,
                     default: str = "answered") -> None:
        scenario = Scenario(rules, default)
        self._on_loop(setattr, self.engine, "scenario", scenario)

    def set_faults(self, **faults: Any) -> None:
        """Replace the faults (unnamed ones go back to none); see records.Faults."""
        chosen = Faults(**faults)
        self._on_loop(setattr, self.engine, "faults", chosen)

    def configure(self, cps: float | None = None, strict: bool | None = None,
                  time_scale: float | None = None) -> None:
        self._on_loop(self.engine.configure, cps=cps, strict=strict, time_scale=time_scale)

    def reset(self) -> None:
        """Forget calls, records, attempt counts; scenario, faults and settings stay."""
        self._run(self.engine.reset())

    # --- records --------------------------------------------------------------------

    def creates(self) -> list[CreateRecord]:
        with self.engine.lock:
            return list(self.engine.create_log)

    def callbacks(self, kind: str = "status") -> list[CallbackRecord]:
        """Status callbacks; `kind="recording"` or `"amd"` for the others."""
        with self.engine.lock:
            return [r for r in self.engine.callback_log if r.kind == kind]

    def instructions(self, call_sid: str) -> list[dict[str, Any]]:
        """What the call was told to play, in order: the create's Url, Twiml or
        application, then each redirect; each with `at` (ISO 8601), `source`, `url`,
        `method`, `twiml` and `application_sid`."""
        return self._on_loop(self.engine.instructions, call_sid)

    def calls(self) -> list[dict[str, Any]]:
        return self._on_loop(lambda: [c.to_json() for c in self.engine.calls.values()])

    def call(self, sid: str) -> dict[str, Any]:
        return self._on_loop(self.engine.fetch, sid)
