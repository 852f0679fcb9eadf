"""Pacing accuracy: does the dialer dial exactly at the configured rate, across machines?

    python -m bench.pacing [--cps 1 10] [--calls 60 600] [--runs 1] [--database postgresql]

For each rate, three ways of dialing, each on the same layout: the webhook, beat and 2
separate Celery worker instances of concurrency 2 (4 worker processes, as two machines
would run them), a private redis-server, PostgreSQL (as two machines need), the
simulator in this process at the account's rate (its create records carry `arrived_at`,
the time each create reached "Twilio"). The same tasks run in every mode; only the
limiter differs (bench/naive_dialer.py):

- `dialer`: this project, the global pace in Redis at DIALER_CALLS_PER_SECOND = rate.
- `celery rate_limit`: the pace replaced by Celery's `rate_limit="<rate>/s"` on
  place_call, which Celery holds per worker instance: 2 instances may dial at 2x.
- `no limiter`: the pace replaced by nothing.

Once the workers are up and have dialed WARM_UP_CALLS calls (not counted), they are paused
(Celery's cancel_consumer on the dial queue), every measured job is enqueued
(`enqueue_call`), and they resume together (add_consumer): work is pending over the whole
span from the first create to the last, and each worker process has dialed before.
Figures, from the sorted arrival times t_1..t_n of the measured creates (I = 1/rate):
- achieved / configured: ((n - 1) / (t_n - t_1)) / rate.
- max in 1 s: the most creates in any half-open window [t_i, t_i + 1 s).
- min gap, p1 gap: the smallest and the 1st-percentile of t_(i+1) - t_i.
- idle seconds: sum over the gaps of max(0, gap - I): allowance that went unused while
  work was pending; a perfect pacer scores 0.
- Twilio would queue: creates that arrive more than 10 ms (the simulator's strict-mode
  grace) before the account's next free slot, replaying arrivals through Twilio's
  queue at the rate: each of them is queued by Twilio (or refused with 429 in strict mode).
- cold start: max in 1 s, min gap and Twilio would queue over the WARM_UP_CALLS creates,
  each worker process's first ones after it starts (first connections, first queries).

One run by default: one run of the three modes at both rates takes about 5 minutes on
a 2-core machine, as 60 calls at 1/s and 600 at 10/s take a minute each by design;
`--runs 3` gives the spread in about 15. Results go to bench/results/pacing.json. The
machine is shared: before the first measurement the benchmark waits (up to
--quiet-timeout) for the 1-minute load average to drop below 1.0, before the others for
an idle CPU (bench.common.settle), and records both.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    VOICE_URL,
    WARM_UP_CALLS,
    Servers,
    add_run_options,
    describe_loads,
    dialer_stack,
    exit_cleanly_on_sigterm,
    fmt_spread,
    machine,
    percentile,
    poll_until,
    print_table,
    servers,
    settle,
    spread,
    start_workers,
    write_results,
)
from simulator.engine import STRICT_GRACE_S
from worker.adapters.broker import create_celery
from worker.api import enqueue_call
from worker.domain.names import DIAL_QUEUE
from worker.wiring import default_context

MODES = ("dialer", "celery rate_limit", "no limiter")
APPS = {"dialer": "worker", "celery rate_limit": "bench.naive_dialer",
        "no limiter": "bench.naive_dialer"}
TIME_SCALE = 0.05  # a 10 s call lives 0.5 s: callbacks flow at 4 per call, as in production
INSTANCES = ("a", "b")


def numbers(count: int, run: int, first: int = 0) -> list[str]:
    """Distinct valid US numbers (the 555 exchange), different in every run."""
    return [f"+1{201 + run % 700}555{n:04d}" for n in range(first, first + count)]


def figures(arrivals: list[float], cps: float) -> dict[str, Any]:
    """The pacing figures of one run (see the module docstring for the definitions)."""
    times = sorted(arrivals)
    interval = 1 / cps
    gaps = [b - a for a, b in itertools.pairwise(times)]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    queued, worst_queue, next_free = 0, 0.0, 0.0
    for t in times:
        slot = max(t, next_free)
        if slot > t + STRICT_GRACE_S:
            queued += 1
            worst_queue = max(worst_queue, slot - t)
        next_free = slot + interval
    return {
        "creates": len(times),
        "span_s": round(span, 3),
        "achieved_per_s": round((len(times) - 1) / span, 3) if span else None,
        "achieved_ratio": round((len(times) - 1) / span / cps, 3) if span else None,
        "max_in_1s": most,
        "min_gap_ms": round(min(gaps) * 1000, 1) if gaps else None,
        "p1_gap_ms": round(percentile(gaps, 1) * 1000, 1) if gaps else None,
        "median_gap_ms": round(percentile(gaps, 50) * 1000, 1) if gaps else None,
        "max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "idle_s": round(sum(max(0.0, g - interval) for g in gaps), 3),
        "twilio_would_queue": queued,
        "twilio_worst_queue_ms": round(worst_queue * 1000, 1),
        "arrivals_s": [round(t - times[0], 4) for t in times],
    }


@contextlib.contextmanager
def dial_queue_paused(instances: int) -> Iterator[None]:
    """The workers stop taking dial messages meanwhile (Celery's remote control), then all
    resume at once: a backlog waits for warm workers, and the producer's burst does not
    share the CPU (nor this process's GIL with the simulator) with the measured creates."""
    with create_celery(default_context().settings, set_as_current=False) as app:
        replies = app.control.cancel_consumer(DIAL_QUEUE, reply=True, timeout=10,
                                              limit=instances)
        if len(replies) != instances:
            raise RuntimeError(f"{len(replies)} of {instances} worker instances paused: "
                               f"{replies}")
        try:
            yield
        finally:
            app.control.add_consumer(DIAL_QUEUE, reply=True, timeout=10, limit=instances)


def run_once(srv: Servers, rundir: Path, mode: str, cps: float, calls: int, run: int,
             database: str) -> dict[str, Any]:
    """Warm the workers up, queue every measured job while they are paused, let them go;
    only the measured creates count."""
    env = {"NAIVE_LIMITER": "none" if mode == "no limiter" else "rate_limit",
           "NAIVE_RATE_LIMIT": f"{cps:g}/s"}
    with dialer_stack(srv, rundir, database, cps=cps, time_scale=TIME_SCALE, seed=run,
                      **env) as (stack, sim):
        start_workers(stack, app=APPS[mode], instances=INSTANCES)
        for to in numbers(WARM_UP_CALLS, run, first=9000):
            enqueue_call(to, url=VOICE_URL)
        poll_until(lambda: len(sim.creates()) >= WARM_UP_CALLS,
                   timeout=WARM_UP_CALLS / cps * 1.5 + 30)
        cold = sim.creates()
        wanted = set(numbers(calls, run))

        def measured() -> list[Any]:
            return [c for c in sim.creates() if c.to in wanted]

        with dial_queue_paused(len(INSTANCES)):
            started = time.time()
            for to in numbers(calls, run):
                enqueue_call(to, url=VOICE_URL)
            enqueued = time.time()
            # The pace's last reserved slot passes: the measured calls start from an idle pace.
            time.sleep(max(0.0, max(c.arrived_at for c in sim.creates()) + 1 / cps
                           - time.time()))
        poll_until(lambda: len(measured()) >= calls, timeout=calls / cps * 1.5 + 30)
        creates = measured()
    return {"enqueue_s": round(enqueued - started, 3), "created": creates, "cold": cold}


def measure(srv: Servers, mode: str, cps: float, calls: int, run: int, database: str,
            quiet_timeout: float, first: bool) -> dict[str, Any]:
    load = settle(first, quiet_timeout)
    rundir = srv.workdir / f"{mode.replace(' ', '_')}-{cps:g}-{run}"
    rundir.mkdir()
    print(f"  run {run + 1}: {mode} at {cps:g}/s, {calls} calls "
          f"(load {load['load_1m']:.2f}, CPU {load['cpu_busy']:.0%} busy)", flush=True)
    outcome = run_once(srv, rundir, mode, cps, calls, run, database)
    creates = outcome["created"]
    arrivals = [c.arrived_at for c in creates if c.status == 201]
    result = figures(arrivals, cps) if len(arrivals) > 1 else {"creates": len(arrivals)}
    cold = [c.arrived_at for c in outcome["cold"] if c.status == 201]
    if len(cold) > 1:
        cold_figures = figures(cold, cps)
        result["cold_start"] = {key: cold_figures[key] for key in (
            "creates", "max_in_1s", "min_gap_ms", "twilio_would_queue", "arrivals_s")}
    result.update(
        mode=mode, cps=cps, calls=calls, run=run + 1, load=load,
        enqueue_s=outcome["enqueue_s"],
        missing=calls - len(arrivals),
        refused=sum(1 for c in creates if c.status != 201),
        duplicate_creates=len(arrivals) - len({c.to for c in creates if c.status == 201}),
    )
    print(f"    achieved {result.get('achieved_ratio')}x, max in 1 s "
          f"{result.get('max_in_1s')}, min gap {result.get('min_gap_ms')} ms, "
          f"idle {result.get('idle_s')} s, missing {result['missing']}, "
          f"> 10 ms early {result.get('twilio_would_queue')}", flush=True)
    if "cold_start" in result:
        cold_start = result["cold_start"]
        print(f"    cold start ({cold_start['creates']} warm-up creates): max in 1 s "
              f"{cold_start['max_in_1s']}, min gap {cold_start['min_gap_ms']} ms, "
              f"> 10 ms early {cold_start['twilio_would_queue']}", flush=True)
    return result


def summarize(runs: list[dict[str, Any]], rates: list[tuple[float, int]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for cps, _ in rates:
        for mode in MODES:
            mine = [r for r in runs if r["cps"] == cps and r["mode"] == mode]
            if not mine:
                continue
            summary[f"{mode} @ {cps:g}/s"] = {
                key: spread([r.get(key) for r in mine])
                for key in ("achieved_ratio", "max_in_1s", "min_gap_ms", "p1_gap_ms",
                            "idle_s", "twilio_would_queue", "twilio_worst_queue_ms", "missing",
                            "duplicate_creates")}
    return summary


def tables(summary: dict[str, Any], rates: list[tuple[float, int]], runs: int) -> list[str]:
    printed = []
    for cps, calls in rates:
        interval_ms = 1000 / cps
        goals = {"achieved_ratio": "1.00", "max_in_1s": f"<= {cps:g}",
                 "min_gap_ms": f"~{interval_ms:g}", "p1_gap_ms": f"~{interval_ms:g}",
                 "idle_s": "0", "twilio_would_queue": "0", "twilio_worst_queue_ms": "~0",
                 "missing": "0", "duplicate_creates": "0"}
        names = {"achieved_ratio": "achieved / configured rate",
                 "max_in_1s": "max creates in any 1 s window",
                 "min_gap_ms": "smallest gap (ms)", "p1_gap_ms": "1st-percentile gap (ms)",
                 "idle_s": "idle seconds (unused allowance)",
                 "twilio_would_queue": "creates Twilio would queue > 10 ms / 429",
                 "twilio_worst_queue_ms": "longest Twilio queueing (ms)",
                 "missing": "creates missing at the end",
                 "duplicate_creates": "creates to a number already dialed"}
        modes = [m for m in MODES if f"{m} @ {cps:g}/s" in summary]
        rows = []
        for key, name in names.items():
            digits = 3 if key in ("achieved_ratio", "idle_s") else 1
            if key in ("max_in_1s", "twilio_would_queue", "missing", "duplicate_creates"):
                digits = 0
            rows.append([name, goals[key], *(fmt_spread(summary[f"{m} @ {cps:g}/s"][key],
                                                        digits) for m in modes)])
        printed.append(print_table(
            f"Pacing at {cps:g} call/s, {calls} calls: median (min-max) over {runs} run(s)",
            ["figure", "goal", *modes], rows))
    return printed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cps", type=float, nargs="+", default=[1, 10],
                        help="configured rates (1 10)")
    parser.add_argument("--calls", type=int, nargs="+", default=[60, 600],
                        help="calls per rate, one per --cps value (60 600)")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs of each measurement (1: 3 take about 15 minutes)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql",
                        help="the dialer's database: PostgreSQL, as two machines need (default)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if len(args.calls) != len(args.cps):
        parser.error("give one --calls value per --cps value")
    exit_cleanly_on_sigterm()
    rates = list(zip(args.cps, args.calls, strict=True))
    info = machine()
    runs: list[dict[str, Any]] = []
    with servers(postgres=args.database == "postgresql") as srv:
        info["versions"]["postgresql"] = srv.postgresql_version()
        for run in range(args.runs):
            for cps, calls in rates:
                for mode in args.modes:
                    runs.append(measure(srv, mode, cps, calls, run, args.database,
                                        args.quiet_timeout, first=not runs))
    summary = summarize(runs, rates)
    printed = tables(summary, rates, args.runs)
    loads = [r["load"]["load_1m"] for r in runs]
    print("\n" + describe_loads([r["load"] for r in runs]))
    dialer = {cps: summary[f"dialer @ {cps:g}/s"] for cps, _ in rates
              if f"dialer @ {cps:g}/s" in summary}
    write_results("pacing", {
        "machine": info,
        "layout": "webhook, beat, 2 Celery worker instances x concurrency 2 (4 processes); "
                  f"simulator in-process at time scale {TIME_SCALE}; database "
                  f"{args.database}; only the limiter differs between modes",
        "runs": args.runs,
        "load_1m_per_measurement": {"min": min(loads), "max": max(loads)},
        "summary": summary,
        "goals_met": bool(dialer) and all(
            s["missing"]["max"] == 0 and s["duplicate_creates"]["max"] == 0
            and s["twilio_would_queue"]["max"] == 0 and s["max_in_1s"]["max"] <= cps
            for cps, s in dialer.items()),
        "tables": printed,
        "measurements": runs,
    }, args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
