"""The two floors of PRODUCT.md section 6: one bare DuckDB query computing the per-customer aggregates.

* load floor: straight from the landing files (what a first full run can at best cost);
* nightly floor: over the warehouse tables the pipeline loaded (what a nightly run can at best cost).

Both run ``sql/floor_aggregates.sql`` (one statement, the result written to a temp table) on a fresh
connection per repetition with the pipeline's ``memory_limit``; the harness runs them in a child process of
their own so the peak RSS is the floor's. Nothing here imports the pipeline: a floor must not move when the
pipeline code changes.
"""

from __future__ import annotations

import resource
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent / "sql"
# Landing-file patterns of the sample data (segments/sample_data.py); the bad export lacks the amount column
# and is skipped, as ingestion rejects it whole.
LANDING_GLOBS = {
    "orders": "orders/orders_2*.csv*",
    "browsing": "browsing/*.parquet",
    "feedback": "feedback/*.csv*",
    "customers": "customers/*.csv*",
}


def floor_sql(kind: str) -> str:
    """The one statement of a floor: source relations of ``kind`` (landing | warehouse), then the aggregates."""
    sources = (SQL_DIR / f"floor_sources_{kind}.sql").read_text(encoding="utf-8")
    body = (SQL_DIR / "floor_aggregates.sql").read_text(encoding="utf-8")
    return f"create or replace temp table floor_features as\nwith\n{sources},\n{body}"


def window_params(as_of: date) -> dict[str, Any]:
    """``$as_of`` and the exclusive window starts the aggregates take."""
    return {"as_of": as_of, **{f"start_{n}": as_of - timedelta(days=n) for n in (30, 90, 365)}}


def landing_files(landing: Path) -> dict[str, list[str]]:
    """The landing files of each source, sorted; fails naming the source when one has none."""
    out = {}
    for source, pattern in LANDING_GLOBS.items():
        files = sorted(str(p) for p in landing.glob(pattern))
        if not files:
            raise FileNotFoundError(f"no {source} files matching {landing / pattern}")
        out[f"{source}_files"] = files
    return out


def measure_floor(
    kind: str, *, as_of: date, landing: Path, warehouse: Path, memory_limit: str, reps: int
) -> dict[str, Any]:
    """Run one floor ``reps`` times on fresh connections; wall and CPU seconds of each, medians and peak RSS."""
    sql = floor_sql("landing" if kind == "load" else "warehouse")
    params = window_params(as_of)
    if kind == "load":
        params |= landing_files(landing)
    walls, cpus, rows = [], [], 0
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        con = duckdb.connect() if kind == "load" else duckdb.connect(str(warehouse), read_only=True)
        try:
            con.execute(f"set memory_limit = '{memory_limit}'")
            con.execute(sql, params)
            rows = con.execute("select count(*) from floor_features").fetchall()[0][0]
        finally:
            con.close()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {
        "kind": kind,
        "as_of": as_of.isoformat(),
        "reps": reps,
        "wall_s": [round(w, 3) for w in walls],
        "cpu_s": [round(c, 3) for c in cpus],
        "wall_median_s": round(statistics.median(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "customers": int(rows),
    }
