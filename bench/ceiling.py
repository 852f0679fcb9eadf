"""The highest call rate the whole dialer sustains, and what each call costs in CPU.

    python -m bench.ceiling [--backends sqlite,postgresql] [--rates auto | 10,20,40]
                            [--duration 30] [--warmup 10] [--concurrency 4] [--profile]
                            [--baseline-tasks 20000 | --no-baseline]

For each backend and offered rate: a fresh database, Redis flushed, and every process
real and separate: the simulator (`python -m simulator`, its own process so its CPU is
not ours), the webhook under gunicorn, one Celery worker and beat, as harness/stack.py
starts them, with DIALER_CALLS_PER_SECOND far above the offered rate so the pace is not
what limits. The offer is open loop: jobs are written to the jobs table in advance as
`scheduled` with next_attempt_at = t0 + i/rate, so the dispatcher (beat, every
DIALER_DISPATCH_INTERVAL = 1 s as in production) releases them at the rate, and each goes
through claim, create, its signed status callbacks (DIALER_STATUS_CALLBACK_EVENTS:
answered and completed by default), the webhook, handle_status and the job's final state.
Nothing of ours runs in this process while measuring but a status count every 2 s.

A rate is sustained when, over the steady window (after --warmup), jobs reached a final
state at >= 95 % of the rate and the backlog (offered but not final) grew by less than
2 s worth of calls. CPU per call is the CPU of worker (prefork children included), beat
and webhook (gunicorn workers included), from /proc, over the window, divided by the calls
finished in it; Redis, PostgreSQL and the simulator are shown apart, and so is how busy
the whole machine was.

`--rates auto` (the default) searches instead of walking a fixed ladder, so the run takes
the same few steps on a slow machine and a fast one: a probe at 10 calls/s measures the
CPU per call of every process; the next rate is what that CPU predicts 2 cores carry,
then up by a quarter after a sustained rate and halfway back after one that was not,
until the highest sustained and the lowest unsustained rate are within 15 % (or
--max-steps). A list of rates is walked in order instead, stopping at the first rate not
sustained. Prints a table and writes bench/results/ceiling.json.

Once per run, before the steps, a baseline in the same conditions: a worker started as
the ceiling's (the same argv, -c and broker settings) but on bench/noop_app.py, whose
only task does nothing, drains --baseline-tasks messages pushed at once as the dialer
publishes (TaskMessages, LPUSH onto the dial queue). Its tasks/s and worker CPU per task
are what Celery alone costs per message on this machine; each step's CPU per call is also
given in those units ("a call costs X no-op tasks of CPU"), a ratio that moves less with
the machine than milliseconds do. --no-baseline skips it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import case, func, insert, select

from bench.common import (
    ROOT,
    Servers,
    add_run_options,
    exit_cleanly_on_sigterm,
    machine,
    point_producer_at,
    poll_until,
    print_table,
    servers,
    wait_for_quiet,
    write_results,
)
from bench.noop_app import NOOP_TASK
from bench.procstats import Profiler, Tracked, machine_ticks, print_hot_spots, self_cpu_s
from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, Stack, clean_environ
from worker.adapters.broker import PUSH_CHUNK
from worker.adapters.task_messages import TaskMessages
from worker.demo.processes import Process, free_port, wait_port, worker_argv
from worker.domain.names import DIAL_QUEUE
from worker.domain.statuses import FINAL_JOB_STATUSES, JobStatus
from worker.engine.context import Context
from worker.store.database import upgrade
from worker.store.models import Attempt, Event, Job

RESULTS = Path(__file__).resolve().parent / "results" / "ceiling.json"
GOAL_CALLS_PER_S = 100
SAMPLE_EVERY_S = 2.0
LEAD_S = 3.0  # the first job is due this long after the stack is up
KEEP_UP = 0.95
BACKLOG_GROWTH_S = 2.0
# Past this many seconds of calls of backlog growth inside the window, the rate cannot be
# sustained any more: stop the step early (after MIN_WINDOW_S, so finished/s means something).
GIVE_UP_GROWTH_S = 8.0
MIN_WINDOW_S = 10.0
TAIL_S = 2 * SAMPLE_EVERY_S
PROBE_RATE = 10.0
PREDICT_BUSY = 0.9  # share of the machine's cores the first guess may fill
CLOSE_ENOUGH = 1.15  # auto search ends when lowest unsustained / highest sustained <= this
NOOP_APP = "bench.noop_app"
# kombu's Redis transport holds a delivered, not yet acknowledged message in this hash.
UNACKED_KEY = "unacked"
SUCCEEDED_LOG = "] succeeded in "  # Celery's INFO line for every task that returned
BASELINE_TIMEOUT_S = 300.0


@dataclass
class SimProcess:
    """The simulator as its own process; Stack only needs its URL."""

    process: Process
    url: str


def start_simulator(workdir: Path, time_scale: float) -> SimProcess:
    """Its own process, so its CPU is told apart from ours; no call is refused or queued."""
    port = free_port()
    argv = [sys.executable, "-m", "simulator", "--port", str(port), "--cps", "100000",
            "--time-scale", str(time_scale), "--account-sid", SIM_ACCOUNT_SID,
            "--auth-token", SIM_AUTH_TOKEN, "--seed", "1"]
    process = Process(f"simulator-{port}", argv, {**clean_environ(), "PYTHONUNBUFFERED": "1"},
                      workdir)
    wait_port(process, port)
    return SimProcess(process, f"http://127.0.0.1:{port}")


def offer(ctx: Context, rate: float, count: int, t0: datetime) -> None:
    """`count` single-call jobs, due one every 1/rate s from t0, as enqueue_call stores them
    (already valid E.164 numbers; default retry policy; no campaign)."""
    settings = ctx.settings
    now = datetime.now(UTC)
    rows = [{
        "id": uuid.uuid4().hex, "to": f"+1415{2000000 + n:07d}", "from_": settings.default_from,
        "url": "https://example.com/voice.xml", "twiml": None, "idempotency_key": None,
        "campaign_id": None, "max_attempts": settings.max_attempts,
        "retry_on": list(settings.retry_on), "retry_delays": list(settings.retry_delays),
        "priority": 0, "status": JobStatus.SCHEDULED, "call_options": {}, "metadata_": {},
        "next_attempt_at": t0 + timedelta(seconds=n / rate), "queued_at": None,
        "attempts": 0, "created_at": now, "updated_at": now,
    } for n in range(count)]
    with ctx.database.session() as session:
        for start in range(0, count, 5000):
            session.execute(insert(Job), rows[start:start + 5000])


def job_counts(ctx: Context) -> Counter[str]:
    """Jobs per status: the offer is measured by what reached a final state."""
    with ctx.database.session() as session:
        rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return Counter({str(status): n for status, n in rows})


def event_counts(ctx: Context) -> dict[str, int]:
    """Events and attempts stored: every finished call leaves one event per status event
    its create asked for."""
    with ctx.database.session() as session:
        events = session.scalar(select(func.count()).select_from(Event)) or 0
        attempts, finished = session.execute(select(
            func.count(), func.sum(case((Attempt.ended_at.is_not(None), 1), else_=0))
        ).select_from(Attempt)).one()
    return {"events": events, "attempts": attempts, "attempts_ended": finished or 0}


def postgres_pid(started: Servers) -> int | None:
    """The postmaster's pid: its tree holds every backend, so their CPU counts too."""
    if started.postgres is None:
        return None
    try:
        return int((started.postgres.datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return None


@dataclass
class Step:
    """What one step measures while it runs (summarised into a dict afterwards)."""

    samples: list[dict[str, Any]]
    window: dict[str, Any]
    gave_up: bool
    count: int
    bench_cpu: float
    machine_busy: float


def measure(ctx: Context, rate: float, count: int, start_mono: float, tracked: dict[str, Tracked],
            args: argparse.Namespace, on_window: Callable[[], None]) -> Step:
    """Sample job counts and CPU every 2 s until the window ends (or the backlog runs away)."""
    samples: list[dict[str, Any]] = []
    window: dict[str, Any] = {}
    total_s = args.warmup + args.duration
    bench_cpu0 = self_cpu_s()
    gave_up = False
    ticks0: tuple[int, int] = (0, 0)
    while True:
        time.sleep(SAMPLE_EVERY_S)  # a sampling period, not a wait for a condition
        elapsed = time.monotonic() - start_mono
        counts = job_counts(ctx)
        offered = max(0, min(count, math.floor(elapsed * rate) + 1))
        final = sum(counts[s] for s in FINAL_JOB_STATUSES)
        cpu = {name: round(t.sample(), 3) for name, t in tracked.items()}
        samples.append({"t": round(elapsed, 1), "offered": offered, "final": final,
                        "backlog": offered - final, "statuses": dict(counts), "cpu_s": cpu})
        if "start" not in window and elapsed >= args.warmup:
            window["start"] = samples[-1]
            ticks0 = machine_ticks()
            on_window()
        if "start" in window:
            start = window["start"]
            growth = samples[-1]["backlog"] - start["backlog"]
            gave_up = (elapsed - start["t"] >= MIN_WINDOW_S
                       and growth > GIVE_UP_GROWTH_S * rate)
        if elapsed >= total_s or gave_up:
            window["end"] = samples[-1]
            break
    busy, total = (a - b for a, b in zip(machine_ticks(), ticks0, strict=True))
    return Step(samples, window, gave_up, count, self_cpu_s() - bench_cpu0,
                busy / total if total else math.nan)


def drain(ctx: Context, count: int, deadline: float) -> None:
    """Wait (until the monotonic `deadline`) for every offered job to reach a final state."""
    while (sum(job_counts(ctx)[s] for s in FINAL_JOB_STATUSES) < count
           and time.monotonic() < deadline):
        time.sleep(0.5)  # polling the database: nothing signals a job's end to this process


def baseline(started: Servers, args: argparse.Namespace) -> dict[str, Any]:
    """The no-op worker's tasks/s and CPU per task (see the module's docstring).

    The messages are built before the clock starts and pushed once the worker is ready:
    the push takes a small part of the drain, so the queue does not run dry before the
    end. The drain ends when the queue and kombu's unacknowledged set are empty and the
    worker has logged every task as succeeded.
    """
    client = redis.Redis.from_url(started.redis.url)
    client.flushall()
    load = round(os.getloadavg()[0], 2)
    workdir = started.workdir / "baseline"
    workdir.mkdir()
    # The run's directory is the worker's: `bench` is importable from the checkout only.
    env = {**clean_environ(), "PYTHONUNBUFFERED": "1", "DIALER_REDIS_URL": started.redis.url,
           "PYTHONPATH": str(ROOT)}
    argv = worker_argv("noop", args.concurrency)
    argv[argv.index("-A") + 1] = NOOP_APP
    messages = TaskMessages()
    bodies = [messages.build(NOOP_TASK, DIAL_QUEUE, args=(uuid.uuid4().hex,))
              for _ in range(args.baseline_tasks)]
    worker = Process("noop-worker", argv, env, workdir)
    try:
        worker.wait_for_log(" ready.", timeout=60)
        assert started.redis.proc is not None
        tracked = {"worker": Tracked("worker", worker.proc.pid),
                   "redis": Tracked("redis", started.redis.proc.pid)}
        for t in tracked.values():
            t.start()
        ticks0 = machine_ticks()
        began = time.monotonic()
        for start in range(0, len(bodies), PUSH_CHUNK):
            client.lpush(DIAL_QUEUE, *bodies[start:start + PUSH_CHUNK])
        pushed_s = time.monotonic() - began

        def drained() -> bool:
            # The log is read only once Redis holds nothing more: a cheap test first.
            return (not client.llen(DIAL_QUEUE) and not client.hlen(UNACKED_KEY)
                    and worker.log().count(SUCCEEDED_LOG) >= len(bodies))

        complete = poll_until(drained, BASELINE_TIMEOUT_S)
        elapsed = time.monotonic() - began
        cpu = {name: t.sample() for name, t in tracked.items()}
        busy, total = (a - b for a, b in zip(machine_ticks(), ticks0, strict=True))
        done = worker.log().count(SUCCEEDED_LOG)
    finally:
        worker.stop()

    def per_task(seconds: float) -> float | None:
        return round(1000 * seconds / done, 3) if done else None

    return {
        "task": NOOP_TASK, "tasks": len(bodies), "succeeded": done, "complete": complete,
        "push_s": round(pushed_s, 2), "drain_s": round(elapsed, 2),
        "tasks_per_s": round(done / elapsed, 1),
        "cpu_ms_per_task": per_task(cpu["worker"]),
        "cpu_ms_per_task_redis": per_task(cpu["redis"]),
        "cpu_cores_busy": {name: round(s / elapsed, 2) for name, s in cpu.items()},
        "machine_busy_pct": round(100 * busy / total, 1) if total else None,
        "peak_rss_mb": {role: round(kb / 1024, 1)
                        for role, kb in tracked["worker"].peak_rss_kb.items()},
        "processes": tracked["worker"].processes,
        "worker_argv": argv[1:], "worker_concurrency": args.concurrency,
        "load_1m_at_start": load, "load_1m_at_end": round(os.getloadavg()[0], 2),
    }


def report_baseline(base: dict[str, Any]) -> None:
    """The baseline's line, printed before the steps."""
    print(f"  {base['succeeded']}/{base['tasks']} no-op tasks in {base['drain_s']} s: "
          f"{base['tasks_per_s']} tasks/s, worker {base['cpu_ms_per_task']} CPU ms/task "
          f"(redis {base['cpu_ms_per_task_redis']}), cores busy {base['cpu_cores_busy']}, "
          f"machine {base['machine_busy_pct']}% busy, load {base['load_1m_at_start']}"
          + ("" if base["complete"] else " (NOT drained in time)"), flush=True)


def in_noop_tasks(step: dict[str, Any], base: dict[str, Any] | None) -> float | None:
    """Ours CPU per call over the no-op worker's CPU per task: how many Celery tasks that do
    nothing a call costs."""
    if base is None or not base["cpu_ms_per_task"] or step["cpu_ms_per_call_ours"] is None:
        return None
    return round(step["cpu_ms_per_call_ours"] / base["cpu_ms_per_task"], 1)


def run_step(started: Servers, backend: str, rate: float, args: argparse.Namespace,
             profile_to: Path | None) -> dict[str, Any]:
    """One offered rate on a fresh database and a fresh stack, stopped whatever happens."""
    database_url = started.database_url(backend)
    redis.Redis.from_url(started.redis.url).flushall()
    load = round(os.getloadavg()[0], 2)
    workdir = started.workdir / f"{backend}-{rate:g}"
    workdir.mkdir()
    sim = start_simulator(workdir, args.time_scale)
    stack = Stack(workdir, started.redis.url, database_url, sim,  # type: ignore[arg-type]
                  DIALER_CALLS_PER_SECOND=str(args.pace), DIALER_DISPATCH_INTERVAL="1",
                  DIALER_QUEUED_STALE_SECONDS="120", DIALER_TWILIO_TIMEOUT="15")
    try:
        ctx = point_producer_at(stack.env)
        upgrade(ctx.database.engine)  # SQLite: created here, not raced by the processes
        webhook = stack.start_webhook()
        worker = stack.start_worker("w1", args.concurrency)
        beat = stack.start_beat()
        # Offered past the window's end too: its last sample comes up to a sampling period
        # late, and must not see an offer that already stopped.
        count = math.ceil(rate * (args.warmup + args.duration + TAIL_S))
        t0 = datetime.now(UTC) + timedelta(seconds=LEAD_S + count / 20_000)
        offer(ctx, rate, count, t0)
        ours = {"worker": Tracked("worker", worker.proc.pid),
                "beat": Tracked("beat", beat.proc.pid),
                "webhook": Tracked("webhook", webhook.proc.pid)}
        assert started.redis.proc is not None
        others = {"simulator": Tracked("simulator", sim.process.proc.pid),
                  "redis": Tracked("redis", started.redis.proc.pid)}
        pg = postgres_pid(started)
        if backend == "postgresql" and pg is not None:
            others["postgresql"] = Tracked("postgresql", pg)
        tracked = {**ours, **others}
        for t in tracked.values():
            t.start()
        start_mono = time.monotonic() + (t0 - datetime.now(UTC)).total_seconds()
        profiler = Profiler(profile_to) if profile_to else None

        def on_window() -> None:
            if profiler is not None:
                profiler.start({"worker": worker.proc.pid, "webhook": webhook.proc.pid},
                               max(1.0, args.duration - 2 * SAMPLE_EVERY_S))

        step = measure(ctx, rate, count, start_mono, tracked, args, on_window)
        profile = profiler.finish() if profiler is not None else None
        # Let what was offered drain, to check every job ended (and to see the lag).
        last_offer = start_mono + count / rate
        drain(ctx, count, time.monotonic() + 5 if step.gave_up else last_offer + args.drain)
        drained = time.monotonic() - last_offer
        integrity = event_counts(ctx)
        final_counts = dict(job_counts(ctx))
        for t in tracked.values():
            t.sample()
        return summarise_step(backend, rate, args, load, step, tracked, ours, final_counts,
                              integrity, drained, profile)
    finally:
        stack.stop()
        sim.process.stop()


def summarise_step(backend: str, rate: float, args: argparse.Namespace, load: float,
                   step: Step, tracked: dict[str, Tracked], ours: dict[str, Tracked],
                   final_counts: dict[str, int], integrity: dict[str, int], drained: float,
                   profile: dict[str, Any] | None) -> dict[str, Any]:
    """The step as one JSON object: the figures over the window, and the raw samples."""
    samples, window = step.samples, step.window
    start, end = window.get("start", samples[0]), window["end"]
    span = max(1e-9, end["t"] - start["t"])
    finished = end["final"] - start["final"]
    achieved = finished / span
    growth = end["backlog"] - start["backlog"]
    cpu = {name: end["cpu_s"][name] - start["cpu_s"][name] for name in tracked}
    ours_cpu = sum(cpu[name] for name in ours)
    sustained = (not step.gave_up and achieved >= KEEP_UP * rate
                 and growth < max(BACKLOG_GROWTH_S * rate, 5))

    def per_call(seconds: float) -> float | None:
        return round(1000 * seconds / finished, 2) if finished else None

    return {
        "backend": backend, "offered_per_s": rate, "sustained": sustained,
        "gave_up_early": step.gave_up, "window_s": round(span, 1),
        "finished_per_s": round(achieved, 1),
        "backlog_at_window_start": start["backlog"], "backlog_at_end": end["backlog"],
        "backlog_growth": growth,
        "cpu_ms_per_call_ours": per_call(ours_cpu),
        "cpu_ms_per_call_all": per_call(sum(cpu.values())),
        "cpu_ms_per_call": {name: per_call(cpu[name]) for name in tracked},
        "cpu_cores_busy": {name: round(cpu[name] / span, 2) for name in tracked}
        | {"ours": round(ours_cpu / span, 2)},
        "machine_busy_pct": round(100 * step.machine_busy, 1),
        "peak_rss_mb": {name: {role: round(kb / 1024, 1) for role, kb in t.peak_rss_kb.items()}
                        for name, t in tracked.items()},
        "processes": {name: t.processes for name, t in tracked.items()},
        "jobs_offered": step.count, "final_counts": final_counts, "integrity": integrity,
        "all_jobs_completed": final_counts.get("completed", 0) == step.count,
        "drain_s_after_last_offer": round(drained, 1),
        "bench_cpu_share": round(step.bench_cpu / max(1e-9, samples[-1]["t"]), 3),
        "load_1m_at_start": load, "load_1m_at_end": round(os.getloadavg()[0], 2),
        "worker_concurrency": args.concurrency,
        "samples": samples,
        **({"profile": profile} if profile else {}),
    }


def _nice(rate: float) -> float:
    """Round a rate to a figure a reader can compare: whole calls/s, multiples of 5 past 20."""
    return float(max(1, round(rate / 5) * 5 if rate > 20 else round(rate)))


def next_rate(steps: list[dict[str, Any]], args: argparse.Namespace) -> float | None:
    """The auto search: predict from the probe's CPU per call, then bracket the ceiling."""
    if len(steps) >= args.max_steps:
        return None
    ok = [s["offered_per_s"] for s in steps if s["sustained"]]
    bad = [s["offered_per_s"] for s in steps if not s["sustained"]]
    low, high = max(ok, default=0.0), min(bad, default=math.inf)
    if not ok:
        candidate = high / 2
    elif len(steps) == 1 and steps[0]["cpu_ms_per_call_all"]:
        candidate = PREDICT_BUSY * (os.cpu_count() or 1) * 1000 / steps[0]["cpu_ms_per_call_all"]
    elif math.isinf(high):
        candidate = low * 1.25
    else:
        candidate = (low + high) / 2
    candidate = min(_nice(candidate), args.max_rate)
    if candidate <= low or candidate >= high or (ok and high / low <= CLOSE_ENOUGH):
        return None
    return candidate


def table(steps: list[dict[str, Any]]) -> None:
    """The printed table, the goal beside each row, and ours CPU per call in no-op tasks."""
    headers = ["backend", "offered/s", "finished/s", "sustained", "goal", "backlog start->end",
               "ours CPU ms/call", "= no-op tasks", "worker", "webhook", "beat", "redis",
               "postgres",
               "simulator", "cores busy (ours)", "machine busy %",
               "peak RSS MB worker main/child", "webhook main/child", "beat", "load 1m"]
    rows = []
    for s in steps:
        per = s["cpu_ms_per_call"]
        rss = s["peak_rss_mb"]
        rows.append([
            s["backend"], f"{s['offered_per_s']:g}", f"{s['finished_per_s']:.1f}",
            "yes" if s["sustained"] else ("NO (stopped early)" if s["gave_up_early"] else "NO"),
            f">= {GOAL_CALLS_PER_S}/s",
            f"{s['backlog_at_window_start']}->{s['backlog_at_end']}",
            f"{s['cpu_ms_per_call_ours']}", f"{s.get('cpu_in_noop_tasks', '-')}",
            f"{per.get('worker')}", f"{per.get('webhook')}",
            f"{per.get('beat')}", f"{per.get('redis')}", f"{per.get('postgresql', '-')}",
            f"{per.get('simulator')}", f"{s['cpu_cores_busy']['ours']}",
            f"{s['machine_busy_pct']}",
            f"{rss['worker'].get('main')}/{rss['worker'].get('largest_child')}",
            f"{rss['webhook'].get('main')}/{rss['webhook'].get('largest_child')}",
            f"{rss['beat'].get('main')}", f"{s['load_1m_at_start']}",
        ])
    print_table(f"End-to-end ceiling (goal: {GOAL_CALLS_PER_S} calls/s sustained on 2 cores); "
                "CPU in ms per finished call over the steady window", headers, rows)


def report_step(step: dict[str, Any]) -> None:
    """One line per step as it ends (and the profile headline with --profile)."""
    print(f"  finished {step['finished_per_s']}/s, backlog "
          f"{step['backlog_at_window_start']}->{step['backlog_at_end']}, "
          f"ours {step['cpu_ms_per_call_ours']} CPU ms/call (all {step['cpu_ms_per_call_all']}; "
          f"= {step.get('cpu_in_noop_tasks', '-')} no-op tasks), "
          f"cores busy {step['cpu_cores_busy']}, machine {step['machine_busy_pct']}% busy, "
          f"{'sustained' if step['sustained'] else 'NOT sustained'}", flush=True)
    for name, spots in step.get("profile", {}).items():
        print_hot_spots(name, spots)


def rates_for(backend: str, started: Servers, args: argparse.Namespace,
              steps: list[dict[str, Any]], base: dict[str, Any] | None) -> None:
    """Run this backend's steps (auto search or the given ladder), appending to `steps`."""
    mine: list[dict[str, Any]] = []
    rate: float | None = PROBE_RATE if args.rates is None else args.rates[0]
    while rate is not None:
        print(f"{backend}: offering {rate:g} calls/s for {args.warmup + args.duration:g} s",
              flush=True)
        profile_to = (args.output.with_name(f"ceiling-profile-{backend}-{rate:g}")
                      if args.profile else None)
        began = time.monotonic()
        step = run_step(started, backend, rate, args, profile_to)
        step["step_wall_s"] = round(time.monotonic() - began, 1)
        if base is not None:
            step["cpu_in_noop_tasks"] = in_noop_tasks(step, base)
        steps.append(step)
        mine.append(step)
        report_step(step)
        if args.rates is None:
            rate = next_rate(mine, args)
        elif step["sustained"] or args.keep_going:
            rate = args.rates[len(mine)] if len(mine) < len(args.rates) else None
        else:
            rate = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="sqlite, postgresql or both (default both)")
    parser.add_argument("--rates", default="auto",
                        help="auto (search, see above) or offered calls/s, stepped up in order")
    parser.add_argument("--max-steps", type=int, default=3,
                        help="steps per backend in the auto search, the probe included (3)")
    parser.add_argument("--max-rate", type=float, default=2 * GOAL_CALLS_PER_S,
                        help="highest rate the auto search offers (200)")
    parser.add_argument("--duration", type=float, default=30,
                        help="seconds measured at each rate, after the warm-up (30)")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds offered before the window starts (10)")
    parser.add_argument("--drain", type=float, default=30,
                        help="seconds allowed after the last offer for every job to end (30)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="prefork processes of the Celery worker (4)")
    parser.add_argument("--pace", type=float, default=1000,
                        help="DIALER_CALLS_PER_SECOND, far above the offer (1000)")
    parser.add_argument("--time-scale", type=float, default=0.02,
                        help="simulator time scale: 0.02 makes a 10 s call last 0.2 s")
    parser.add_argument("--keep-going", action="store_true",
                        help="with a list of rates, try every one even after one is not "
                             "sustained")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker and webhook trees during each window "
                             "(costs CPU: figures from such a run are not the reference)")
    parser.add_argument("--baseline-tasks", type=int, default=20_000,
                        help="no-op tasks the baseline worker drains (20000)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the no-op Celery task baseline")
    add_run_options(parser, RESULTS, max_load=True)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        args.rates = (None if args.rates.strip() == "auto"
                      else [float(r) for r in args.rates.split(",") if r.strip()])
    except ValueError:
        parser.error("--rates is auto or a comma-separated list of calls/s")
    bad_rates = args.rates is not None and (not args.rates or any(r <= 0 for r in args.rates))
    if (bad_rates or args.duration < MIN_WINDOW_S or args.concurrency < 1 or args.max_steps < 1
            or args.baseline_tasks < 1):
        parser.error(f"--rates > 0, --duration >= {MIN_WINDOW_S:g}, --concurrency >= 1, "
                     "--max-steps >= 1 and --baseline-tasks >= 1 are required")
    if not set(backends) <= {"sqlite", "postgresql"} or not backends:
        parser.error("--backends takes sqlite and/or postgresql")
    exit_cleanly_on_sigterm()
    steps: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    quiet = wait_for_quiet(args.max_load, args.quiet_timeout)
    with servers(postgres="postgresql" in backends) as started:
        try:
            if not args.no_baseline:
                print(f"baseline: {args.baseline_tasks} no-op Celery tasks "
                      f"(-c {args.concurrency})", flush=True)
                base = baseline(started, args)
                report_baseline(base)
            for backend in backends:
                rates_for(backend, started, args, steps, base)
        except KeyboardInterrupt:
            print("interrupted: writing what was measured", file=sys.stderr)
        postgresql = started.postgresql_version()
    if steps:
        table(steps)
    best = {b: max((s["offered_per_s"] for s in steps if s["backend"] == b and s["sustained"]),
                   default=None) for b in backends}
    if base is not None:
        print(f"baseline: {base['tasks_per_s']} no-op tasks/s, {base['cpu_ms_per_task']} "
              "worker CPU ms per no-op task")
    for backend, rate in best.items():
        over = [s for s in steps if s["backend"] == backend and not s["sustained"]]
        seen = max((s["finished_per_s"] for s in over), default=None)
        at = next((s for s in steps if s["backend"] == backend and s["offered_per_s"] == rate),
                  None)
        cost = at.get("cpu_in_noop_tasks") if at is not None else None
        print(f"{backend}: highest sustained rate {rate} calls/s (goal {GOAL_CALLS_PER_S})"
              + (f"; at most {seen}/s finished when offered more" if seen else "")
              + (f"; a call costs {cost} no-op tasks of CPU ({at['cpu_ms_per_call_ours']} / "
                 f"{base['cpu_ms_per_task']} ms) at {rate:g}/s"
                 if cost is not None and at is not None and base is not None else ""))
    write_results("ceiling", {
        "machine": machine() | {"postgresql": postgresql},
        "settings": settings, "load_before": quiet,
        "goal_calls_per_s": GOAL_CALLS_PER_S, "highest_sustained": best, "baseline": base,
        "goals_met": all(r is not None and r >= GOAL_CALLS_PER_S for r in best.values()),
        "steps": steps}, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
