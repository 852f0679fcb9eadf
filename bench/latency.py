"""Latency on an idle system: how soon a call is dialed, and how late a retry fires.

    python -m bench.latency [--calls 40] [--spacing 1.1] [--retries 15] [--runs 3]

The whole dialer as real processes (webhook, beat, 2 Celery worker instances x
concurrency 2; private redis-server; SQLite by default or PostgreSQL), the simulator in
this process, production tick settings (dispatch every 1 s) and the default pace of
1 call/s. WARM_UP_CALLS calls first (two per worker process), not counted.

- dial latency: `enqueue_call` returns at t0 (time.time()); the simulator records the
  create's `arrived_at`. Figure: arrived_at - t0, for --calls calls, each sent --spacing
  seconds after the previous create arrived (more than the pace's interval, so no call
  waits for a slot: the system is idle).
- retry lateness: jobs whose first call is busy and whose second is answered, with
  retry_delays=[--retry-delay]. The status handler stores `next_attempt_at` (delay plus
  up to 10 % jitter); the dispatcher (beat, every 1 s) publishes the due job and the
  retry's create arrives at the simulator. Figure: arrived_at(second create) -
  next_attempt_at. One job at a time, so nothing else competes for the pace or the
  workers, each started a further 1/--retries of the dispatch tick later, so the due
  times sample every phase of the tick; the delay (1 s by default) does not change the
  figure, only the run's length.

A run takes about 100 s; 3 runs fit in 6 minutes on a 2-core machine. Results go to
bench/results/latency.json. Before the first run the benchmark waits (up to
--quiet-timeout) for load < 1.0, before the others for an idle CPU (bench.common.settle).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.common import (
    PRODUCTION_TICKS,
    VOICE_URL,
    WARM_UP_CALLS,
    Servers,
    add_run_options,
    describe_loads,
    dialer_stack,
    exit_cleanly_on_sigterm,
    fmt_spread,
    machine,
    ms,
    percentile,
    poll_until,
    print_table,
    servers,
    settle,
    spread,
    start_workers,
    write_results,
)
from simulator import Simulator
from worker.api import enqueue_call, get_job

TIME_SCALE = 0.02  # a busy call ends in tens of ms, a 10 s answered call in 0.2 s
GOAL_P50_MS = 50.0
GOAL_RETRY_LATE_S = 1.5


def arrival(sim: Simulator, to: str, nth: int, timeout: float) -> float | None:
    """The `nth` create (1-based) to `to`, as the simulator recorded its arrival."""
    def seen() -> list[float]:
        return sorted(c.arrived_at for c in sim.creates() if c.to == to)

    poll_until(lambda: len(seen()) >= nth, timeout, interval=0.002)
    arrived = seen()
    return arrived[nth - 1] if len(arrived) >= nth else None


def one_run(srv: Servers, run: int, args: argparse.Namespace) -> dict[str, Any]:
    load = settle(run == 0, args.quiet_timeout)
    print(f"  run {run + 1} (load {load['load_1m']:.2f}, CPU {load['cpu_busy']:.0%} busy)",
          flush=True)
    started = time.monotonic()
    rundir = srv.workdir / f"latency-{run}"
    rundir.mkdir()
    area = 301 + run
    dial_s: list[float] = []
    enqueue_s: list[float] = []
    late_s: list[float] = []
    lost = 0
    with dialer_stack(srv, rundir, args.database, cps=args.cps, time_scale=TIME_SCALE,
                      seed=run) as (stack, sim):
        sim.set_scenario({f"+1{area}666*": ["busy", "answered"]})
        start_workers(stack)
        for n in range(WARM_UP_CALLS):
            enqueue_call(f"+1{area}555{9000 + n}", url=VOICE_URL)
        poll_until(lambda: len(sim.creates()) >= WARM_UP_CALLS,
                   timeout=WARM_UP_CALLS / args.cps + 30)
        for n in range(args.calls):
            # Leave the previous create's slot behind, so no call waits for the pace.
            time.sleep(max(0.0, (sim.creates()[-1].arrived_at + args.spacing) - time.time()))
            to = f"+1{area}555{n:04d}"
            before = time.time()
            enqueue_call(to, url=VOICE_URL)
            t0 = time.time()
            enqueue_s.append(t0 - before)
            arrived = arrival(sim, to, 1, timeout=10)
            if arrived is None:
                lost += 1
            else:
                dial_s.append(arrived - t0)
        tick = float(PRODUCTION_TICKS["DIALER_DISPATCH_INTERVAL"])
        for n in range(args.retries):
            # One job at a time locks every due time to the same phase of the dispatcher's
            # tick (each first call takes the pace's slot after the previous retry, which
            # followed a tick): once that slot is free, start each job a further
            # 1/retries of a tick later, so the due times sample every phase.
            free = max(c.arrived_at for c in sim.creates()) + 1 / args.cps
            time.sleep(max(0.0, free + n / args.retries * tick - time.time()))
            to = f"+1{area}666{n:04d}"
            job_id = enqueue_call(to, url=VOICE_URL, max_attempts=2, retry_on=["busy"],
                                  retry_delays=[args.retry_delay])
            second = arrival(sim, to, 2, timeout=args.retry_delay * 1.1 + 30)
            job = get_job(job_id)
            if second is None or job is None or job.attempts < 2:
                lost += 1
                continue
            late_s.append(second - job.next_attempt_at.timestamp())
    took = time.monotonic() - started
    print(f"    dial p50 {ms(percentile(dial_s, 50))} ms, retry late p50 "
          f"{percentile(late_s, 50):.3f} s, lost {lost} ({took:.0f} s)", flush=True)
    return {
        "run": run + 1, "load": load, "lost": lost, "seconds": round(took, 1),
        "dial_ms": {"p50": ms(percentile(dial_s, 50)), "p90": ms(percentile(dial_s, 90)),
                    "p99": ms(percentile(dial_s, 99)), "max": ms(max(dial_s, default=0))},
        "enqueue_call_ms": {"p50": ms(percentile(enqueue_s, 50)),
                            "p99": ms(percentile(enqueue_s, 99))},
        "retry_late_s": {"p50": round(percentile(late_s, 50), 3),
                         "p90": round(percentile(late_s, 90), 3),
                         "max": round(max(late_s, default=0), 3),
                         "min": round(min(late_s, default=0), 3)},
        "dial_samples_ms": [ms(v) for v in dial_s],
        "retry_late_samples_s": [round(v, 3) for v in late_s],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls for dial latency (40)")
    parser.add_argument("--spacing", type=float, default=1.1,
                        help="seconds from one create to the next call; above 1/cps (1.1)")
    parser.add_argument("--retries", type=int, default=15,
                        help="busy-then-answered jobs for retry lateness (15)")
    parser.add_argument("--retry-delay", type=int, default=1,
                        help="retry delay, s; at least 1/cps (1)")
    parser.add_argument("--cps", type=float, default=1.0, help="the pace (1, the default)")
    parser.add_argument("--runs", type=int, default=3, help="runs (3)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    add_run_options(parser)
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    info = machine()
    with servers(postgres=args.database == "postgresql") as srv:
        info["versions"]["postgresql"] = srv.postgresql_version()
        runs = [one_run(srv, run, args) for run in range(args.runs)]
    summary = {
        "dial_p50_ms": spread([r["dial_ms"]["p50"] for r in runs]),
        "dial_p90_ms": spread([r["dial_ms"]["p90"] for r in runs]),
        "dial_p99_ms": spread([r["dial_ms"]["p99"] for r in runs]),
        "enqueue_call_p50_ms": spread([r["enqueue_call_ms"]["p50"] for r in runs]),
        "retry_late_p50_s": spread([r["retry_late_s"]["p50"] for r in runs]),
        "retry_late_p90_s": spread([r["retry_late_s"]["p90"] for r in runs]),
        "retry_late_max_s": spread([r["retry_late_s"]["max"] for r in runs]),
        "lost": spread([r["lost"] for r in runs]),
    }
    goals = {"dial_p50_ms": f"< {GOAL_P50_MS:g}", "retry_late_max_s": f"< {GOAL_RETRY_LATE_S}",
             "retry_late_p90_s": f"< {GOAL_RETRY_LATE_S}",
             "retry_late_p50_s": f"< {GOAL_RETRY_LATE_S}", "lost": "0"}
    names = {"dial_p50_ms": "enqueue_call -> create arrives, p50 (ms)",
             "dial_p90_ms": "  p90 (ms)", "dial_p99_ms": "  p99 (ms)",
             "enqueue_call_p50_ms": "enqueue_call itself, p50 (ms)",
             "retry_late_p50_s": "retry create after next_attempt_at, p50 (s)",
             "retry_late_p90_s": "  p90 (s)", "retry_late_max_s": "  max (s)",
             "lost": "calls or retries never seen"}
    rows = [[name, goals.get(key, ""), fmt_spread(summary[key], 0 if key == "lost" else
                                                  (1 if key.endswith("ms") else 3))]
            for key, name in names.items()]
    printed = print_table(
        f"Latency, idle system ({args.calls} calls, {args.retries} retries per run, "
        f"{args.database}): median (min-max) over {args.runs} run(s)",
        ["figure", "goal", "measured"], rows)
    loads = [r["load"]["load_1m"] for r in runs]
    print("\n" + describe_loads([r["load"] for r in runs]))
    write_results("latency", {
        "machine": info, "runs": args.runs, "settings": vars(args) | {"output": None},
        "layout": "webhook (gunicorn 2x4), beat, 2 worker instances x 2; simulator "
                  f"in-process at time scale {TIME_SCALE}; dispatch interval 1 s",
        "load_1m_per_run": {"min": min(loads), "max": max(loads)},
        "summary": summary,
        "goals_met": (summary["dial_p50_ms"]["max"] or 1e9) < GOAL_P50_MS
        and (summary["retry_late_max_s"]["max"] or 1e9) < GOAL_RETRY_LATE_S
        and summary["lost"]["max"] == 0,
        "table": printed, "per_run": runs,
    }, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
