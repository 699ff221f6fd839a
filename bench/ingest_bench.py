"""Benchmark: contract-checked ingestion of N order lines from CSV and from Parquet vs a bare DuckDB load.

Prints wall time, rows/s and peak RSS of each run (each in its own subprocess, so peak memory is the
run's own). The "floor" is a bare ``create table as select * from read_csv(...)`` of the same file: the
least work any loader must do. Compare ratios within one run; machines here are shared and noisy.

    .venv/bin/python bench/ingest_bench.py --rows 10000000 [--files 10] [--work /tmp/segments-bench]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

GEN_SQL = """
copy (
    select
        'O' || lpad(cast(i // 3 as varchar), 9, '0') as order_id,
        i % 3 + 1 as line_id,
        'C' || lpad(cast(hash(i // 3) % $customers as varchar), 8, '0') as customer_id,
        strftime(timestamp '2025-01-01' + to_seconds(cast(hash(i // 3) % 31536000 as bigint)), '%Y-%m-%d %H:%M:%S')
            as order_ts,
        cast(round(1 + (hash(i) % 50000) / 100.0, 2) as decimal(18, 2)) as amount,
        1 + hash(i) % 3 as quantity,
        cast(round(1 + (hash(i) % 20000) / 100.0, 2) as decimal(18, 2)) as unit_price,
        case when hash(i // 3) % 50 = 0 then 'cancelled' else 'completed' end as status,
        case when hash(i // 3) % 3 = 0 then 'offline' else 'online' end as channel,
        'S' || cast(hash(i // 3) % 40 as varchar) as store_id,
        'cat' || cast(hash(i) % 12 as varchar) as category,
        'P' || cast(hash(i) % 5000 as varchar) as product_id,
        'CNY' as currency
    from range($start, $stop) t(i)
) to '{path}' ({options})
"""


def generate(work: Path, rows: int, files: int) -> None:
    """Write the same order lines as CSV files and as Parquet files."""
    con = duckdb.connect()
    per = rows // files
    for fmt, ext, opts in (("csv", "csv", "header true, delimiter ','"), ("parquet", "parquet", "format parquet")):
        d = work / fmt / "landing" / "orders"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(files):
            path = d / f"orders_{k:03d}.{ext}"
            con.execute(
                GEN_SQL.format(path=path, options=opts),
                {"start": k * per, "stop": (k + 1) * per, "customers": max(rows // 10, 1)},
            )
    con.close()


def child(mode: str, work: Path) -> None:
    """One measured run (in a subprocess): ingest via segments, or the bare DuckDB floor."""
    from datetime import datetime

    t0 = time.perf_counter()
    if mode.startswith("floor"):
        fmt = mode.split("-")[1]
        con = duckdb.connect(str(work / f"floor_{fmt}.duckdb"))
        reader = "read_csv" if fmt == "csv" else "read_parquet"
        con.execute(f"create table orders as select * from {reader}('{work / fmt / 'landing/orders'}/*.{fmt}')")
        n = con.execute("select count(*) from orders").fetchall()[0][0]
        con.close()
    else:
        from ingestion.loader import ingest_source
        from segments.config import settings_from_dict
        from segments.warehouse import connect

        fmt = mode.split("-")[1]
        base = work / fmt
        settings = settings_from_dict(
            {
                "landing_dir": "landing",
                "warehouse": "wh.duckdb",
                "time_zone": "Asia/Shanghai",
                "sources": {"orders": {"glob": "orders/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"}},
            },
            base_dir=base,
        )
        with connect(settings.warehouse) as con:
            report = ingest_source(con, settings, "orders", run_id="bench", run_ts=datetime(2026, 11, 22))
        n = report.total("rows_loaded")
        assert all(f.balanced for f in report.files)
    secs = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime  # all threads; steadier than wall time on a shared machine
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": int(n),
                "seconds": round(secs, 2),
                "cpu_s": round(cpu, 2),
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


def main() -> None:
    """Generate the data once, then measure every mode in its own process."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/segments-bench-ingest"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.work)
        return
    shutil.rmtree(args.work, ignore_errors=True)
    t0 = time.perf_counter()
    generate(args.work, args.rows, args.files)
    print(
        f"generated {args.rows:,} order lines in {args.files} CSV and {args.files} Parquet files "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    results = {}
    for mode in ("floor-csv", "ingest-csv", "floor-parquet", "ingest-parquet"):
        out = (
            subprocess.run(
                [sys.executable, __file__, "--work", str(args.work), "--child", mode],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        results[mode] = json.loads(out)
        r = results[mode]
        print(
            f"{mode:<15} {r['rows']:>12,} rows {r['seconds']:>8.1f}s (CPU {r['cpu_s']:>7.1f}s) "
            f"{r['rows'] / r['seconds']:>12,.0f} rows/s peak RSS {r['peak_rss_mb']:>6} MB"
        )
    for fmt in ("csv", "parquet"):
        ratio = results[f"ingest-{fmt}"]["seconds"] / results[f"floor-{fmt}"]["seconds"]
        print(f"{fmt}: contract-checked ingestion takes {ratio:.1f}x the bare DuckDB load")


if __name__ == "__main__":
    main()
