"""The HTTP producer API under gunicorn, and result notifications delivered end to end.

    python -m bench.api_load [--db sqlite|postgresql|both] [--config 2x4+shm]
                             [--batches 12] [--batch-size 1000] [--batch-clients 4]
                             [--clients 16] [--duration 8] [--rate 100]
                             [--events 2000] [--notify-concurrency 2] [--profile]
                             [--no-baseline]

For each database: a fresh, migrated database, a private redis-server, an API key made in
this process as `dialer api-key create` makes one, and the API exactly as deployed
(`gunicorn "api:create_app()"` from worker.demo.processes.api_argv; WORKERSxTHREADS in
--config, by default docker-compose.yml's 2 workers x 4 threads with the heartbeat file
on /dev/shm). No Celery worker consumes the dial queue, so the figures are the API's
cost: the key check, validation, the INSERT, the publish of place_call and the answer.
The load comes from this process (aiohttp, keep-alive, JSON bodies built in advance):

1. `POST /v1/calls:batch`: --batch-clients clients send --batches batches of
   --batch-size calls between them, each as soon as its previous one is answered;
2. `POST /v1/calls`: --clients closed-loop clients for --duration seconds;
3. the same single POST at a fixed --rate, open loop (request i is due at i/rate and its
   latency counts from then, so a stalled server cannot hide its queue).

Each phase checks that every accepted job left one place_call message in Redis, and
reads the CPU of gunicorn's process tree, Redis, PostgreSQL and the generator from /proc.

Beside phases 1 and 2, the baseline (on unless --no-baseline): bench/trivial_api.py (reads
the JSON body, answers a small JSON 201) under the same gunicorn command line and shape,
started beside the API, sent the same kind of bodies by the same clients (each phase a
closed loop of 3 s, or --duration if shorter: it answers thousands of requests a second,
the batches over and over), its phase right before the API's at each load so both see the
same machine. The ratios API/baseline of requests/s and of CPU per request move less with
the machine's noise than either figure.

4. Result notifications: a receiver in this process (http.server, threads, HTTP/1.1
   keep-alive, answering 204) and one Celery worker consuming only the `notify` queue
   (worker_argv(..., queues=["notify"]), --notify-concurrency prefork processes). A
   campaign of --events contacts with notify_url set is canceled in bulk
   (campaigns.cancel_campaign): one transaction stores an event per job and publishes a
   deliver_notification message for each after commit. Events/s counts from the cancel
   to the last distinct event received; every event must end `delivered` in the database.

`--profile` repeats the single-POST closed loop, the batch phase and the delivery with
py-spy on gunicorn's and the worker's processes (their figures are not the reference:
sampling costs CPU). Prints a table and writes bench/results/api_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import redis
from sqlalchemy import func, select

from bench.ceiling import postgres_pid
from bench.common import (
    ROOT,
    GunicornShape,
    Servers,
    add_run_options,
    describe_loads,
    exit_cleanly_on_sigterm,
    fmt,
    machine,
    percentile,
    point_producer_at,
    poll_until,
    print_table,
    ratio,
    servers,
    settle,
    write_results,
)
from bench.http_load import Phase, timed_post
from bench.procstats import Profiler, Tracked, print_hot_spots, self_cpu_s
from harness.stack import CALLER_ID, VOICE_URL, clean_environ
from worker.demo.processes import Process, api_argv, free_port, stop_all, wait_port, worker_argv
from worker.domain.names import DIAL_QUEUE, NOTIFY_QUEUE
from worker.engine.context import Context
from worker.producer.api_keys import create_api_key
from worker.producer.campaigns import cancel_campaign, create_campaign
from worker.store.models import Notification

RESULTS = Path(__file__).resolve().parent / "results" / "api_load.json"
GOAL_BATCH_JOBS_PER_S = 2000
GOAL_SINGLE_PER_S = 500
GOAL_P99_MS = 50.0
GOAL_EVENTS_PER_S = 500
BACKENDS = ("sqlite", "postgresql")
AREAS = (201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218)
# 32 bytes of key, as `whsec_` + base64 (DIALER_NOTIFY_SECRET's form).
NOTIFY_SECRET = "whsec_" + "YmVuY2gtYXBpLWxvYWQtbm90aWZ5LXNlY3JldC0zMmI="
REQUEST_TIMEOUT_S = 120
WARM_UP_EVENTS = 50
BASELINE_APP = "bench.trivial_api:app"
# The baseline's phases are closed loops this long (--duration if shorter): the trivial app
# answers thousands of requests a second, so 3 s gives thousands of samples (the batch
# phase's dozen batches would take it tens of milliseconds, too short to read its CPU from
# /proc's 10 ms ticks).
BASELINE_S = 3.0
# What each measured phase records of its baseline phase, and the ratios API/baseline.
VS_BASELINE = ("baseline_requests_per_s", "baseline_jobs_per_s", "baseline_p99_ms",
               "baseline_cpu_ms_per_request", "requests_ratio", "cpu_per_request_ratio")


def number(n: int) -> str:
    """The n-th distinct valid US number (160,000 of them)."""
    return f"+1{AREAS[n // 10_000 % len(AREAS)]}555{n % 10_000:04d}"


class Numbers:
    """Every call of a run goes to a number not used before in it."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> list[str]:
        out = [number(n) for n in range(self.next, self.next + count)]
        self.next += count
        return out


def single_bodies(numbers: list[str]) -> list[bytes]:
    """POST /v1/calls bodies, serialised before the clock starts."""
    return [json.dumps({"to": to, "url": VOICE_URL}).encode() for to in numbers]


def batch_bodies(numbers: list[str], size: int) -> list[bytes]:
    return [json.dumps({"calls": [{"to": to, "url": VOICE_URL}
                                  for to in numbers[i:i + size]]}).encode()
            for i in range(0, len(numbers), size)]


# --- the load ---------------------------------------------------------------------------

def _session(token: str, connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


async def drain(url: str, token: str, bodies: list[bytes], clients: int) -> Phase:
    """`clients` connections sending the bodies between them, each as soon as its last
    is answered, until none is left."""
    phase = Phase()
    queue = iter(bodies)
    async with _session(token, clients) as session:

        async def client() -> None:
            for body in queue:
                await timed_post(session, url, body, time.perf_counter(), phase)

        await asyncio.gather(*(client() for _ in range(clients)))
    return phase


async def closed_loop(url: str, token: str, bodies: Iterator[bytes], clients: int,
                      duration: float) -> Phase:
    """`clients` connections, each sending its next body as soon as one is answered."""
    phase = Phase()
    stop_at = time.perf_counter() + duration
    async with _session(token, clients) as session:

        async def client() -> None:
            while (now := time.perf_counter()) < stop_at:
                await timed_post(session, url, next(bodies), now, phase)

        await asyncio.gather(*(client() for _ in range(clients)))
    return phase


async def open_loop(url: str, token: str, bodies: list[bytes], rate: float) -> Phase:
    """Request i is due at start + i/rate, whatever happened to the earlier ones."""
    phase = Phase()
    async with _session(token, 64) as session:
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.02
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                phase.late_starts += 1
            task = asyncio.create_task(timed_post(session, url, body, due, phase))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
    return phase


def _endless(numbers: Numbers) -> Iterator[bytes]:
    while True:
        yield from single_bodies(numbers.take(1000))


# --- one backend ------------------------------------------------------------------------

@dataclass
class Api:
    """The API's process (or the baseline's: no queue, nothing published), its URL and the
    CPU meters the phases read."""
    base: str
    token: str
    tracked: dict[str, Tracked]
    queue: redis.Redis | None


# A phase's load: called once, it returns the coroutine that sends it.
Load = Callable[[], Coroutine[Any, Any, Phase]]


def measure(name: str, api: Api, run: Load, jobs_per_ok: int = 1,
            profiler: Profiler | None = None, profile_s: float = 0) -> dict[str, Any]:
    """One phase, with the CPU of every tracked tree and of this process, and the check
    that each accepted job left one place_call message in Redis."""
    if api.queue is not None:
        api.queue.delete(DIAL_QUEUE)
    for meter in api.tracked.values():
        meter.start()
    if profiler is not None:
        profiler.start({"api": api.tracked["api"].root}, profile_s)
    cpu0, wall0 = self_cpu_s(), time.perf_counter()
    phase = asyncio.run(run())
    wall = time.perf_counter() - wall0
    generator = self_cpu_s() - cpu0
    cpu = {who: meter.sample() for who, meter in api.tracked.items()}
    ok = phase.statuses.get("201", 0)
    jobs = ok * jobs_per_ok
    published = int(api.queue.llen(DIAL_QUEUE)) if api.queue is not None else None
    lat = phase.latencies
    requests_ = sum(phase.statuses.values())
    return {
        "phase": name, "requests": requests_, "statuses": phase.statuses,
        "jobs_accepted": jobs, "published": published,
        "published_matches": published == jobs if api.queue is not None else None,
        "wall_s": round(wall, 2),
        "requests_per_s": round(ok / wall, 1), "jobs_per_s": round(jobs / wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "max_ms": round(max(lat, default=float("nan")) * 1000, 2),
        "late_starts": phase.late_starts,
        "cpu_pct": {k: round(100 * v / wall, 1) for k, v in
                    {**cpu, "generator": generator}.items()},
        "api_cpu_ms_per_request": round(1000 * cpu["api"] / ok, 2) if ok else None,
        "api_cpu_ms_per_job": round(1000 * cpu["api"] / jobs, 3) if jobs else None,
        **({"profile": profiler.finish()} if profiler is not None else {}),
    }


def baseline_argv(port: int) -> list[str]:
    """api_argv's gunicorn command line serving the trivial app instead of the API."""
    return [*api_argv(port)[:-1], BASELINE_APP]


def versus(api: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """The baseline phase's figures beside the API's, and the ratios API/baseline."""
    return {
        "baseline_requests_per_s": base["requests_per_s"],
        "baseline_jobs_per_s": base["jobs_per_s"],
        "baseline_p99_ms": base["p99_ms"],
        "baseline_cpu_ms_per_request": base["api_cpu_ms_per_request"],
        "requests_ratio": ratio(api["requests_per_s"], base["requests_per_s"]),
        "cpu_per_request_ratio": ratio(api["api_cpu_ms_per_request"],
                                       base["api_cpu_ms_per_request"], 2),
    }


def api_phases(srv: Servers, backend: str, env: dict[str, str], ctx: Context,
               numbers: Numbers, args: argparse.Namespace, first: bool) -> dict[str, Any]:
    """The three HTTP phases against one gunicorn, the first two with the baseline's."""
    _, token = create_api_key(ctx, "bench")
    port = free_port()
    processes = [Process(f"api-{port}", args.config.apply(api_argv(port)), env, srv.workdir)]
    base_port = free_port()
    while base_port == port:
        base_port = free_port()
    if args.baseline:
        # bench is not an installed package: the path lets gunicorn import the app.
        base_env = {**clean_environ(), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        processes.append(Process(f"api-baseline-{base_port}",
                                 args.config.apply(baseline_argv(base_port)), base_env,
                                 srv.workdir))
    process = processes[0]
    try:
        for started, listening in zip(processes, (port, base_port), strict=False):
            wait_port(started, listening)
        base = f"http://127.0.0.1:{port}"
        tracked = {"api": Tracked("api", process.proc.pid)}
        assert srv.redis.proc is not None
        tracked["redis"] = Tracked("redis", srv.redis.proc.pid)
        pg = postgres_pid(srv)
        if env["DIALER_DATABASE_URL"].startswith("postgresql") and pg is not None:
            tracked["postgresql"] = Tracked("postgresql", pg)
        api = Api(base, token, tracked, redis.Redis.from_url(srv.redis.url))
        single, batch = f"{base}/v1/calls", f"{base}/v1/calls:batch"
        trivial_url = f"http://127.0.0.1:{base_port}"
        trivial = (Api(trivial_url, token,
                       {"api": Tracked("baseline", processes[1].proc.pid),
                        "redis": tracked["redis"]}, None) if args.baseline else None)
        # Warm up every gunicorn thread: imports, connections, the first queries.
        asyncio.run(drain(single, token, single_bodies(numbers.take(200)), args.clients))
        asyncio.run(drain(batch, token, batch_bodies(numbers.take(400), 100), 4))
        if trivial is not None:
            asyncio.run(drain(f"{trivial_url}/v1/calls", token,
                              single_bodies(numbers.take(200)), args.clients))
        phases: list[dict[str, Any]] = []
        baseline_phases: list[dict[str, Any]] = []
        loads: list[dict[str, Any]] = []

        def step(name: str, run: Load, jobs_per_ok: int = 1,
                 baseline: Load | None = None) -> None:
            """The phase's load, sent first to the baseline when it has one."""
            loads.append(settle(first and not phases, args.quiet_timeout))
            beside = (measure(name, trivial, baseline, jobs_per_ok)
                      if trivial is not None and baseline is not None else None)
            phase = {**measure(name, api, run, jobs_per_ok), "load": loads[-1]}
            if beside is not None:
                baseline_phases.append(beside)
                phase["vs_baseline"] = versus(phase, beside)
            phases.append(phase)
            report(phase)

        trivial_single, trivial_batch = f"{trivial_url}/v1/calls", f"{trivial_url}/v1/calls:batch"
        bodies = batch_bodies(numbers.take(args.batches * args.batch_size), args.batch_size)
        # The baseline stores nothing: it can be sent the same bodies over and over.
        baseline_s = min(BASELINE_S, args.duration)
        step("batch", lambda: drain(batch, token, bodies, args.batch_clients), args.batch_size,
             lambda: closed_loop(trivial_batch, token, itertools.cycle(bodies),
                                 args.batch_clients, baseline_s))
        endless = _endless(numbers)
        repeated = itertools.cycle(single_bodies(numbers.take(1000)))
        step("single", lambda: closed_loop(single, token, endless, args.clients, args.duration),
             baseline=lambda: closed_loop(trivial_single, token, repeated, args.clients,
                                          baseline_s))
        paced = single_bodies(numbers.take(round(args.rate * args.duration)))
        step("paced", lambda: open_loop(single, token, paced, args.rate))
        profiles: dict[str, Any] = {}
        if args.profile:
            out = args.output.with_name(f"api_load-profile-{backend}")
            for name, run, per in (
                    ("single", lambda: closed_loop(single, token, endless, args.clients,
                                                   args.duration), 1),
                    ("batch", lambda: drain(batch, token, batch_bodies(
                        numbers.take(args.batches * args.batch_size), args.batch_size),
                        args.batch_clients), args.batch_size)):
                result = measure(name, api, run, per, Profiler(out.with_name(
                    f"{out.name}-{name}")), args.duration - 1)
                profiles[name] = result.pop("profile")
                for who, spots in profiles[name].items():
                    print_hot_spots(f"{who} ({name}, {backend})", spots)
        return {"config": str(args.config), "gunicorn_processes": tracked["api"].processes,
                "peak_rss_kb": tracked["api"].peak_rss_kb, "phases": phases,
                "profiles": profiles,
                **({"baseline_app": BASELINE_APP, "baseline_phases": baseline_phases}
                   if trivial is not None else {})}
    finally:
        stop_all(processes)


# --- notifications ----------------------------------------------------------------------

class Receiver:
    """A producer's notify_url: answers 204 to every POST and notes each event id's first
    arrival (delivery is at least once, so repeats are counted apart)."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.posts = 0
        self.unsigned = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the worker's session reuses it

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.perf_counter()
                event_id = self.headers.get("webhook-id", "")
                signed = bool(self.headers.get("webhook-signature"))
                with receiver.lock:
                    receiver.posts += 1
                    receiver.unsigned += not signed
                    receiver.first_seen.setdefault(event_id, now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dialer"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def distinct(self) -> int:
        with self.lock:
            return len(self.first_seen)


def delivered(ctx: Context) -> int:
    with ctx.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Notification).where(
            Notification.status == "delivered")) or 0)


def deliver_once(ctx: Context, receiver: Receiver, numbers: Numbers, events: int,
                 tracked: dict[str, Tracked], profiler: Profiler | None = None,
                 profile_s: float = 0) -> dict[str, Any]:
    """Cancel a campaign of `events` jobs with notify_url set; wait for every event."""
    rows = [{"to": to} for to in numbers.take(events)]
    campaign = create_campaign(ctx, f"notify-{numbers.next}", contacts=rows, url=VOICE_URL,
                               notify_url=receiver.url)
    assert campaign.campaign_id is not None and campaign.imported == events, campaign
    before_received = receiver.distinct()
    before_posts = receiver.posts
    before_delivered = delivered(ctx)
    for meter in tracked.values():
        meter.start()
    if profiler is not None:
        profiler.start({"worker": tracked["worker"].root}, profile_s)
    cpu0, started = self_cpu_s(), time.perf_counter()
    canceled = cancel_campaign(ctx, campaign.campaign_id)
    cancel_s = time.perf_counter() - started
    target = before_received + events
    arrived = poll_until(lambda: receiver.distinct() >= target,
                         timeout=max(60.0, events / 20), interval=0.02)
    with receiver.lock:
        last = max(receiver.first_seen.values())
        posts = receiver.posts - before_posts
    wall = last - started
    cpu = {name: meter.sample() for name, meter in tracked.items()}
    this_process = self_cpu_s() - cpu0
    recorded = poll_until(lambda: delivered(ctx) - before_delivered >= events, timeout=30,
                          interval=0.1)
    got = receiver.distinct() - before_received
    return {
        "events": events, "canceled_pending": canceled["canceled_pending"],
        "received_distinct": got, "all_received": arrived, "posts": posts,
        "all_recorded_delivered": recorded,
        "cancel_campaign_s": round(cancel_s, 3), "wall_s": round(wall, 3),
        "events_per_s": round(got / wall, 1) if wall > 0 else None,
        "cpu_pct": {k: round(100 * v / wall, 1) for k, v in
                    {**cpu, "bench_process": this_process}.items()},
        "worker_cpu_ms_per_event": round(1000 * cpu["worker"] / got, 2) if got else None,
        **({"profile": profiler.finish()} if profiler is not None else {}),
    }


def notify_phase(srv: Servers, backend: str, env: dict[str, str], ctx: Context,
                 numbers: Numbers, args: argparse.Namespace) -> dict[str, Any]:
    """A Celery worker on the notify queue only, a receiver here, events made in bulk."""
    with Receiver() as receiver:
        worker = Process("notify-worker", worker_argv("notify", args.notify_concurrency,
                                                      [NOTIFY_QUEUE]), env, srv.workdir)
        try:
            worker.wait_for_log(" ready.", timeout=60)
            tracked = {"worker": Tracked("worker", worker.proc.pid)}
            assert srv.redis.proc is not None
            tracked["redis"] = Tracked("redis", srv.redis.proc.pid)
            pg = postgres_pid(srv)
            if env["DIALER_DATABASE_URL"].startswith("postgresql") and pg is not None:
                tracked["postgresql"] = Tracked("postgresql", pg)
            # Warm up each prefork child: its connections and first queries.
            deliver_once(ctx, receiver, numbers, WARM_UP_EVENTS, tracked)
            load = settle(False, args.quiet_timeout)
            result = {**deliver_once(ctx, receiver, numbers, args.events, tracked),
                      "load": load, "phase": "notify",
                      "worker_processes": tracked["worker"].processes}
            report_notify(result)
            if args.profile:
                out = args.output.with_name(f"api_load-profile-{backend}-notify")
                profiled = deliver_once(ctx, receiver, numbers, args.events, tracked,
                                        Profiler(out), max(1.0, result["wall_s"]))
                result["profile"] = profiled["profile"]
                for who, spots in result["profile"].items():
                    print_hot_spots(f"{who} (delivery, {backend})", spots)
            return result
        finally:
            worker.stop()


def run_backend(srv: Servers, backend: str, args: argparse.Namespace,
                first: bool) -> dict[str, Any]:
    redis.Redis.from_url(srv.redis.url).flushall()
    env = {**clean_environ(), "PYTHONUNBUFFERED": "1",
           "DIALER_DATABASE_URL": srv.database_url(backend),
           "DIALER_REDIS_URL": srv.redis.url, "DIALER_DEFAULT_FROM": CALLER_ID,
           "DIALER_NOTIFY_SECRET": NOTIFY_SECRET}
    # This process is the operator (API keys) and the producer (the campaigns); for SQLite
    # it also migrates the file before gunicorn's workers could race to.
    ctx = point_producer_at(env)
    numbers = Numbers()
    print(f"{backend}: API under gunicorn {args.config}", flush=True)
    result = api_phases(srv, backend, env, ctx, numbers, args, first)
    print(f"{backend}: notifications, worker -c {args.notify_concurrency} on "
          f"{NOTIFY_QUEUE!r}", flush=True)
    result["notify"] = notify_phase(srv, backend, env, ctx, numbers, args)
    return {"backend": backend, **result}


# --- the report -------------------------------------------------------------------------

def report(p: dict[str, Any]) -> None:
    print(f"  {p['phase']:7}: {p['requests_per_s']:>7} req/s  {p['jobs_per_s']:>7} jobs/s  "
          f"p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  API CPU "
          f"{p['api_cpu_ms_per_request']} ms/req  {p['statuses']}  "
          f"(load {p['load']['load_1m']})", flush=True)
    if "vs_baseline" in p:
        vs = p["vs_baseline"]
        print(f"  {'':7}  baseline {vs['baseline_requests_per_s']:>7} req/s  p99 "
              f"{vs['baseline_p99_ms']} ms  CPU {vs['baseline_cpu_ms_per_request']} ms/req; "
              f"ratio: req/s {vs['requests_ratio']}, CPU/req {vs['cpu_per_request_ratio']}",
              flush=True)


def report_notify(n: dict[str, Any]) -> None:
    print(f"  notify : {n['events_per_s']} events/s ({n['received_distinct']}/{n['events']} "
          f"in {n['wall_s']} s; cancel_campaign {n['cancel_campaign_s']} s; worker CPU "
          f"{n['worker_cpu_ms_per_event']} ms/event; {n['posts']} POSTs)", flush=True)


def _phase(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in result["phases"] if p["phase"] == name)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    batch, single = _phase(result, "batch"), _phase(result, "single")
    paced, notify = _phase(result, "paced"), result["notify"]
    checks = {
        "batch_jobs_per_s": batch["jobs_per_s"] >= GOAL_BATCH_JOBS_PER_S,
        "single_per_s": single["requests_per_s"] >= GOAL_SINGLE_PER_S,
        "p99_ms_at_rate": paced["p99_ms"] < GOAL_P99_MS,
        "events_per_s": (notify["events_per_s"] or 0) >= GOAL_EVENTS_PER_S,
    }
    checks["all_published"] = all(p["published_matches"] for p in result["phases"])
    checks["all_delivered"] = notify["all_received"] and notify["all_recorded_delivered"]
    return checks


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    headers = ["database", "figure", "goal", "measured", "met", "baseline (same run)",
               "ratio API/baseline", "p50 / p99 ms", "CPU ms: dialer / request",
               "baseline CPU ms / request", "CPU ratio",
               "CPU % api/worker, redis, pg, generator", "errors"]
    rows: list[list[str]] = []
    for r in results:
        ok = verdict(r)
        db = "SQLite" if r["backend"] == "sqlite" else "PostgreSQL"
        for name, figure, goal, value, met in (
                ("batch", f"POST /v1/calls:batch x{args.batch_size}, {args.batch_clients} "
                          "clients, jobs/s", f">= {GOAL_BATCH_JOBS_PER_S:,}",
                 "jobs_per_s", ok["batch_jobs_per_s"]),
                ("single", f"POST /v1/calls, {args.clients} clients, req/s",
                 f">= {GOAL_SINGLE_PER_S}", "requests_per_s", ok["single_per_s"]),
                ("paced", f"POST /v1/calls at {args.rate:g}/s, p99 ms", f"< {GOAL_P99_MS:g}",
                 "p99_ms", ok["p99_ms_at_rate"])):
            p = _phase(r, name)
            cpu = p["cpu_pct"]
            per = fmt(p["api_cpu_ms_per_request"], 2)
            if name == "batch":
                per += f" ({fmt(p['api_cpu_ms_per_job'], 2)} per job)"
            vs = p.get("vs_baseline", {})
            beside = vs.get("baseline_jobs_per_s" if name == "batch" else
                            "baseline_requests_per_s")
            rows.append([db, figure, goal, fmt(float(p[value]), 1 if name == "paced" else 0),
                         "yes" if met else "no", fmt(beside, 0),
                         fmt(vs.get("requests_ratio"), 3),
                         f"{fmt(p['p50_ms'], 1)} / {fmt(p['p99_ms'], 1)}",
                         per, fmt(vs.get("baseline_cpu_ms_per_request"), 2),
                         fmt(vs.get("cpu_per_request_ratio"), 2),
                         f"{cpu['api']:.0f}, {cpu['redis']:.0f}, "
                         f"{cpu.get('postgresql', 0):.0f}, {cpu['generator']:.0f}",
                         str(sum(n for s, n in p["statuses"].items() if s != "201"))])
        n = r["notify"]
        cpu = n["cpu_pct"]
        rows.append([db, f"notifications delivered, worker -c {args.notify_concurrency}, "
                         "events/s", f">= {GOAL_EVENTS_PER_S}", fmt(n["events_per_s"], 0),
                     "yes" if ok["events_per_s"] else "no", "-", "-", "-",
                     fmt(n["worker_cpu_ms_per_event"], 2), "-", "-",
                     f"{cpu['worker']:.0f}, {cpu['redis']:.0f}, "
                     f"{cpu.get('postgresql', 0):.0f}, {cpu['bench_process']:.0f}",
                     str(n["events"] - n["received_distinct"])])
    title = (f"HTTP producer API under gunicorn {args.config}, and result notifications "
             "(one run)")
    if args.baseline:
        title += (f"; baseline: {BASELINE_APP} (reads the body, answers a small JSON 201) "
                  "under the same gunicorn, same clients, right before the API's phase")
    else:
        drop = {5, 6, 9, 10}
        headers = [h for i, h in enumerate(headers) if i not in drop]
        rows = [[c for i, c in enumerate(row) if i not in drop] for row in rows]
    return print_table(title, headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--config", default="2x4+shm",
                        help="gunicorn WORKERSxTHREADS[+shm] (2x4+shm, docker-compose.yml's)")
    parser.add_argument("--batches", type=int, default=12, help="batches sent in all (12)")
    parser.add_argument("--batch-size", type=int, default=1000, help="calls per batch (1000)")
    parser.add_argument("--batch-clients", type=int, default=4,
                        help="clients sending batches side by side (4: two per gunicorn "
                             "worker, so both workers' GILs are busy)")
    parser.add_argument("--clients", type=int, default=16,
                        help="closed-loop clients for single POSTs (16)")
    parser.add_argument("--duration", type=float, default=8,
                        help="seconds of the single-POST phases (8)")
    parser.add_argument("--rate", type=float, default=100,
                        help="offered single POSTs/s for the latency phase (100)")
    parser.add_argument("--events", type=int, default=2000,
                        help="notification events made and delivered (2000)")
    parser.add_argument("--notify-concurrency", type=int, default=2,
                        help="prefork processes of the notify worker (2: Celery's default "
                             "on 2 cores)")
    parser.add_argument("--profile", action="store_true",
                        help="repeat the phases with py-spy (slower; figures not the reference)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="beside the batch and single phases, a trivial WSGI app in the "
                             "same gunicorn shape, for ratios that move less with the "
                             "machine (on)")
    add_run_options(parser, RESULTS)
    args = parser.parse_args(argv)
    try:
        args.config = GunicornShape.parse(args.config)
    except ValueError:
        parser.error("--config is WORKERSxTHREADS[+shm], e.g. 2x4+shm")
    if min(args.batches, args.batch_size, args.batch_clients, args.clients, args.events,
           args.notify_concurrency) < 1 or args.duration <= 0 or args.rate <= 0:
        parser.error("sizes, counts, --duration and --rate must be positive")
    if args.batch_size > 1000:
        parser.error("--batch-size: the API takes 1 to 1,000 calls per batch")
    exit_cleanly_on_sigterm()
    backends = list(BACKENDS) if args.db == "both" else [args.db]
    info = machine()
    results: list[dict[str, Any]] = []
    with servers(postgres="postgresql" in backends) as srv:
        info["versions"]["postgresql"] = srv.postgresql_version()
        for backend in backends:
            results.append(run_backend(srv, backend, args, first=not results))
    printed = table(results, args)
    loads = [p["load"] for r in results for p in [*r["phases"], r["notify"]]]
    print("\n" + describe_loads(loads))
    verdicts = {r["backend"]: verdict(r) for r in results}
    settings = {k: str(v) if isinstance(v, GunicornShape) else v for k, v in vars(args).items()
                if k != "output"}
    write_results("api_load", {
        "machine": info, "settings": settings,
        "goals": {"batch_jobs_per_s": GOAL_BATCH_JOBS_PER_S, "single_per_s": GOAL_SINGLE_PER_S,
                  "p99_ms_at_rate": GOAL_P99_MS, "rate_per_s": args.rate,
                  "events_per_s": GOAL_EVENTS_PER_S},
        "goals_met": all(all(v.values()) for v in verdicts.values()),
        "verdict": verdicts, "table": printed, "results": results,
    }, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
