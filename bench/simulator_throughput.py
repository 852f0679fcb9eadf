"""How fast the Twilio simulator takes creates while its status callbacks flow.

    python -m bench.simulator_throughput [--calls 3000] [--concurrency 20]

Starts a Simulator (high CPS, time scale 0.001 so a call lives a few milliseconds) and a
callback sink (an aiohttp server answering 204) on their own threads, fires the creates over
plain HTTP with basic auth from a pool of concurrent aiohttp clients, each create asking for
all four status callbacks, then waits for the callbacks to arrive. Prints a table and writes
bench/results/simulator_throughput.json.

Everything shares one process (and its GIL): the figures are what one Python process
serving, loading and sinking at once manages, a floor for the simulator alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from simulator import Simulator

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-token"
EVENTS = ("initiated", "ringing", "answered", "completed")
RESULTS = Path(__file__).resolve().parent / "results" / "simulator_throughput.json"
TARGET_CREATES_PER_S = 300


class Sink:
    """An HTTP server on its own thread and loop that answers 204 and counts arrivals."""

    def __init__(self) -> None:
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sink", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        now = time.perf_counter()
        self.first_at = self.first_at or now
        self.last_at = now
        self.count += 1
        return web.Response(status=204)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/status"

    def start(self) -> Sink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


async def fire(api_url: str, callback_url: str, calls: int, concurrency: int) -> Load:
    load = Load()
    form = [("From", "+14155550199"), ("Url", "http://example.com/voice"),
            ("StatusCallback", callback_url)] + [("StatusCallbackEvent", e) for e in EVENTS]
    remaining = iter(range(calls))
    connector = aiohttp.TCPConnector(limit=concurrency)
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            for n in remaining:
                data = [("To", f"+1415{n % 10_000_000:07d}"), *form]
                started = time.perf_counter()
                try:
                    async with session.post(api_url, data=data) as response:
                        await response.read()
                        load.statuses[response.status] = load.statuses.get(response.status,
                                                                           0) + 1
                except aiohttp.ClientError:
                    load.errors += 1
                    continue
                load.latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return load


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(calls: int, concurrency: int, time_scale: float, cps: float,
        settle_timeout: float) -> dict[str, Any]:
    sink = Sink().start()
    sim = Simulator(ACCOUNT_SID, AUTH_TOKEN, cps=cps, time_scale=time_scale, seed=1).start()
    api_url = f"{sim.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    expected = calls * len(EVENTS)
    try:
        started = time.perf_counter()
        load = asyncio.run(fire(api_url, sink.url, calls, concurrency))
        creates_done = time.perf_counter()
        deadline = creates_done + settle_timeout
        while sink.count < expected and time.perf_counter() < deadline:
            time.sleep(0.05)
        callbacks_done = sink.last_at or creates_done
        delivered = sink.count
        failed_sends = sum(1 for r in sim.callbacks() if r.response_status != 204)
    finally:
        sim.stop()
        sink.stop()
    create_s = creates_done - started
    callback_s = callbacks_done - started
    created = load.statuses.get(201, 0)
    return {
        "calls": calls,
        "concurrency": concurrency,
        "time_scale": time_scale,
        "cps": cps,
        "created": created,
        "create_statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "client_errors": load.errors,
        "create_seconds": round(create_s, 3),
        "creates_per_s": round(created / create_s, 1),
        "create_latency_ms": {
            "p50": round(percentile(load.latencies, 50) * 1000, 2),
            "p99": round(percentile(load.latencies, 99) * 1000, 2),
            "mean": round(statistics.fmean(load.latencies) * 1000, 2) if load.latencies else None,
            "max": round(max(load.latencies, default=float("nan")) * 1000, 2),
        },
        "callbacks_expected": expected,
        "callbacks_delivered": delivered,
        "callbacks_not_204": failed_sends,
        "callback_seconds": round(callback_s, 3),
        "callbacks_per_s": round(delivered / callback_s, 1) if callback_s > 0 else None,
        "target_creates_per_s": TARGET_CREATES_PER_S,
        "met_target": created / create_s >= TARGET_CREATES_PER_S and delivered == expected,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def table(result: dict[str, Any]) -> str:
    latency = result["create_latency_ms"]
    rows = [
        ("calls / concurrency", f"{result['calls']} / {result['concurrency']}"),
        ("created (201)", f"{result['created']}  statuses {result['create_statuses']}"),
        ("creates/s", f"{result['creates_per_s']:.1f}  (target >= {TARGET_CREATES_PER_S})"),
        ("create latency p50", f"{latency['p50']:.2f} ms"),
        ("create latency p99", f"{latency['p99']:.2f} ms"),
        ("callbacks delivered", f"{result['callbacks_delivered']} / "
                                f"{result['callbacks_expected']}"),
        ("callbacks/s", f"{result['callbacks_per_s']}"),
        ("all in", f"{result['callback_seconds']:.2f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    line = "-" * (width + 2 + max(len(value) for _, value in rows))
    return "\n".join([line, *(f"{name:<{width}}  {value}" for name, value in rows), line])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="creates to fire (3000)")
    parser.add_argument("--concurrency", type=int, default=20,
                        help="concurrent HTTP clients (20)")
    parser.add_argument("--time-scale", type=float, default=0.001,
                        help="simulator time scale (0.001: a 10 s call lasts 10 ms)")
    parser.add_argument("--cps", type=float, default=10_000, help="simulator CPS (10000)")
    parser.add_argument("--settle-timeout", type=float, default=60,
                        help="seconds to wait for the callbacks after the last create (60)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1:
        parser.error("--calls and --concurrency must be at least 1")
    result = run(args.calls, args.concurrency, args.time_scale, args.cps, args.settle_timeout)
    print(table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0  # a missed target is a figure (met_target), not a failure of the benchmark


if __name__ == "__main__":
    sys.exit(main())
