"""Every fault at once, for many minutes: `python -m bench.chaos [--jobs N] [--minutes M]`.

Runs the whole dialer as real processes (redis-server, two Celery workers, beat, the webhook
under gunicorn, SQLite or a throwaway PostgreSQL) against the simulator, enqueues hundreds
of jobs with mixed outcomes, and while they run injects, in turn: a worker SIGKILLed (and a
new one started), redis-server restarted empty, the webhook down, the database down; all
along, 10% of creates answered 500/503/429 (or 500/502/504 after the call was placed) and
callbacks dropped (10%), duplicated (30%) and reordered (30%). Then the faults stop and the
run drains. Printed and written to bench/results/chaos-DATABASE.json: jobs, faults
injected, jobs lost, calls beyond one per attempt, and the time to drain.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import point_producer_at
from harness.faults import (
    FAULT_SETTINGS,
    FINAL,
    breaches,
    database_down,
    jobs_of,
    kill,
    snapshot,
    supervise,
    worker_logs,
)
from harness.servers import PostgresServer, RedisServer
from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, VOICE_URL, Stack
from harness.waiting import wait_for
from simulator import Simulator
from worker.api import enqueue_call
from worker.store.database import upgrade

# scenario, share of jobs, enqueue options
MIX: list[tuple[list[str], int, dict[str, Any]]] = [
    (["answered"], 45, {}),
    (["machine"], 5, {}),
    (["busy", "answered"], 15, {}),
    (["no-answer", "answered"], 10, {"call_options": {"timeout": 5}}),
    (["failed", "answered"], 10, {}),
    (["busy"], 10, {}),
    (["error:21217"], 5, {}),
]
BEFORE_CREATE = {"api_error_rate": 0.1, "api_error_statuses": (500, 503, 429)}
AFTER_CREATE = {"api_error_rate": 0.1, "api_error_statuses": (500, 502, 504),
                "ambiguous_after_create": True}
CALLBACK_FAULTS = {"callback_drop_rate": 0.1, "callback_duplicate_rate": 0.3,
                   "callback_reorder_rate": 0.3}
RECONCILE_RAN = re.compile(r"Task dialer\.reconcile\[[^\]]+\] succeeded")


class Chaos:
    def __init__(self, stack: Stack, redis_server: RedisServer,
                 postgres: PostgresServer | None, rng: random.Random) -> None:
        self.stack, self.redis, self.postgres, self.rng = stack, redis_server, postgres, rng
        self.injected: Counter[str] = Counter()
        self.spawned = itertools.count(3)

    def live_workers(self) -> list[Any]:
        return [p for p in self.stack.processes
                if p.name.startswith("w") and p.name != "webhook" and p.proc.poll() is None]

    def kill_a_worker(self) -> None:
        kill(self.rng.choice(self.live_workers()))
        self.stack.start_worker(f"w{next(self.spawned)}")
        self.injected["worker SIGKILLed"] += 1

    def restart_redis(self) -> None:
        workers = self.live_workers()
        self.redis.stop()
        for process in workers:
            wait_for(lambda p=process: "Connection to broker lost" in p.log(), timeout=30,
                     interval=0.1, what=f"{process.name} to notice Redis is gone")
        self.redis.start()
        for process in workers:
            supervise(self.stack, process)
        self.injected["redis-server restarted empty"] += 1

    def webhook_down(self, seconds: float) -> None:
        webhook = next(p for p in self.stack.processes
                       if p.name == "webhook" and p.proc.poll() is None)
        webhook.stop()
        time.sleep(seconds)  # the outage itself: nothing to wait for
        self.stack.processes.remove(webhook)
        self.stack.start_webhook()
        self.injected[f"webhook down {seconds:.0f} s"] += 1

    def database_down(self, seconds: float) -> None:
        with database_down(self.stack.env["DIALER_DATABASE_URL"], self.postgres):
            time.sleep(seconds)  # the outage itself
        self.injected[f"database down {seconds:.0f} s"] += 1

    def api_errors(self, after_create: bool) -> None:
        self.stack.sim.set_faults(**(AFTER_CREATE if after_create else BEFORE_CREATE),
                                  **CALLBACK_FAULTS)


def enqueue(stack: Stack, jobs: int, rng: random.Random) -> dict[str, str]:
    numbers = [f"+1415555{3000 + n:04d}" for n in range(jobs)]
    kinds = [kind for kind, share, _ in MIX for _ in range(share)]
    options = {tuple(kind): extra for kind, _, extra in MIX}
    scenario = {number: rng.choice(kinds) for number in numbers}
    stack.sim.set_scenario(scenario)
    return {number: enqueue_call(number, url=VOICE_URL, retry_delays=[1], max_attempts=3,
                                 **options[tuple(scenario[number])])
            for number in numbers}


def callback_figures(sim: Simulator) -> dict[str, int]:
    callbacks = sim.callbacks()
    sent = Counter(c.idempotency_token for c in callbacks if not c.dropped)
    order: dict[str, list[int]] = {}
    for c in callbacks:
        order.setdefault(c.call_sid, []).append(c.sequence_number)
    return {"callbacks sent": len(callbacks),
            "callbacks dropped": sum(c.dropped for c in callbacks),
            "callbacks refused (webhook down)": sum(
                not c.dropped and c.response_status is None for c in callbacks),
            "callbacks duplicated": sum(n - 1 for n in sent.values()),
            "calls with callbacks reordered": sum(s != sorted(s) for s in order.values()),
            "creates answered with an error": sum(c.status >= 400 for c in sim.creates()),
            "calls placed": sum(c.sid is not None for c in sim.creates())}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    (workdir / "redis").mkdir()
    redis_server = RedisServer(workdir / "redis").start()
    postgres = PostgresServer(workdir / "pg").start() if args.database == "postgresql" else None
    database_url = (postgres.create_database("chaos") if postgres
                    else f"sqlite:///{workdir / 'chaos.db'}")
    sim = Simulator(account_sid=SIM_ACCOUNT_SID, auth_token=SIM_AUTH_TOKEN, cps=1000,
                    time_scale=0.02, seed=args.seed).start()
    stack = Stack(workdir, redis_server.url, database_url, sim,
                  **{**FAULT_SETTINGS, "DIALER_CALLS_PER_SECOND": str(args.cps)})
    ctx = point_producer_at(stack.env)
    try:
        upgrade(ctx.database.engine)
        stack.start_all(workers=2, concurrency=2)
        chaos = Chaos(stack, redis_server, postgres, rng)
        chaos.api_errors(after_create=False)
        ids = enqueue(stack, args.jobs, rng)
        started = time.monotonic()
        faults: list[Callable[[], None]] = [
            chaos.kill_a_worker,
            lambda: chaos.api_errors(after_create=True),
            chaos.restart_redis,
            lambda: chaos.webhook_down(20),
            lambda: chaos.api_errors(after_create=False),
            chaos.kill_a_worker,
            lambda: chaos.database_down(35 if postgres is None else 10),
        ]
        for fault in itertools.cycle(faults):
            if time.monotonic() - started > args.minutes * 60:
                break
            fault()
            time.sleep(args.every)  # the pace of the chaos, not a wait for a result
        sim.set_faults()
        faults_over = time.monotonic()

        def all_final() -> bool:
            return all(job.status in FINAL for job in jobs_of(ids).values())

        with contextlib.suppress(AssertionError):  # reported below as jobs not final
            wait_for(all_final, timeout=args.drain_timeout, interval=1, what="every job final")
        drained = time.monotonic()
        before = snapshot(ids)
        runs = len(RECONCILE_RAN.findall(worker_logs(stack)))
        wait_for(lambda: len(RECONCILE_RAN.findall(worker_logs(stack))) >= runs + 2,
                 timeout=60, interval=0.5, what="two more reconciler runs")
        changed = sum(before[n] != after for n, after in snapshot(ids).items()
                      if before[n][0] in FINAL)
        outcomes = Counter(job.status for job in jobs_of(ids).values())
        return {
            "database": args.database, "jobs": args.jobs, "calls per second": args.cps,
            "fault phase s": round(faults_over - started),
            "time to drain s": round(drained - faults_over),
            "faults injected": dict(chaos.injected),
            **callback_figures(sim),
            **breaches(stack, ids),
            "final states changed later": changed,
            "jobs completed": outcomes["completed"], "jobs failed": outcomes["failed"],
        }
    finally:
        stack.stop()
        sim.stop()
        redis_server.stop()
        if postgres is not None:
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=5, help="length of the fault phase")
    parser.add_argument("--every", type=float, default=15, help="seconds between faults")
    parser.add_argument("--cps", type=float, default=2)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    os.chmod(workdir, 0o755)  # under root, PostgreSQL runs as `postgres` and must get in
    figures = run(args, workdir)
    for key, value in figures.items():
        print(f"{key:34} {value}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"chaos-{args.database}.json").write_text(json.dumps(figures, indent=2))
    print(f"every process's log is kept in {workdir}")


if __name__ == "__main__":
    main()
