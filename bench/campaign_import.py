"""How fast a campaign CSV is imported: `python -m bench.campaign_import [--rows N]`.

Writes a CSV of N distinct valid US numbers with two metadata columns, imports it with
create_campaign (validation, time zones, DNC and duplicate checks, bulk inserts) into a
fresh SQLite database (or the URL given, e.g. a scratch PostgreSQL database), and prints
rows/s. Results go to bench/results/campaign_import.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    os.environ["DIALER_DATABASE_URL"] = args.database or f"sqlite:///{workdir / 'bench.db'}"
    os.environ.setdefault("DIALER_DEFAULT_FROM", "+14155550100")
    from worker.campaigns import create_campaign
    from worker.db import get_engine, upgrade

    upgrade(get_engine())
    path = workdir / "contacts.csv"
    with path.open("w") as out:
        out.write("to,name,account\n")
        for n in range(args.rows):
            area = 201 + (n // 1_000_000) * 10
            out.write(f"+1{area}555{n % 10_000:04d},Person {n},A{n}\n"
                      if n < 10_000 else
                      f"+1{area + (n // 10_000) % 50}{200 + (n // 100) % 800:03d}"
                      f"{n % 100:02d}{n % 7}{n % 3},Person {n},A{n}\n")
    started = time.perf_counter()
    result = create_campaign("bench", contacts=path, url="https://example.com/voice.xml")
    elapsed = time.perf_counter() - started
    figures = {"rows": result.rows, "imported": result.imported,
               "invalid": len(result.invalid), "duplicates": result.duplicates,
               "seconds": round(elapsed, 2), "rows_per_s": round(result.rows / elapsed),
               "database": os.environ["DIALER_DATABASE_URL"].split(":")[0]}
    for key, value in figures.items():
        print(f"{key:12} {value}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "campaign_import.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
