"""Benchmark: contract-checked ingestion of N order lines / browsing events (CSV, Parquet) vs a bare DuckDB load.

Prints wall time, CPU seconds, rows/s and peak RSS of each run (each in its own subprocess, so peak memory
is the run's own). The "floor" is a bare ``create table as select * from read_csv(...)`` of the same files:
the least work any loader must do. The ratios are of CPU seconds (steadier than wall time on a shared
machine), measured in the same run; compare them within one run only.

    .venv/bin/python bench/ingest_bench.py --rows 10000000 [--files 10] [--sources orders,browsing] \
        [--formats csv,parquet] [--work /tmp/segments-bench] [--spark]

``--spark`` also loads the Parquet files with the row rules staged on Spark (``local[2]``,
``engines/spark_ingest.py``); its CPU is this process's plus the Spark JVM's, the session started before the
clock (as the imports are).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's packages, whatever the current directory or installed copy

GEN_SQL: dict[str, str] = {}
GEN_SQL["orders"] = """
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
# Events of sessions of 8: one in 5 anonymous (empty customer_id), timestamps in one year.
GEN_SQL["browsing"] = """
copy (
    select
        case when hash(i // 8) % 5 = 0 then null
             else 'C' || lpad(cast(hash(i // 8) % $customers as varchar), 8, '0') end as customer_id,
        'S' || lpad(cast(i // 8 as varchar), 10, '0') as session_id,
        strftime(timestamp '2025-01-01' + to_seconds(cast(hash(i // 8) % 31536000 + i % 8 * 17 as bigint)),
                 '%Y-%m-%d %H:%M:%S') as event_ts,
        ['page_view', 'product_view', 'search', 'add_to_cart', 'checkout'][cast(1 + hash(i) % 5 as bigint)]
            as event_type,
        'cat' || cast(hash(i) % 12 as varchar) as category,
        hash(i) % 600 as duration_s,
        ['mobile', 'desktop', 'tablet'][cast(1 + hash(i // 8) % 3 as bigint)] as device
    from range($start, $stop) t(i)
) to '{path}' ({options})
"""
FORMATS = {"csv": "header true, delimiter ','", "parquet": "format parquet"}
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def generate(work: Path, rows: int, files: int, sources: list[str], formats: list[str]) -> None:
    """Write the same rows of each source as CSV files and as Parquet files."""
    con = duckdb.connect()
    per = rows // files
    for source in sources:
        for fmt in formats:
            d = work / fmt / "landing" / source
            d.mkdir(parents=True, exist_ok=True)
            for k in range(files):
                path = d / f"{source}_{k:03d}.{fmt}"
                con.execute(
                    GEN_SQL[source].format(path=path, options=FORMATS[fmt]),
                    {"start": k * per, "stop": (k + 1) * per, "customers": max(rows // 10, 1)},
                )
    con.close()


def child(mode: str, work: Path, code: Path, zone: str) -> None:
    """One measured run (in a subprocess): ingest via the segments checkout ``code``, or the bare DuckDB floor.

    Imports happen before the clock starts: CPU and wall time are the load's own.
    """
    from datetime import datetime

    sys.path.insert(0, str(code))

    from ingestion.loader import ingest_source
    from segments.config import settings_from_dict
    from segments.warehouse import connect

    kind, source, fmt = mode.split("-")
    stager, jvm = None, None
    if kind == "spark":
        from probe import child_usage

        from engines.spark import SparkSettings, spark_session
        from engines.spark_stager import SparkStager

        session = spark_session(SparkSettings(shuffle_partitions=2))
        session.range(1).collect()
        stager, seen = SparkStager(lambda: session, work / "spark_staging"), {}

        def jvm() -> float:
            return child_usage(seen)[0]

        jvm0 = jvm()
    t0, c0 = time.perf_counter(), time.process_time()  # process_time: every thread of the process
    if kind == "floor":
        con = duckdb.connect(str(work / f"floor_{source}_{fmt}.duckdb"))
        reader = "read_csv" if fmt == "csv" else "read_parquet"
        con.execute(f"create table t as select * from {reader}('{work / fmt / 'landing' / source}/*.{fmt}')")
        n = con.execute("select count(*) from t").fetchall()[0][0]
        con.close()
    else:
        base = work / fmt
        settings = settings_from_dict(
            {
                "landing_dir": "landing",
                "warehouse": f"wh_{source}.duckdb",
                "time_zone": zone,
                "sources": {
                    name: {"glob": f"{name}/*", "timestamp_format": TS_FORMAT, "enabled": name == source}
                    for name in ("orders", "browsing")
                },
            },
            base_dir=base,
        )
        with connect(settings.warehouse) as con:
            report = ingest_source(con, settings, source, run_id="bench", run_ts=datetime(2026, 11, 22), stager=stager)
        n = report.total("rows_loaded")
        assert all(f.balanced for f in report.files)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    if jvm is not None:
        cpu += jvm() - jvm0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
    ap.add_argument("--sources", default="orders,browsing", help="comma-separated: orders, browsing")
    ap.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    ap.add_argument("--work", type=Path, default=Path("/tmp/segments-bench-ingest"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--baseline", type=Path, help="another checkout to measure alternately on the same files")
    ap.add_argument("--reps", type=int, default=1, help="runs of each mode (the minimum CPU is reported)")
    ap.add_argument("--spark", action="store_true", help="also stage the Parquet files' row rules on Spark")
    ap.add_argument(
        "--zone",
        default="Asia/Shanghai",
        help="the business time zone the times are read in (one with daylight "
        "saving, e.g. America/New_York, adds its per-row checks)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.work, args.code, args.zone)
        return
    sources, formats = args.sources.split(","), args.formats.split(",")
    shutil.rmtree(args.work, ignore_errors=True)
    t0 = time.perf_counter()
    generate(args.work, args.rows, args.files, sources, formats)
    print(
        f"generated {args.rows:,} rows per source in {args.files} files per format in {time.perf_counter() - t0:.1f}s"
    )
    versions = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    runs: dict[str, list[dict]] = {}
    for source in sources:
        for fmt in formats:
            for _ in range(args.reps):
                for version, code in versions.items():
                    kinds = ("floor", "ingest", "spark") if args.spark and fmt == "parquet" else ("floor", "ingest")
                    for kind in kinds:
                        mode = f"{kind}-{source}-{fmt}"
                        for old in [*(args.work / fmt).glob("*.duckdb*"), *args.work.glob("floor_*.duckdb*")]:
                            old.unlink()  # every run starts from an empty warehouse
                        done = subprocess.run(
                            [
                                *(sys.executable, __file__, "--work", str(args.work), "--child", mode),
                                *("--code", str(code), "--zone", args.zone),
                            ],
                            check=True,
                            capture_output=True,
                            text=True,
                        )
                        r = json.loads(done.stdout.strip().splitlines()[-1])
                        runs.setdefault(f"{version}:{mode}", []).append(r)
                        print(
                            f"{version:<8} {mode:<24} {r['rows']:>12,} rows {r['seconds']:>8.2f}s "
                            f"(CPU {r['cpu_s']:>7.2f}s) peak RSS {r['peak_rss_mb']:>6} MB"
                        )
    print("\nminimum CPU seconds; ratio to the bare DuckDB load of the same files (the floor, minimum of all runs)")
    for source in sources:
        for fmt in formats:
            floor = min(r["cpu_s"] for v in versions for r in runs[f"{v}:floor-{source}-{fmt}"])
            cells = []
            for version in versions:
                for kind in ("ingest", "spark"):
                    if f"{version}:{kind}-{source}-{fmt}" in runs:
                        cpu = min(r["cpu_s"] for r in runs[f"{version}:{kind}-{source}-{fmt}"])
                        wall = min(r["seconds"] for r in runs[f"{version}:{kind}-{source}-{fmt}"])
                        cells.append(f"{version} {kind} {cpu:.2f}s CPU ({wall:.2f}s wall) = {cpu / floor:.2f}x")
            print(f"{source:<9} {fmt:<8} floor {floor:.2f}s; " + "; ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
