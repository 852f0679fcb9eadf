"""How fast one producer enqueues: `enqueue_call` in a loop, and `enqueue_calls` in batches.

    python -m bench.enqueue [--jobs 3000] [--runs 3] [--batch 500]
                            [--backends sqlite postgresql] [--no-baseline]

A private redis-server runs (every enqueue_call publishes place_call to it) and no worker
consumes, so the figure is the producer's cost alone: validation, the DNC check, one
committed INSERT and one publish per job; with `enqueue_calls`, one transaction and one
broker connection per batch of --batch jobs. PostgreSQL is a throwaway cluster started
with harness/servers.py's PostgresServer (fsync off, as the tests run it; a
production server with fsync on pays one WAL flush per commit on top). Each run gets a
fresh database and a warm-up of 50 jobs that are not counted. Besides jobs/s, each run
records the producer's CPU time per job (time.process_time): a per-call cost that the
shared machine's load moves less than the wall clock (the Redis and PostgreSQL servers'
CPU is not in it). All runs take about 3 minutes on a 2-core machine.

Beside each run of each mode, on the same database and Redis, in this process, the same
number of jobs is stored and published with nothing of the dialer's: the baseline (on
unless --no-baseline). Per job, one committed Core INSERT into the jobs table of the row
enqueue_call stores and one LPUSH of the place_call message it publishes; per batch, one
transaction of one executemany INSERT and one LPUSH of the batch's messages. Rows and
messages are built before the clock starts, the database engine is the dialer's own
(SQLite's pragmas included), so the baseline is what the database, Redis and their
drivers cost for the same writes. The two run back to back in an order that alternates
between runs; the ratios dialer/baseline of jobs/s and of CPU per job are the figures to
follow on a shared machine.

`--profile` prints cProfile's top functions for one extra run on each backend: where a
job's time goes. Results go to bench/results/enqueue.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import insert

from bench.common import (
    Servers,
    add_run_options,
    describe_loads,
    exit_cleanly_on_sigterm,
    fmt_spread,
    machine,
    ms,
    percentile,
    point_producer_at,
    print_table,
    ratio,
    servers,
    settle,
    spread,
    write_results,
)
from worker.adapters.task_messages import TaskMessages
from worker.api import enqueue_call, enqueue_calls
from worker.domain.clock import utcnow
from worker.domain.names import DIAL_QUEUE, PLACE_CALL_TASK
from worker.domain.statuses import JobStatus
from worker.engine.context import Context
from worker.store.models import Job

GOAL_JOBS_PER_S = 1000
WARM_UP = 50
VOICE_URL = "https://example.com/voice.xml"
BACKENDS = ("sqlite", "postgresql")
AREAS = (201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218)
BASELINE_OFFSET = 500_000  # the baseline's numbers, apart from the dialer's
INSERT_JOB = insert(Job.__table__)
# What each run records of its baseline, and the ratios dialer/baseline.
VS_BASELINE = ("baseline_jobs_per_s", "baseline_cpu_ms_per_job", "jobs_per_s_ratio",
               "cpu_per_job_ratio")


def producer_env(srv: Servers, backend: str) -> dict[str, str]:
    return {"DIALER_DATABASE_URL": srv.database_url(backend),
            "DIALER_REDIS_URL": srv.redis.url, "DIALER_DEFAULT_FROM": "+14155550100"}


def loop(jobs: int, offset: int, batch: int = 1) -> list[float]:
    """Seconds per enqueue_call (batch 1) or per enqueue_calls of `batch` jobs."""
    took = []
    for start in range(offset, offset + jobs, batch):
        calls = [{"to": f"+1{AREAS[n // 10_000 % len(AREAS)]}555{n % 10_000:04d}",
                  "url": VOICE_URL} for n in range(start, min(start + batch, offset + jobs))]
        started = time.perf_counter()
        if batch == 1:
            enqueue_call(**calls[0])
        else:
            enqueue_calls(calls)
        took.append(time.perf_counter() - started)
    return took


def baseline_rows(ctx: Context, jobs: int, offset: int) -> list[dict[str, Any]]:
    """The rows enqueue_call stores for plain calls (keyed by column, as Core takes them),
    every value already what validation would make of it."""
    settings, now = ctx.settings, utcnow()
    return [{
        "id": uuid.uuid4().hex, "idempotency_key": None, "request_hash": None,
        "campaign_id": None, "to": f"+1{AREAS[n // 10_000 % len(AREAS)]}555{n % 10_000:04d}",
        "from": settings.default_from, "url": VOICE_URL, "twiml": None,
        "application_sid": None, "call_options": {}, "max_attempts": settings.max_attempts,
        "retry_on": list(settings.retry_on), "retry_delays": list(settings.retry_delays),
        "priority": 0, "status": JobStatus.QUEUED, "next_attempt_at": now, "queued_at": now,
        "attempts": 0, "metadata": {}, "timezones": None, "notify_url": None,
        "notify_each_attempt": False, "api_key_id": None, "created_at": now, "updated_at": now,
    } for n in range(offset, offset + jobs)]


def baseline_loop(ctx: Context, client: redis.Redis, rows: list[dict[str, Any]],
                  messages: list[str], batch: int = 1) -> list[float]:
    """Seconds per job (batch 1: one INSERT committed, one LPUSH) or per batch (one
    transaction of one executemany INSERT, one LPUSH of its messages)."""
    engine = ctx.database.engine
    took = []
    for start in range(0, len(rows), batch):
        began = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(INSERT_JOB, rows[start] if batch == 1
                               else rows[start:start + batch])
        client.lpush(DIAL_QUEUE, *messages[start:start + batch])
        took.append(time.perf_counter() - began)
    return took


def timed(client: redis.Redis, jobs: int, run: Callable[[], list[float]]) -> dict[str, Any]:
    """One measured loop: its wall time, this process's CPU, latencies and messages."""
    queued = client.llen(DIAL_QUEUE)
    started, cpu = time.perf_counter(), time.process_time()
    took = run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"jobs": jobs, "seconds": round(elapsed, 3), "jobs_per_s": round(jobs / elapsed, 1),
            "cpu_ms_per_job": round(cpu / jobs * 1000, 3),
            "per_call_ms": {"p50": ms(percentile(took, 50)), "p99": ms(percentile(took, 99)),
                            "max": ms(max(took))},
            "published": client.llen(DIAL_QUEUE) - queued}


def versus(dialer: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """The baseline's figures beside the dialer's, and the ratios dialer/baseline."""
    return {"baseline_jobs_per_s": base["jobs_per_s"],
            "baseline_cpu_ms_per_job": base["cpu_ms_per_job"],
            "jobs_per_s_ratio": ratio(dialer["jobs_per_s"], base["jobs_per_s"]),
            "cpu_per_job_ratio": ratio(dialer["cpu_ms_per_job"], base["cpu_ms_per_job"], 2)}


def one_run(srv: Servers, backend: str, jobs: int, batch: int, run: int,
            args: argparse.Namespace, first: bool) -> dict[str, Any]:
    """The dialer's loop on a fresh database and, with the baseline, the baseline's loop
    beside it (first in odd runs), both warmed up before either is measured."""
    load = settle(first, args.quiet_timeout)
    client = redis.Redis.from_url(srv.redis.url)
    client.flushall()
    ctx = point_producer_at(producer_env(srv, backend))
    loop(WARM_UP, 900_000)
    base: dict[str, Any] | None = None
    baseline_first = run % 2 == 1
    if args.baseline:
        messages = TaskMessages()
        rows = baseline_rows(ctx, WARM_UP + jobs, BASELINE_OFFSET)
        bodies = [messages.build(PLACE_CALL_TASK, DIAL_QUEUE, args=(row["id"],))
                  for row in rows]
        baseline_loop(ctx, client, rows[:WARM_UP], bodies[:WARM_UP])
        rows, bodies = rows[WARM_UP:], bodies[WARM_UP:]
        if baseline_first:
            base = timed(client, jobs, lambda: baseline_loop(ctx, client, rows, bodies, batch))
    dialer = timed(client, jobs, lambda: loop(jobs, 0, batch))
    if args.baseline and not baseline_first:
        base = timed(client, jobs, lambda: baseline_loop(ctx, client, rows, bodies, batch))
    result = {"backend": backend, "batch": batch, "run": run + 1, "load": load, **dialer}
    if base is not None:
        result |= {"baseline_first": baseline_first, "baseline": base,
                   "vs_baseline": versus(dialer, base)}
    print(f"  run {run + 1} {backend} {mode(batch)}: {result['jobs_per_s']:.0f} jobs/s "
          f"(p50 {result['per_call_ms']['p50']} ms, producer CPU {result['cpu_ms_per_job']} "
          f"ms/job, load {load['load_1m']:.2f})", flush=True)
    if base is not None:
        vs = result["vs_baseline"]
        print(f"        baseline: {base['jobs_per_s']:.0f} jobs/s "
              f"(p50 {base['per_call_ms']['p50']} ms, CPU {base['cpu_ms_per_job']} ms/job); "
              f"ratio: jobs/s {vs['jobs_per_s_ratio']}, CPU/job {vs['cpu_per_job_ratio']}",
              flush=True)
    return result


def mode(batch: int) -> str:
    return "enqueue_call" if batch == 1 else f"enqueue_calls x{batch}"


def table_rows(backend: str, batch: int, s: dict[str, Any]) -> list[list[str]]:
    """One mode's rows: jobs/s, latency and CPU per job, with the baseline and the ratio
    beside each when it was measured."""
    name, per = f"{backend}, {mode(batch)}", "call" if batch == 1 else "batch"
    rows = [[f"{name}: jobs/s", f">= {GOAL_JOBS_PER_S}", fmt_spread(s["jobs_per_s"], 0)],
            [f"{name}: per {per} p50 / p99 (ms)", "",
             f"{fmt_spread(s['p50_ms'], 2)} / {fmt_spread(s['p99_ms'], 2)}"],
            [f"{name}: producer CPU per job (ms)", f"<= {1000 / GOAL_JOBS_PER_S:g}",
             fmt_spread(s["cpu_ms_per_job"], 2)]]
    vs = s.get("vs_baseline")
    if vs is not None:
        rows[0] += [fmt_spread(vs["baseline_jobs_per_s"], 0), fmt_spread(vs["jobs_per_s_ratio"])]
        rows[1] += [f"{fmt_spread(s['baseline_p50_ms'], 2)} / "
                    f"{fmt_spread(s['baseline_p99_ms'], 2)}", ""]
        rows[2] += [fmt_spread(vs["baseline_cpu_ms_per_job"], 3),
                    fmt_spread(vs["cpu_per_job_ratio"], 1)]
    return rows


def profile(srv: Servers, backend: str, jobs: int) -> str:
    point_producer_at(producer_env(srv, backend))
    loop(WARM_UP, 900_000)
    profiler = cProfile.Profile()
    profiler.enable()
    loop(jobs, 0)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per run (3000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per backend (3)")
    parser.add_argument("--batch", type=int, default=500,
                        help="jobs per enqueue_calls (500); 1 measures enqueue_call only")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one run per backend")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="beside each run, the same jobs as plain Core INSERTs and "
                             "LPUSHes, for ratios that move less with the machine (on)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    info = machine()
    runs: list[dict[str, Any]] = []
    modes = sorted({1, args.batch})
    profiles: dict[str, str] = {}
    with servers(postgres="postgresql" in args.backends) as srv:
        info["versions"]["postgresql"] = srv.postgresql_version()
        for run in range(args.runs):
            for backend in args.backends:
                for batch in modes:
                    runs.append(one_run(srv, backend, args.jobs, batch, run, args,
                                        first=not runs))
        if args.profile:
            for backend in args.backends:
                profiles[backend] = profile(srv, backend, args.jobs)
                print(f"\n=== cProfile, {backend}, {args.jobs} jobs\n{profiles[backend]}")
    summary: dict[str, dict[str, Any]] = {}
    rows = []
    for backend in args.backends:
        for batch in modes:
            mine = [r for r in runs if (r["backend"], r["batch"]) == (backend, batch)]
            s = summary[f"{backend} {mode(batch)}"] = {
                "jobs_per_s": spread([r["jobs_per_s"] for r in mine]),
                "p50_ms": spread([r["per_call_ms"]["p50"] for r in mine]),
                "p99_ms": spread([r["per_call_ms"]["p99"] for r in mine]),
                "cpu_ms_per_job": spread([r["cpu_ms_per_job"] for r in mine])}
            if args.baseline:
                s["baseline_p50_ms"] = spread([r["baseline"]["per_call_ms"]["p50"] for r in mine])
                s["baseline_p99_ms"] = spread([r["baseline"]["per_call_ms"]["p99"] for r in mine])
                s["vs_baseline"] = {name: spread([r["vs_baseline"][name] for r in mine])
                                    for name in VS_BASELINE}
            rows.extend(table_rows(backend, batch, s))
    headers = ["figure", "goal", "measured"]
    title = (f"One producer, {args.jobs} jobs per run and mode, Redis up, no workers: "
             f"median (min-max) over {args.runs} run(s)")
    if args.baseline:
        headers += ["baseline (same run)", "ratio dialer/baseline"]
        title += ("; baseline: the same rows and messages as one committed Core INSERT and "
                  "one LPUSH per job (per batch: one executemany INSERT and one LPUSH), "
                  "ratios per run")
    printed = print_table(title, headers, rows)
    loads = [r["load"]["load_1m"] for r in runs]
    print("\n" + describe_loads([r["load"] for r in runs]))
    write_results("enqueue", {
        "machine": info, "runs": args.runs, "jobs_per_run": args.jobs, "batch": args.batch,
        "baseline": args.baseline,
        "load_1m_per_run": {"min": min(loads), "max": max(loads)},
        "summary": summary,
        "goals_met": all((s["jobs_per_s"]["min"] or 0) >= GOAL_JOBS_PER_S
                         for s in summary.values()),
        "table": printed, "per_run": runs, "profiles": profiles,
    }, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
