"""Signed status callbacks per second, and their latency, through the webhook under gunicorn.

    python -m bench.webhook_load [--configs 2xgevent,2x4] [--rates 100,500,1000,2000]
                                 [--clients 16,64] [--duration 8] [--runs 3] [--profile]
                                 [--no-baseline]

Starts a private redis-server and the webhook exactly as `webhook_argv` runs it (gunicorn,
gevent's worker; WORKERSxgevent, or WORKERSxTHREADS for gthread, in --configs sets the
shape), with signature verification and publishing to Redis on. The load comes from this
process: aiohttp, bodies signed in advance (Twilio's status callback fields, four statuses
per call), so the generator spends its CPU on HTTP only. Throughput uses closed-loop
clients that send as fast as answers come back: their best rate is the capacity. Latency
figures use an open-loop schedule (request i is due at i/rate and its latency counts from
then, so a stalled server cannot hide its queue); rates past 1.5x the capacity are skipped
(they would only measure a queue growing), except the goal's 500/s.

Every phase checks that each 204 left exactly one message in Redis. The generator shares
the 2 cores with gunicorn and Redis, so its own CPU share is reported beside each figure.

The baseline (on unless --no-baseline) is a trivial WSGI app (bench.trivial_wsgi: read the
body, answer 204) under the same gunicorn command line, sent the same bodies by the same
closed-loop clients and open-loop rates. Its phase runs right beside the webhook's at each
load, in an order that alternates between runs, so both see the same machine: the ratio
webhook/baseline of accepted/s and of CPU per request moves less with the machine's noise
than either figure alone. Nothing is published there, so nothing is checked.
Prints the tables and writes bench/results/webhook_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis

from bench.common import (
    ROOT,
    GunicornShape,
    add_run_options,
    exit_cleanly_on_sigterm,
    fmt_spread,
    machine,
    percentile,
    print_table,
    servers,
    spread,
    wait_for_quiet,
    write_results,
)
from bench.http_load import Phase, timed_post
from bench.procstats import Profiler, Tracked, print_hot_spots, self_cpu_s
from harness.stack import clean_environ
from simulator.signing import signature
from worker.demo.processes import Process, free_port, stop_all, wait_port, webhook_argv
from worker.domain.names import EVENTS_QUEUE

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-webhook-token"
RESULTS = Path(__file__).resolve().parent / "results" / "webhook_load.json"
GOAL_MAX_PER_S = 2000
GOAL_P99_MS_AT_500 = 20.0
GOAL_P99_AT_PER_S = 500.0
SKIP_PAST_CAPACITY = 1.5  # open-loop rates above this times the closed-loop best are skipped
STATUSES = ("initiated", "ringing", "in-progress", "completed")
REQUEST_TIMEOUT_S = 10
BASELINE_APP = "bench.trivial_wsgi:app"
# What each webhook phase records of its baseline phase, and the ratios webhook/baseline.
VS_BASELINE = ("baseline_accepted_per_s", "baseline_p99_ms", "baseline_cpu_ms_per_request",
               "accepted_ratio", "cpu_per_request_ratio")


@dataclass(frozen=True)
class Signed:
    """A callback ready to send: signing costs CPU the generator must not spend mid-run."""
    body: bytes
    headers: dict[str, str]


def signed_callbacks(url: str, calls: int) -> list[Signed]:
    """Four callbacks per made-up call, shaped as Twilio sends them, signed for `url`."""
    out: list[Signed] = []
    for n in range(calls):
        call_sid = f"CA{n:032x}"
        for seq, status in enumerate(STATUSES):
            params = {
                "AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": status,
                "From": "+15105550100", "To": f"+1415{n % 10_000_000:07d}",
                "Caller": "+15105550100", "Called": f"+1415{n % 10_000_000:07d}",
                "Direction": "outbound-api", "ApiVersion": "2010-04-01",
                "CallbackSource": "call-progress-events", "SequenceNumber": str(seq),
                "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000",
                "ToCity": "SAN FRANCISCO", "ToState": "CA", "ToZip": "94105",
                "ToCountry": "US", "FromCity": "OAKLAND", "FromState": "CA",
                "FromZip": "94612", "FromCountry": "US",
            }
            if status == "completed":
                params |= {"CallDuration": "7", "Duration": "1", "SipResponseCode": "200"}
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": signature(AUTH_TOKEN, url, params.items()),
                       "I-Twilio-Idempotency-Token": f"{ACCOUNT_SID}-{n:024x}{seq:08x}"}
            out.append(Signed(urlencode(params).encode(), headers))
    return out


async def open_loop(url: str, items: list[Signed], rate: float, duration: float) -> Phase:
    """Request i is due at start + i/rate, whatever happened to the earlier ones."""
    phase = Phase()
    total = max(1, round(rate * duration))
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512),
                                     timeout=timeout) as session:
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.02
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                phase.late_starts += 1
            item = items[i % len(items)]
            task = asyncio.create_task(
                timed_post(session, url, item.body, due, phase, item.headers))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
    return phase


async def closed_loop(url: str, items: list[Signed], clients: int, duration: float) -> Phase:
    """`clients` connections, each sending its next callback as soon as one is answered."""
    phase = Phase()
    counter = iter(range(sys.maxsize))
    stop_at = time.perf_counter() + duration
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients),
                                     timeout=timeout) as session:

        async def client() -> None:
            while (now := time.perf_counter()) < stop_at:
                item = items[next(counter) % len(items)]
                await timed_post(session, url, item.body, now, phase, item.headers)

        await asyncio.gather(*(client() for _ in range(clients)))
    return phase


def run_phase(kind: str, level: float, url: str, items: list[Signed], duration: float,
              webhook: Tracked, broker: Tracked, queue: redis.Redis | None,
              profiler: Profiler | None = None) -> dict[str, Any]:
    """One open- or closed-loop phase, with the CPU of webhook, Redis and generator; without
    a queue (the baseline, whose server is tracked as `webhook`) nothing is published."""
    if queue is not None:
        queue.delete(EVENTS_QUEUE)
    webhook.start()
    broker.start()
    if profiler is not None:
        profiler.start({"webhook": webhook.root}, duration - 1)
    cpu0, wall0 = self_cpu_s(), time.perf_counter()
    if kind == "open":
        phase = asyncio.run(open_loop(url, items, level, duration))
    else:
        phase = asyncio.run(closed_loop(url, items, int(level), duration))
    wall = time.perf_counter() - wall0
    gen_cpu = self_cpu_s() - cpu0
    hook_cpu, redis_cpu = webhook.sample(), broker.sample()
    hook_waited = webhook.waited_for_cpu_s()
    published = int(queue.llen(EVENTS_QUEUE)) if queue is not None else None
    ok = phase.statuses.get("204", 0)
    lat = phase.latencies
    return {
        "kind": kind,
        "offered_per_s" if kind == "open" else "clients": level,
        "requests": sum(phase.statuses.values()),
        "statuses": phase.statuses,
        "published": published,
        "published_matches_204": published == ok if queue is not None else None,
        "wall_s": round(wall, 2),
        "accepted_per_s": round(ok / wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p90_ms": round(percentile(lat, 90) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "max_ms": round(max(lat, default=float("nan")) * 1000, 2),
        "late_starts": phase.late_starts,
        "generator_cpu_pct": round(100 * gen_cpu / wall, 1),
        "webhook_cpu_pct": round(100 * hook_cpu / wall, 1),
        # Runnable but off a core, summed over threads: the share CPU contention took.
        "webhook_runqueue_pct": round(100 * hook_waited / wall, 1),
        "redis_cpu_pct": round(100 * redis_cpu / wall, 1),
        "webhook_cpu_ms_per_callback": round(1000 * hook_cpu / ok, 3) if ok else None,
        **({"profile": profiler.finish()} if profiler is not None else {}),
    }


def baseline_argv(port: int) -> list[str]:
    """webhook_argv's gunicorn command line serving the trivial app instead of the webhook."""
    return [*webhook_argv(port)[:-1], BASELINE_APP]


def versus(hook: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """The baseline phase's figures beside the webhook's, and the ratios webhook/baseline."""
    hook_cpu, base_cpu = hook["webhook_cpu_ms_per_callback"], base["webhook_cpu_ms_per_callback"]
    return {
        "baseline_accepted_per_s": base["accepted_per_s"],
        "baseline_p99_ms": base["p99_ms"],
        "baseline_cpu_ms_per_request": base_cpu,
        "accepted_ratio": (round(hook["accepted_per_s"] / base["accepted_per_s"], 3)
                           if base["accepted_per_s"] else None),
        "cpu_per_request_ratio": (round(hook_cpu / base_cpu, 2)
                                  if hook_cpu is not None and base_cpu else None),
    }


def run_config(workdir: Path, redis_url: str, redis_pid: int, config: GunicornShape,
               args: argparse.Namespace, profile_to: Path | None,
               baseline_first: bool = False) -> dict[str, Any]:
    """One gunicorn config: closed loop first (its best rate is the capacity), then the open-
    loop rates, skipping those far past capacity (they only measure a growing queue) except
    the goal's 500/s, which is always measured. With --baseline, the trivial app runs in the
    same shape beside it, its phase next to the webhook's at every load, first when
    `baseline_first`."""
    port = free_port()
    env = {**clean_environ(), "PYTHONUNBUFFERED": "1",
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "DIALER_PUBLIC_URL": f"http://127.0.0.1:{port}", "DIALER_REDIS_URL": redis_url}
    url = f"http://127.0.0.1:{port}/twilio/status"
    items = signed_callbacks(url, args.calls)  # the port is part of the signed URL
    load = round(os.getloadavg()[0], 2)
    base_port = free_port()
    while base_port == port:
        base_port = free_port()
    base_url = f"http://127.0.0.1:{base_port}/twilio/status"
    # bench is not an installed package: the path lets gunicorn import the app from workdir.
    base_env = {**clean_environ(), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    processes = [Process(f"webhook-{port}", config.apply(webhook_argv(port)), env, workdir)]
    if args.baseline:
        processes.append(Process(f"baseline-{base_port}", config.apply(baseline_argv(base_port)),
                                 base_env, workdir))
    try:
        for process, listening in zip(processes, (port, base_port), strict=False):
            wait_port(process, listening)
        webhook = Tracked("webhook", processes[0].proc.pid)
        trivial = Tracked("baseline", processes[1].proc.pid) if args.baseline else None
        broker = Tracked("redis", redis_pid)
        queue = redis.Redis.from_url(redis_url)
        asyncio.run(closed_loop(url, items, 8, 2.0))  # warm up: imports, connections, caches
        if args.baseline:
            asyncio.run(closed_loop(base_url, items, 8, 2.0))
        phases: list[dict[str, Any]] = []
        baseline_phases: list[dict[str, Any]] = []

        def baseline_phase(kind: str, level: float) -> None:
            assert trivial is not None
            baseline_phases.append(run_phase(kind, level, base_url, items, args.duration,
                                             trivial, broker, None))

        def measure(kind: str, level: float, profiler: Profiler | None = None) -> None:
            """The webhook's phase at this load and, beside it, the baseline's."""
            if args.baseline and baseline_first:
                baseline_phase(kind, level)
            hook = run_phase(kind, level, url, items, args.duration, webhook, broker, queue,
                             profiler)
            if args.baseline and not baseline_first:
                baseline_phase(kind, level)
            if args.baseline:
                hook["vs_baseline"] = versus(hook, baseline_phases[-1])
            phases.append(hook)

        for n, clients in enumerate(args.clients):
            # The profile, when asked for, covers the most concurrent closed loop.
            profiler = (Profiler(profile_to) if profile_to is not None
                        and n == len(args.clients) - 1 else None)
            measure("closed", clients, profiler)
        capacity = max(p["accepted_per_s"] for p in phases)
        skipped = [r for r in args.rates
                   if r > SKIP_PAST_CAPACITY * capacity and r != GOAL_P99_AT_PER_S]
        for rate in args.rates:
            if rate not in skipped:
                measure("open", rate)
        queue.delete(EVENTS_QUEUE)
        return {"config": str(config), "workers": config.workers, "threads": config.threads,
                "worker_tmp_dir_shm": config.shm, "load_1m_at_start": load,
                "load_1m_at_end": round(os.getloadavg()[0], 2),
                "open_rates_skipped_past_capacity": skipped,
                "gunicorn_processes": webhook.processes,
                "peak_rss_kb": webhook.peak_rss_kb, "phases": phases,
                **({"baseline_first": baseline_first, "baseline_app": BASELINE_APP,
                    "baseline_peak_rss_kb": trivial.peak_rss_kb,
                    "baseline_phases": baseline_phases} if trivial is not None else {})}
    finally:
        stop_all(processes)


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (config, phase) with min/median/max over the runs."""
    rows: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        for phase in run["phases"]:
            level = phase.get("offered_per_s", phase.get("clients"))
            rows.setdefault((run["config"], phase["kind"], level), []).append(phase)
    return [{
        "config": config, "kind": kind, "level": level, "runs": len(phases),
        **{name: spread([p[name] for p in phases])
           for name in ("accepted_per_s", "p50_ms", "p99_ms", "generator_cpu_pct",
                        "webhook_cpu_pct", "webhook_runqueue_pct", "redis_cpu_pct",
                        "webhook_cpu_ms_per_callback")},
        "all_204_published": all(p["published_matches_204"] for p in phases),
        "non_204": sum(n for p in phases for s, n in p["statuses"].items() if s != "204"),
        **({"vs_baseline": {name: spread([p["vs_baseline"][name] for p in phases])
                            for name in VS_BASELINE}}
           if all("vs_baseline" in p for p in phases) else {}),
    } for (config, kind, level), phases in rows.items()]


def load_label(row: dict[str, Any]) -> str:
    return (f"{row['level']:g}/s open loop" if row["kind"] == "open"
            else f"{row['level']} clients closed loop")


def table(summary: list[dict[str, Any]]) -> str:
    """The printed table, each row with the goal it answers."""
    headers = ["gunicorn", "offered load", "accepted/s", "p50 ms", "p99 ms", "goal",
               "generator CPU %", "webhook CPU %", "webhook run-queue %", "redis CPU %",
               "webhook CPU ms/callback",
               "non-204", "published = 204s"]
    rows = []
    for row in summary:
        load = load_label(row)
        if row["kind"] == "closed":
            goal = f"accepted >= {GOAL_MAX_PER_S}/s"
        elif row["level"] == GOAL_P99_AT_PER_S:
            goal = f"p99 < {GOAL_P99_MS_AT_500:g} ms"
        else:
            goal = "-"
        rows.append([row["config"], load, fmt_spread(row["accepted_per_s"], 0),
                     fmt_spread(row["p50_ms"], 1), fmt_spread(row["p99_ms"], 1), goal,
                     fmt_spread(row["generator_cpu_pct"], 0),
                     fmt_spread(row["webhook_cpu_pct"], 0),
                     fmt_spread(row["webhook_runqueue_pct"], 0),
                     fmt_spread(row["redis_cpu_pct"], 0),
                     fmt_spread(row["webhook_cpu_ms_per_callback"], 2), str(row["non_204"]),
                     "yes" if row["all_204_published"] else "NO"])
    return print_table(
        f"Webhook: signed callbacks through gunicorn to Redis, median (min-max) of "
        f"{max((r['runs'] for r in summary), default=0)} runs (goal: >= {GOAL_MAX_PER_S}/s; "
        f"p99 < {GOAL_P99_MS_AT_500:g} ms at 500/s)", headers, rows)


def baseline_table(summary: list[dict[str, Any]]) -> str | None:
    """The webhook beside the trivial app at each load: the ratios are the figures to follow,
    as both sides moved with the machine alike."""
    rows = []
    for row in summary:
        if "vs_baseline" not in row:
            continue
        vs = row["vs_baseline"]
        rows.append([row["config"], load_label(row),
                     fmt_spread(row["accepted_per_s"], 0),
                     fmt_spread(vs["baseline_accepted_per_s"], 0),
                     fmt_spread(vs["accepted_ratio"], 2),
                     fmt_spread(row["p99_ms"], 1), fmt_spread(vs["baseline_p99_ms"], 1),
                     fmt_spread(row["webhook_cpu_ms_per_callback"], 2),
                     fmt_spread(vs["baseline_cpu_ms_per_request"], 2),
                     fmt_spread(vs["cpu_per_request_ratio"], 2)])
    if not rows:
        return None
    headers = ["gunicorn", "offered load", "webhook accepted/s", "baseline accepted/s",
               "accepted ratio", "webhook p99 ms", "baseline p99 ms", "webhook CPU ms/req",
               "baseline CPU ms/req", "CPU/req ratio"]
    return print_table(
        f"Webhook vs baseline (a trivial WSGI app reading the body and answering 204, same "
        f"gunicorn shape, same load, same run), median (min-max) of "
        f"{max(r['runs'] for r in summary)} runs; ratios are webhook/baseline per run",
        headers, rows)


def verdict(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """The webhook's goals, per config: max accepted/s >= 2000; p99 < 20 ms at 500/s."""
    out: dict[str, Any] = {}
    for config in dict.fromkeys(r["config"] for r in summary):
        mine = [r for r in summary if r["config"] == config]
        best = max((r["accepted_per_s"]["median"] or 0) for r in mine)
        at_500 = [r for r in mine if r["kind"] == "open" and r["level"] == GOAL_P99_AT_PER_S]
        p99 = at_500[0]["p99_ms"]["median"] if at_500 else None
        out[config] = {"max_accepted_per_s_median": best,
                       "max_goal_met": best >= GOAL_MAX_PER_S,
                       "p99_ms_at_500_median": p99,
                       "p99_goal_met": p99 is not None and p99 < GOAL_P99_MS_AT_500}
        if all("vs_baseline" in r for r in mine):
            base = max((r["vs_baseline"]["baseline_accepted_per_s"]["median"] or 0)
                       for r in mine)
            out[config] |= {"baseline_max_accepted_per_s_median": base,
                            "max_accepted_ratio": round(best / base, 3) if base else None}
    return out


def report_run(result: dict[str, Any]) -> None:
    """One line per phase as it is measured, and the profile's headline if one was taken."""
    for p in result["phases"]:
        level = p.get("offered_per_s", p.get("clients"))
        print(f"  {p['kind']:6} {level:>6}: {p['accepted_per_s']:>7}/s  "
              f"p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  "
              f"gen {p['generator_cpu_pct']}%  {p['statuses']}", flush=True)
        if "vs_baseline" in p:
            vs = p["vs_baseline"]
            print(f"  {'':6} {'':>6}  baseline {vs['baseline_accepted_per_s']:>7}/s  "
                  f"p99 {vs['baseline_p99_ms']} ms  ratio: accepted {vs['accepted_ratio']}, "
                  f"CPU/request {vs['cpu_per_request_ratio']}", flush=True)
        for name, spots in p.get("profile", {}).items():
            print_hot_spots(f"{name} ({p['kind']} {level})", spots)
    if result["open_rates_skipped_past_capacity"]:
        print(f"  skipped open-loop rates past {SKIP_PAST_CAPACITY:g}x capacity: "
              f"{result['open_rates_skipped_past_capacity']}", flush=True)


def _numbers(kind: type, text: str) -> list[Any]:
    return [kind(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="2xgevent,2x4",
                        help="gunicorn WORKERSxTHREADS or WORKERSxgevent[+shm] to compare; "
                             "the first is the reference for the goals; 2xgevent is "
                             "webhook_argv's (2xgevent,2x4)")
    parser.add_argument("--rates", default="100,500,1000,2000",
                        help="open-loop offered rates, callbacks/s (100,500,1000,2000)")
    parser.add_argument("--clients", default="16,64",
                        help="closed-loop concurrent clients, for the maximum (16,64)")
    parser.add_argument("--duration", type=float, default=8, help="seconds per phase (8)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every config (3)")
    parser.add_argument("--calls", type=int, default=2000,
                        help="distinct calls signed in advance, 4 callbacks each (2000)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy gunicorn's workers during the first run's most concurrent "
                             "closed loop (costs CPU: that phase's figures are not the reference)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="measure a trivial WSGI app in the same gunicorn shape beside "
                             "the webhook, for ratios that move less with the machine (on)")
    add_run_options(parser, RESULTS, max_load=True)
    args = parser.parse_args(argv)
    try:
        configs = [GunicornShape.parse(c) for c in args.configs.split(",")]
        args.rates = _numbers(float, args.rates)
        args.clients = _numbers(int, args.clients)
    except ValueError:
        parser.error("--configs is WxT[+shm],...; --rates and --clients are numbers, comma-"
                     "separated")
    if args.runs < 1 or args.duration <= 0:
        parser.error("--runs must be >= 1 and --duration > 0")
    exit_cleanly_on_sigterm()
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    runs: list[dict[str, Any]] = []
    quiet = wait_for_quiet(args.max_load, args.quiet_timeout)
    with servers() as started:
        assert started.redis.proc is not None
        try:
            for run in range(args.runs):
                # Rotate the order so drift on the shared machine hits every config alike.
                order = configs[run % len(configs):] + configs[:run % len(configs)]
                for config in order:
                    print(f"run {run + 1}/{args.runs}: gunicorn {config}", flush=True)
                    profile_to = (args.output.with_name(f"webhook_load-profile-{config}")
                                  if args.profile and run == 0 else None)
                    result = run_config(started.workdir, started.redis.url,
                                        started.redis.proc.pid, config, args, profile_to,
                                        baseline_first=run % 2 == 1)
                    runs.append({"run": run + 1, **result})
                    report_run(result)
        except KeyboardInterrupt:
            print("interrupted: writing what was measured", file=sys.stderr)
    summary = summarise(runs)
    goals = verdict(summary)
    table(summary)
    baseline_table(summary)
    for config, v in goals.items():
        beside = (f" beside the baseline's {v['baseline_max_accepted_per_s_median']}/s "
                  f"(ratio {v['max_accepted_ratio']})"
                  if "baseline_max_accepted_per_s_median" in v else "")
        print(f"{config}: max {v['max_accepted_per_s_median']}/s{beside} (goal >= "
              f"{GOAL_MAX_PER_S}: {'met' if v['max_goal_met'] else 'not met'}); p99 at 500/s "
              f"{v['p99_ms_at_500_median']} ms (goal < {GOAL_P99_MS_AT_500:g}: "
              f"{'met' if v['p99_goal_met'] else 'not met'})")
    reference = goals.get(str(configs[0]), {})
    write_results("webhook_load", {
        "machine": machine(), "settings": settings,
        "load_before": quiet, "reference_config": str(configs[0]),
        "goals_met": bool(reference.get("max_goal_met") and reference.get("p99_goal_met")),
        "goals": {"max_accepted_per_s": GOAL_MAX_PER_S,
                  "p99_ms_at_500_per_s": GOAL_P99_MS_AT_500},
        "verdict": goals, "summary": summary, "runs": runs}, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
