"""How fast one producer enqueues: `enqueue_call` in a loop, and `enqueue_calls` in batches.

    python -m bench.enqueue [--jobs 3000] [--runs 3] [--batch 500]
                            [--backends sqlite postgresql]

A private redis-server runs (every enqueue_call publishes place_call to it) and no worker
consumes, so the figure is the producer's cost alone: validation, the DNC check, one
committed INSERT and one publish per job; with `enqueue_calls`, one transaction and one
broker connection per batch of --batch jobs. PostgreSQL is a throwaway cluster started
with harness/servers.py's PostgresServer (fsync off, as the tests run it; a
production server with fsync on pays one WAL flush per commit on top). Each run gets a
fresh database and a warm-up of 50 jobs that are not counted. Besides jobs/s, each run
records the producer's CPU time per job (time.process_time): a per-call cost that the
shared machine's load moves less than the wall clock (the Redis and PostgreSQL servers'
CPU is not in it). All runs take about 2 minutes on a 2-core machine.

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
from typing import Any

import redis

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
    servers,
    settle,
    spread,
    write_results,
)
from worker.api import enqueue_call, enqueue_calls
from worker.domain.names import DIAL_QUEUE

GOAL_JOBS_PER_S = 1000
WARM_UP = 50
VOICE_URL = "https://example.com/voice.xml"
BACKENDS = ("sqlite", "postgresql")
AREAS = (201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218)


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


def one_run(srv: Servers, backend: str, jobs: int, batch: int, run: int,
            quiet_timeout: float, first: bool) -> dict[str, Any]:
    load = settle(first, quiet_timeout)
    redis.Redis.from_url(srv.redis.url).flushall()
    point_producer_at(producer_env(srv, backend))
    loop(WARM_UP, 900_000)
    started, cpu = time.perf_counter(), time.process_time()
    took = loop(jobs, 0, batch)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    queued = redis.Redis.from_url(srv.redis.url).llen(DIAL_QUEUE)
    result = {"backend": backend, "batch": batch, "run": run + 1, "load": load, "jobs": jobs,
              "seconds": round(elapsed, 3), "jobs_per_s": round(jobs / elapsed, 1),
              "cpu_ms_per_job": round(cpu / jobs * 1000, 3),
              "per_call_ms": {"p50": ms(percentile(took, 50)), "p99": ms(percentile(took, 99)),
                             "max": ms(max(took))},
              "published": queued - WARM_UP}
    print(f"  run {run + 1} {backend} {mode(batch)}: {result['jobs_per_s']:.0f} jobs/s "
          f"(p50 {result['per_call_ms']['p50']} ms, producer CPU {result['cpu_ms_per_job']} "
          f"ms/job, load {load['load_1m']:.2f})", flush=True)
    return result


def mode(batch: int) -> str:
    return "enqueue_call" if batch == 1 else f"enqueue_calls x{batch}"


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
                    runs.append(one_run(srv, backend, args.jobs, batch, run,
                                        args.quiet_timeout, first=not runs))
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
            name, per = f"{backend}, {mode(batch)}", "call" if batch == 1 else "batch"
            rows.append([f"{name}: jobs/s", f">= {GOAL_JOBS_PER_S}",
                         fmt_spread(s["jobs_per_s"], 0)])
            rows.append([f"{name}: per {per} p50 / p99 (ms)", "",
                         f"{fmt_spread(s['p50_ms'], 2)} / {fmt_spread(s['p99_ms'], 2)}"])
            rows.append([f"{name}: producer CPU per job (ms)", f"<= {1000 / GOAL_JOBS_PER_S:g}",
                         fmt_spread(s["cpu_ms_per_job"], 2)])
    printed = print_table(
        f"One producer, {args.jobs} jobs per run and mode, Redis up, no workers: "
        f"median (min-max) over {args.runs} run(s)", ["figure", "goal", "measured"], rows)
    loads = [r["load"]["load_1m"] for r in runs]
    print("\n" + describe_loads([r["load"] for r in runs]))
    write_results("enqueue", {
        "machine": info, "runs": args.runs, "jobs_per_run": args.jobs, "batch": args.batch,
        "load_1m_per_run": {"min": min(loads), "max": max(loads)},
        "summary": summary,
        "goals_met": all((s["jobs_per_s"]["min"] or 0) >= GOAL_JOBS_PER_S
                         for s in summary.values()),
        "table": printed, "per_run": runs, "profiles": profiles,
    }, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
