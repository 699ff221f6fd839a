"""Feature snapshot cost, full against incremental, on a copy of a benchmark warehouse (prints numbers).

    python bench/harness.py --scale M --nightly --keep-work          # leaves bench/out/work/M/warehouse.duckdb
    PYTHONPATH=. python bench/features_bench.py bench/out/work/M/warehouse.duckdb --as-of 2026-11-22

On a copy of the warehouse (the original is never written): the full feature statement for ``--as-of``
into a scratch table, indexing every row from scratch (``customer_activity_days``), and the incremental
build of ``--as-of`` from the snapshot before it (the index refresh, the affected set, the narrowed
statement and the carry), each ``--reps`` times (median). Wall and process CPU seconds per step, and the
share of customers the incremental build recomputed. The incremental result is compared with the full
one, column for column.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from features import activity_index
from features.customer_features import FeatureParams, build_customer_features, read_features
from features.incremental import build_features


def _timed(step):
    wall, cpu = time.perf_counter(), time.process_time()
    out = step()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _params(con: duckdb.DuckDBPyConnection, as_of: date) -> FeatureParams:
    row = con.execute(
        "select lookback_days, short_window_days, long_window_days, complaint_window_days, reactivation_window_days "
        "from feature_params where snapshot_date = $d",
        {"d": as_of},
    ).fetchall()[0]
    return FeatureParams(
        lookback_days=row[0], windows=(row[1], row[2]), complaint_window_days=row[3], reactivation_window_days=row[4]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"full": [], "index from scratch": [], "incremental": []}
    recomputed = carried = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.duckdb"
        shutil.copy(args.warehouse, path)
        con = duckdb.connect(str(path))
        params = _params(con, args.as_of)
        before = con.execute(
            "select max(snapshot_date) from feature_params where snapshot_date < $d and index_seq is not null",
            {"d": args.as_of},
        ).fetchall()[0][0]
        if before is None:
            print(f"no snapshot before {args.as_of} built with the activity index", file=sys.stderr)
            return 2
        for _ in range(args.reps):
            _, wall, cpu = _timed(lambda: build_customer_features(con, args.as_of, params, table="bench_full"))
            results["full"].append((wall, cpu))
            # the incremental build as a nightly run does it: the snapshot is absent, its base is the day before
            con.execute("delete from customer_features where snapshot_date = $d", {"d": args.as_of})
            con.execute("delete from feature_params where snapshot_date = $d", {"d": args.as_of})
            build, wall, cpu = _timed(lambda: build_features(con, args.as_of, params))
            results["incremental"].append((wall, cpu))
            recomputed, carried = build.recomputed, build.carried
            assert build.mode == "incremental" and build.base_date == before, build
            assert read_features(con, args.as_of).equals(read_features(con, args.as_of, table="bench_full"))
        for _ in range(args.reps):
            con.execute(f"drop table if exists {activity_index.INDEX_TABLE}")
            con.execute(f"drop table if exists {activity_index.RUNS_TABLE}")
            _, wall, cpu = _timed(lambda: activity_index.refresh(con))
            results["index from scratch"].append((wall, cpu))
        con.close()
    print(
        f"features of {args.as_of} from base {before}: {recomputed:,} customers recomputed, {carried:,} carried "
        f"({recomputed / max(recomputed + carried, 1):.1%}); median of {args.reps}; bytecode written: "
        f"{not sys.flags.dont_write_bytecode}"
    )
    print(f"  {'step':<22}{'wall s':>9}{'cpu s':>9}")
    for step, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"  {step:<22}{wall:>9.2f}{cpu:>9.2f}")
    full_cpu = statistics.median(r[1] for r in results["full"])
    inc_cpu = statistics.median(r[1] for r in results["incremental"])
    print(f"incremental / full CPU: {inc_cpu / full_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
