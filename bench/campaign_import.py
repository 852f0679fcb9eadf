"""How fast a campaign CSV is imported:
`python -m bench.campaign_import [--rows N] [--runs 3] [--db sqlite|postgresql|both]`.

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
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
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
    servers,
    settle,
    spread,
    write_results,
)
from worker.producer.campaigns import create_campaign
from worker.store.database import upgrade
from worker.wiring import default_context, reset_default_context

GOAL_ROWS_PER_S = 20_000


def write_contacts(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("to,name,account\n")
        for n in range(rows):
            area = 201 + (n // 1_000_000) * 10
            out.write(f"+1{area}555{n % 10_000:04d},Person {n},A{n}\n"
                      if n < 10_000 else
                      f"+1{area + (n // 10_000) % 50}{200 + (n // 100) % 800:03d}"
                      f"{n % 100:02d}{n % 7}{n % 3},Person {n},A{n}\n")


def import_once(url: str, path: Path) -> dict[str, Any]:
    os.environ["DIALER_DATABASE_URL"] = url
    reset_default_context()
    ctx = default_context()
    upgrade(ctx.database.engine)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--database", help="SQLAlchemy URL instead of --db (a scratch database; "
                                           "every run adds a campaign to it)")
    parser.add_argument("--quiet-timeout", type=float, default=180,
                        help="longest wait for load < 1.0 before the first run (180 s)")
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
                runs.append({**import_once(url, contacts), "load": load})
                print(f"{url.split(':')[0]:22} run {n + 1}: {runs[-1]['seconds']:6.2f} s "
                      f"{runs[-1]['rows_per_s']:7} rows/s, CPU {runs[-1]['main_cpu_s']} s here "
                      f"+ {runs[-1]['pool_cpu_s']} s in the pool (load {load['load_1m']}, CPU "
                      f"{load['cpu_busy']:.0%} busy)", flush=True)
            database = url.split(":")[0]
            figures = {**{k: runs[0][k] for k in ("rows", "imported", "invalid", "duplicates")},
                       "database": database, "runs": runs,
                       "seconds": spread([r["seconds"] for r in runs]),
                       "rows_per_s": spread([r["rows_per_s"] for r in runs]),
                       "main_cpu_s": spread([r["main_cpu_s"] for r in runs]),
                       "pool_cpu_s": spread([r["pool_cpu_s"] for r in runs]),
                       "goal_rows_per_s": GOAL_ROWS_PER_S, "machine": info}
            results[database] = measured[database] = figures
            rows.append([f"{database}: rows/s", f">= {GOAL_ROWS_PER_S}",
                         fmt_spread(figures["rows_per_s"], 0)])
            rows.append([f"{database}: seconds for {args.rows} rows",
                         f"<= {args.rows / GOAL_ROWS_PER_S:g}", fmt_spread(figures["seconds"])])
            rows.append([f"{database}: CPU s, importing process + pool", "",
                         f"{fmt_spread(figures['main_cpu_s'])} + "
                         f"{fmt_spread(figures['pool_cpu_s'])}"])
    print_table(f"Campaign import, {args.rows} rows: median (min-max) over {args.runs} run(s)",
                ["figure", "goal", "measured"], rows)
    print("\n" + describe_loads([r["load"] for f in measured.values() for r in f["runs"]]))
    write_results("campaign_import", {
        "results": results,
        "goals_met": all(f["rows_per_s"]["min"] >= GOAL_ROWS_PER_S for f in measured.values()),
    }, argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
