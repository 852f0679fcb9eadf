"""How fast a campaign CSV is imported:
`python -m bench.campaign_import [--rows N] [--runs 3] [--db sqlite|postgresql|both]
[--no-baseline]`.

Writes a CSV of N distinct valid US numbers with two metadata columns, imports it with
create_campaign (validation, time zones, DNC and duplicate checks, bulk inserts) into a
fresh database per run: a SQLite file, a database in a throwaway PostgreSQL cluster
(started as the tests start theirs), or the URL given. Prints rows/s per run and a table
of min/median/max with the goal beside it, with the CPU time of the importing process and
of its checking processes (a figure a busy machine disturbs less than the wall time).
Before the first run it waits (up to --quiet-timeout) for the 1-minute load average to
drop under 1.0, before the others for an idle CPU (bench.common.settle); the load at the
start of each run is recorded.
Results go to bench/results/campaign_import.json, one entry per database (the other
entries are kept).

Beside each import, the baseline (on unless --no-baseline): the same CSV read with the
csv module and stored in one transaction through the import's own insert path
(`store_jobs`: executemany on SQLite, COPY on PostgreSQL) into the jobs table of another
fresh database on the same server (with --database, that one), with no check of any kind
(the rows the import would store, one fixed time zone each). It is the floor: what reading
the file and writing its rows cost on this machine in the same minute, so the ratios
import/baseline of rows/s and of CPU time show what the checks (numbers, time zones,
do-not-call, duplicates) add; the two run back to back, in an order that alternates
between runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    VOICE_URL,
    describe_loads,
    exit_cleanly_on_sigterm,
    fmt_spread,
    machine,
    print_table,
    ratio,
    servers,
    settle,
    spread,
    write_results,
)
from worker.engine.context import Context
from worker.producer.campaigns import create_campaign, store_jobs
from worker.store.database import upgrade
from worker.wiring import default_context, reset_default_context

GOAL_ROWS_PER_S = 20_000
BASELINE_ZONES = ("America/New_York",)
# What each run records of its baseline, and the ratios import/baseline.
VS_BASELINE = ("baseline_rows_per_s", "baseline_cpu_s", "rows_per_s_ratio", "cpu_ratio")


def write_contacts(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("to,name,account\n")
        for n in range(rows):
            area = 201 + (n // 1_000_000) * 10
            out.write(f"+1{area}555{n % 10_000:04d},Person {n},A{n}\n"
                      if n < 10_000 else
                      f"+1{area + (n // 10_000) % 50}{200 + (n // 100) % 800:03d}"
                      f"{n % 100:02d}{n % 7}{n % 3},Person {n},A{n}\n")


def context_for(url: str) -> Context:
    """This process's context on the database at `url`, migrated."""
    os.environ["DIALER_DATABASE_URL"] = url
    reset_default_context()
    ctx = default_context()
    upgrade(ctx.database.engine)
    return ctx


def import_once(url: str, path: Path) -> dict[str, Any]:
    ctx = context_for(url)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    started = time.perf_counter()
    result = create_campaign(ctx, "bench", contacts=path, url=VOICE_URL)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    # The checking processes are this one's children, reaped when the import ends; the
    # database server's CPU is not counted.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    pool = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return {"rows": result.rows, "imported": result.imported,
            "invalid": len(result.invalid), "duplicates": result.duplicates,
            "seconds": round(elapsed, 2), "rows_per_s": round(result.rows / elapsed),
            "main_cpu_s": round(cpu, 2), "pool_cpu_s": round(pool, 2)}


def baseline_once(url: str, path: Path) -> dict[str, Any]:
    """The import's floor (see the module's docstring): rows/s and this process's CPU."""
    ctx = context_for(url)
    settings = ctx.settings
    campaign = {"id": uuid.uuid4().hex, "start_at": None, "from_": settings.default_from,
                "url": VOICE_URL, "twiml": None, "application_sid": None, "call_options": {},
                "max_attempts": settings.max_attempts, "retry_on": list(settings.retry_on),
                "retry_delays": list(settings.retry_delays), "api_key_id": None}
    cpu = time.process_time()
    started = time.perf_counter()
    with path.open(newline="") as contacts, ctx.database.session() as session:
        reader = csv.reader(contacts)
        columns = next(reader)[1:]
        rows = [(to, dict(zip(columns, cells, strict=True)), BASELINE_ZONES, None)
                for to, *cells in reader]
        store_jobs(session, campaign, rows)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {"rows": len(rows), "seconds": round(elapsed, 2),
            "rows_per_s": round(len(rows) / elapsed), "cpu_s": round(cpu, 2)}


def versus(run: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """The baseline's figures beside the import's, and the ratios import/baseline (the
    import's CPU with its checking processes')."""
    return {"baseline_rows_per_s": base["rows_per_s"], "baseline_cpu_s": base["cpu_s"],
            "rows_per_s_ratio": ratio(run["rows_per_s"], base["rows_per_s"]),
            "cpu_ratio": ratio(run["main_cpu_s"] + run["pool_cpu_s"], base["cpu_s"], 2)}


def measure_run(url: str, baseline_url: str | None, path: Path,
                baseline_first: bool) -> dict[str, Any]:
    """One import and, given a database for it, the baseline beside it."""
    base = baseline_once(baseline_url, path) if baseline_url and baseline_first else None
    run = import_once(url, path)
    if baseline_url and not baseline_first:
        base = baseline_once(baseline_url, path)
    if base is None:
        return run
    return {**run, "baseline_first": baseline_first, "baseline": base,
            "vs_baseline": versus(run, base)}


def report(url: str, n: int, run: dict[str, Any]) -> None:
    """A run's line as it ends, and its baseline's beside it."""
    load = run["load"]
    print(f"{url.split(':')[0]:22} run {n + 1}: {run['seconds']:6.2f} s "
          f"{run['rows_per_s']:7} rows/s, CPU {run['main_cpu_s']} s here "
          f"+ {run['pool_cpu_s']} s in the pool (load {load['load_1m']}, CPU "
          f"{load['cpu_busy']:.0%} busy)", flush=True)
    if "baseline" in run:
        base, vs = run["baseline"], run["vs_baseline"]
        print(f"{'':22} baseline: {base['seconds']:6.2f} s {base['rows_per_s']:7} rows/s, CPU "
              f"{base['cpu_s']} s; ratio: rows/s {vs['rows_per_s_ratio']}, CPU "
              f"{vs['cpu_ratio']}", flush=True)


def table_rows(database: str, rows: int, figures: dict[str, Any]) -> list[list[str]]:
    """One database's rows, with the baseline and the ratio beside each when measured."""
    out = [[f"{database}: rows/s", f">= {GOAL_ROWS_PER_S}",
            fmt_spread(figures["rows_per_s"], 0)],
           [f"{database}: seconds for {rows} rows", f"<= {rows / GOAL_ROWS_PER_S:g}",
            fmt_spread(figures["seconds"])],
           [f"{database}: CPU s, importing process + pool", "",
            f"{fmt_spread(figures['main_cpu_s'])} + {fmt_spread(figures['pool_cpu_s'])}"]]
    vs = figures.get("vs_baseline")
    if vs is not None:
        out[0] += [fmt_spread(vs["baseline_rows_per_s"], 0), fmt_spread(vs["rows_per_s_ratio"])]
        out[1] += [fmt_spread(figures["baseline_seconds"]), ""]
        out[2] += [fmt_spread(vs["baseline_cpu_s"]), fmt_spread(vs["cpu_ratio"])]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--database", help="SQLAlchemy URL instead of --db (a scratch database; "
                                           "every run adds a campaign to it)")
    parser.add_argument("--quiet-timeout", type=float, default=180,
                        help="longest wait for load < 1.0 before the first run (180 s)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="beside each import, the CSV read and inserted with no check "
                             "into a fresh database, for ratios that move less with the "
                             "machine (on)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    os.environ.setdefault("DIALER_DEFAULT_FROM", "+14155550100")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    path = RESULTS / "campaign_import.json"
    results = json.loads(path.read_text()).get("results", {}) if path.exists() else {}
    info = machine()
    rows: list[list[str]] = []
    measured: dict[str, dict[str, Any]] = {}
    with servers(postgres="postgresql" in kinds and not args.database) as srv:
        info["versions"]["postgresql"] = srv.postgresql_version()
        contacts = srv.workdir / "contacts.csv"
        write_contacts(contacts, args.rows)
        for kind in [None] if args.database else kinds:
            runs = []
            for n in range(args.runs):
                load = settle(not measured and n == 0, args.quiet_timeout)
                url = args.database or srv.database_url(kind or "sqlite")
                baseline_url = ((args.database or srv.database_url(kind or "sqlite"))
                                if args.baseline else None)
                runs.append({**measure_run(url, baseline_url, contacts, n % 2 == 1),
                             "load": load})
                report(url, n, runs[-1])
            database = url.split(":")[0]
            figures = {**{k: runs[0][k] for k in ("rows", "imported", "invalid", "duplicates")},
                       "database": database, "runs": runs,
                       "seconds": spread([r["seconds"] for r in runs]),
                       "rows_per_s": spread([r["rows_per_s"] for r in runs]),
                       "main_cpu_s": spread([r["main_cpu_s"] for r in runs]),
                       "pool_cpu_s": spread([r["pool_cpu_s"] for r in runs]),
                       "goal_rows_per_s": GOAL_ROWS_PER_S, "machine": info}
            if args.baseline:
                figures["baseline_seconds"] = spread([r["baseline"]["seconds"] for r in runs])
                figures["vs_baseline"] = {name: spread([r["vs_baseline"][name] for r in runs])
                                          for name in VS_BASELINE}
            results[database] = measured[database] = figures
            rows.extend(table_rows(database, args.rows, figures))
    headers = ["figure", "goal", "measured"]
    title = f"Campaign import, {args.rows} rows: median (min-max) over {args.runs} run(s)"
    if args.baseline:
        headers += ["baseline (same run)", "ratio import/baseline"]
        title += ("; baseline: the CSV read with the csv module and inserted unchecked "
                  "through the import's insert path, ratios per run")
    print_table(title, headers, rows)
    print("\n" + describe_loads([r["load"] for f in measured.values() for r in f["runs"]]))
    write_results("campaign_import", {
        "results": results,
        "goals_met": all(f["rows_per_s"]["min"] >= GOAL_ROWS_PER_S for f in measured.values()),
    }, argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
