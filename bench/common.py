"""What every benchmark shares: a quiet machine, the facts about it, real servers, the
stack, statistics and the printed table with the goal beside each figure.

Process management is not written again here: Redis and PostgreSQL come from
harness/servers.py, the dialer's processes from harness/stack.py (worker/demo/processes.py
underneath), so a benchmark starts exactly what the tests start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine

from harness.servers import PostgresServer, RedisServer
from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, Stack
from simulator import Simulator
from worker.demo.processes import Process, beat_argv, worker_argv
from worker.engine.context import Context
from worker.store.database import upgrade
from worker.wiring import default_context, reset_default_context

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
QUIET_LOAD = 1.0
QUIET_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 30.0
VOICE_URL = "https://example.com/voice.xml"
# Calls dialed before the measured ones, two per worker process of start_workers' layout:
# a process's first create pays for its connections and first queries, which production
# workers, running for days, have long paid.
WARM_UP_CALLS = 8
# Production defaults, not the tests' fast ticks (harness/stack.py FAST_SETTINGS):
# dispatch every 1 s decides how late a retry fires.
PRODUCTION_TICKS = {"DIALER_DISPATCH_INTERVAL": "1", "DIALER_QUEUED_STALE_SECONDS": "120",
                    "DIALER_TWILIO_TIMEOUT": "15"}


def add_run_options(parser: argparse.ArgumentParser, output: Path | None = None,
                    max_load: bool = False) -> None:
    """The options every measuring benchmark takes alike: the quiet wait and the JSON's path."""
    if max_load:
        parser.add_argument("--max-load", type=float, default=QUIET_LOAD,
                            help=f"wait for the 1-min load average below this ({QUIET_LOAD})")
    parser.add_argument("--quiet-timeout", type=float, default=QUIET_TIMEOUT_S,
                        help="longest wait for a quiet machine before measuring, s; the load "
                             f"is recorded either way ({QUIET_TIMEOUT_S:.0f})")
    parser.add_argument("--output", type=Path, default=output, help="where the JSON goes")


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM becomes SystemExit, so the `finally` blocks stop every process we started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def wait_for_quiet(threshold: float = QUIET_LOAD, timeout: float = QUIET_TIMEOUT_S,
                   say: Callable[[str], None] = print) -> dict[str, float]:
    """Wait (up to `timeout`) for the 1-minute load average to drop below `threshold`.

    The machine is shared: a figure taken while someone else's tests run says little,
    so each run records the load it started at, whether or not the wait succeeded.
    """
    started = time.monotonic()
    first = os.getloadavg()[0]
    load = first
    announced = False
    while load >= threshold and time.monotonic() - started < timeout:
        if not announced:
            say(f"  waiting for load < {threshold} (now {load:.2f}, up to {timeout:.0f} s)")
            announced = True
        time.sleep(5)
        load = os.getloadavg()[0]
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2),
            "load_before_wait": round(first, 2),
            "waited_s": round(time.monotonic() - started, 1), "quiet": one < threshold}


def cpu_busy(sample_s: float = 1.0) -> float:
    """The fraction of all cores busy over the next `sample_s` seconds (from /proc/stat).

    Unlike the load average, it does not remember processes stopped a minute ago.
    """
    def read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            ticks = [int(field) for field in stat.readline().split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]

    total, idle = read()
    time.sleep(sample_s)
    total_after, idle_after = read()
    return round(1 - (idle_after - idle) / max(1, total_after - total), 2)


def settle(first: bool, timeout: float = QUIET_TIMEOUT_S, busy_below: float = 0.25,
           say: Callable[[str], None] = print) -> dict[str, Any]:
    """Before a benchmark's first measurement, wait for a quiet machine (wait_for_quiet).

    Before each later one, wait (up to SETTLE_TIMEOUT_S) for the CPU to be idle now
    instead: the 1-minute load average still counts the previous measurement's own
    processes for a minute or two, and waiting for it would double a benchmark's length.
    Both the load and the CPU busy fraction at the start are recorded.
    """
    if first:
        return {**wait_for_quiet(timeout=timeout, say=say), "cpu_busy": cpu_busy()}
    started = time.monotonic()
    busy = cpu_busy()
    announced = False
    while busy >= busy_below and time.monotonic() - started < min(timeout, SETTLE_TIMEOUT_S):
        if not announced:
            say(f"  waiting for the CPU to be < {busy_below:.0%} busy (now {busy:.0%})")
            announced = True
        busy = cpu_busy()
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2),
            "waited_s": round(time.monotonic() - started, 1), "cpu_busy": busy,
            "quiet": busy < busy_below}


def describe_loads(loads: Sequence[dict[str, Any]]) -> str:
    """One line for the printed report: how busy the machine was as each run started."""
    one = [load["load_1m"] for load in loads]
    busy = [load["cpu_busy"] for load in loads]
    return (f"load average (1 min) at the start of each run: {min(one):.2f}-{max(one):.2f}; "
            f"CPU busy just before: {min(busy):.0%}-{max(busy):.0%}")


def _redis_server_version() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return next((part[2:] for part in out.split() if part.startswith("v=")), out.strip())


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The machine and the versions that decide the figures."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb: float | None = round(pages / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    one, five, fifteen = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "load_at_start": {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)},
        "versions": {
            "python": platform.python_version(),
            "celery": _package("celery"),
            "kombu": _package("kombu"),
            "redis-server": _redis_server_version(),
            "redis-py": _package("redis"),
            "sqlalchemy": _package("sqlalchemy"),
            "twilio": _package("twilio"),
            "psycopg": _package("psycopg"),
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- statistics -------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """min / median / max over runs: the figure and how much it moved between runs."""
    real = [v for v in values if v is not None and not math.isnan(v)]
    if not real:
        return {"runs": len(values), "min": None, "median": None, "max": None}
    return {"runs": len(values), "min": min(real), "median": statistics.median(real),
            "max": max(real)}


def ratio(measured: float | None, baseline: float | None, digits: int = 3) -> float | None:
    """measured / baseline, rounded; None when either is missing or the baseline is zero (a
    phase that finished nothing has no ratio, rather than a misleading 0 or infinity)."""
    if measured is None or not baseline or math.isnan(measured) or math.isnan(baseline):
        return None
    return round(measured / baseline, digits)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_spread(s: dict[str, Any], digits: int = 2) -> str:
    """`median (min-max)` as printed in every table."""
    if s["median"] is None:
        return "-"
    if s["runs"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"], digits)
    return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}-{fmt(s['max'], digits)})"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table (also valid Markdown, so the report can paste it)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    text = "\n".join([f"\n{title}", line(header),
                      "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in rows)])
    print(text, flush=True)
    return text


def write_results(name: str, data: dict[str, Any], output: Path | None = None,
                  argv: Sequence[str] | None = None) -> Path:
    """bench/results/NAME.json, headed by the benchmark's name and the command that ran it."""
    path = output or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join([f"python -m bench.{name}", *(argv if argv is not None else sys.argv[1:])])
    data = {"benchmark": name, "command": command, **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


# --- servers ----------------------------------------------------------------------------

@dataclass
class Servers:
    """A private redis-server and, when asked, a throwaway PostgreSQL cluster."""

    workdir: Path
    redis: RedisServer
    postgres: PostgresServer | None = None
    _databases: int = 0

    def database_url(self, backend: str) -> str:
        """A fresh, migrated database on `backend` ("sqlite" or "postgresql")."""
        self._databases += 1
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / f'bench-{self._databases}.db'}"
        if self.postgres is None:
            raise RuntimeError("PostgreSQL was not started for this benchmark")
        url = self.postgres.create_database(f"bench{os.getpid()}_{self._databases}")
        engine = create_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return url

    def postgresql_version(self) -> str | None:
        if self.postgres is None:
            return None
        out = subprocess.run([os.path.join(self.postgres.bindir, "postgres"), "--version"],
                             capture_output=True, text=True).stdout
        # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the first version number
        found = re.search(r"\d+(\.\d+)+", out)
        return found.group() if found else None


@contextlib.contextmanager
def servers(postgres: bool = False) -> Iterator[Servers]:
    """Start Redis (and PostgreSQL); stop them whatever happens, Ctrl-C included."""
    workdir = Path(tempfile.mkdtemp(prefix="dialer-bench-"))
    # Under root the cluster runs as `postgres`, which must reach its data directory.
    os.chmod(workdir, 0o755)
    redis_server = RedisServer(workdir).start()
    started = Servers(workdir, redis_server)
    try:
        if postgres:
            started.postgres = PostgresServer(workdir).start()
        yield started
    finally:
        if started.postgres is not None:
            with contextlib.suppress(Exception):
                started.postgres.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def point_producer_at(env: dict[str, str]) -> Context:
    """Make this process a producer of the stack described by `env`: its DIALER_ and
    TWILIO_ settings replace this process's, and the default context (settings, database,
    broker), which worker.api uses, is built again from them. Returns that context.
    """
    for key in [k for k in os.environ if k.startswith(("DIALER_", "TWILIO_"))]:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DIALER_", "TWILIO_"))})
    reset_default_context()
    return default_context()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes; unlike tests' wait_for, a
    benchmark records a shortfall (calls missing) instead of failing."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# --- the dialer's processes -------------------------------------------------------------

@contextlib.contextmanager
def dialer_stack(srv: Servers, rundir: Path, database: str, *, cps: float, time_scale: float,
                 seed: int, **settings: str) -> Iterator[tuple[Stack, Simulator]]:
    """A fresh database, the simulator in this process and the webhook, with this process
    as the producer; workers and beat come from `start_workers`, so a benchmark may
    enqueue before anything consumes. Everything stops whatever happens."""
    redis.Redis.from_url(srv.redis.url).flushall()  # no pace, queue or message left over
    sim = Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=cps, time_scale=time_scale,
                    seed=seed).start()
    try:
        stack = Stack(rundir, srv.redis.url, srv.database_url(database), sim,
                      DIALER_CALLS_PER_SECOND=f"{cps:g}", **{**PRODUCTION_TICKS, **settings})
        try:
            stack.start_webhook()
            point_producer_at(stack.env)
            yield stack, sim
        finally:
            stack.stop()
    finally:
        sim.stop()


def start_workers(stack: Stack, app: str = "worker", instances: Sequence[str] = ("a", "b"),
                  concurrency: int = 2) -> None:
    """The benchmark layout: 2 Celery worker instances x concurrency 2 (4 processes, as two
    machines would run them) and beat, started together and waited for together.

    `app` is the Celery app module (`-A`): bench.naive_dialer swaps the limiter.
    """
    # The processes run in the run's directory: `bench` is importable from the checkout only.
    env = {**stack.env, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), stack.env.get("PYTHONPATH")) if p)}
    waits: list[tuple[Process, str]] = []
    for name in instances:
        argv = worker_argv(name, concurrency)
        argv[argv.index("-A") + 1] = app
        waits.append((Process(name, argv, env, stack.workdir), " ready."))
    waits.append((Process("beat", beat_argv(stack.workdir / "beat-schedule"), stack.env,
                          stack.workdir), "beat: Starting"))
    stack.processes.extend(process for process, _ in waits)
    for process, text in waits:
        process.wait_for_log(text, timeout=60)


@dataclass(frozen=True)
class GunicornShape:
    """gunicorn's shape: WORKERSxTHREADS (gthread) or WORKERSxgevent (gevent worker, one
    greenlet per connection), `+shm` for its heartbeat file on /dev/shm."""

    workers: int
    threads: int
    shm: bool = False
    worker_class: str = "gthread"

    @classmethod
    def parse(cls, text: str) -> GunicornShape:
        shape, _, flag = text.strip().partition("+")
        workers_text, _, threads_text = shape.partition("x")
        workers = int(workers_text)
        gevent = threads_text == "gevent"
        threads = 1 if gevent else int(threads_text)
        if workers < 1 or threads < 1 or flag not in ("", "shm"):
            raise ValueError(text)
        return cls(workers, threads, flag == "shm", "gevent" if gevent else "gthread")

    def __str__(self) -> str:
        threads = "gevent" if self.worker_class == "gevent" else str(self.threads)
        return f"{self.workers}x{threads}{'+shm' if self.shm else ''}"

    def apply(self, argv: list[str]) -> list[str]:
        """A gunicorn command line as deployed (webhook_argv, api_argv), with this shape."""
        argv = list(argv)
        for option in ("--threads", "--worker-class", "--worker-connections"):
            if option in argv:
                del argv[argv.index(option):argv.index(option) + 2]
        argv[argv.index("--workers") + 1] = str(self.workers)
        if self.worker_class == "gevent":
            argv[-1:-1] = ["--worker-class", "gevent", "--worker-connections", "1000"]
        else:
            argv[-1:-1] = ["--worker-class", "gthread", "--threads", str(self.threads)]
        if self.shm:
            # gthread touches this file on every loop turn; on ext4 that is a journaled
            # inode update (gunicorn's docs suggest tmpfs where /tmp is a disk).
            argv[-1:-1] = ["--worker-tmp-dir", "/dev/shm"]
        return argv
