"""Benchmark: every quality check of one snapshot on the warehouse ``snapshot_bench.py`` left behind.

Input suites validate whole source tables here (the pipeline validates only a run's new rows, so this is
the worst case: a first load of all history). Prints seconds per check group and peak RSS.

    .venv/bin/python bench/snapshot_bench.py --customers 1000000 --work /tmp/segments-bench-snapshot
    .venv/bin/python bench/checks_bench.py --work /tmp/segments-bench-snapshot
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from data_contracts import quality as q
from data_contracts.contracts import load_contract
from data_contracts.gx_runner import validate
from data_contracts.suites import build_suite
from data_contracts.table_checks import snapshot_contract_report as validate_snapshot
from ingestion.loader import META_COLUMNS

AS_OF = date(2026, 11, 21)
SEGMENT_COLUMNS = (
    "customer_id, is_buyer, r_score, f_score, m_score, monetary_grade, frequency_grade, engagement_grade, "
    "overall_grade, rfm_segment, lifecycle_stage, cluster_id"
)


def main() -> None:
    """Time input suites, output contract suites and the cross-table output checks."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/segments-bench-snapshot"))
    ap.add_argument("--memory-limit", default="4GB")
    args = ap.parse_args()
    con = duckdb.connect(str(args.work / "warehouse.duckdb"))
    con.execute(f"set memory_limit = '{args.memory_limit}'")
    total = 0.0
    for src in ("orders", "browsing", "feedback", "customers"):
        suite = build_suite(
            load_contract(src),
            accepted={"currencies": ["CNY"]},
            max_ts=datetime.now(UTC),
            table_name=src,
            lineage_columns=[n for n, _ in META_COLUMNS],
        )
        t = time.perf_counter()
        report = validate(con, src, suite)
        total += time.perf_counter() - t
        print(f"input suite {src:<10} {report.row_count:>12,} rows {time.perf_counter() - t:6.1f}s ok={report.success}")
    for name in ("customer_segments", "segment_summary", "rfm_cut_points"):
        t = time.perf_counter()
        report = validate_snapshot(con, name, AS_OF)
        total += time.perf_counter() - t
        print(f"output suite {name:<18} {time.perf_counter() - t:6.1f}s ok={report.success}")
    t = time.perf_counter()
    frame = con.sql(
        f"select {SEGMENT_COLUMNS} from customer_segments where snapshot_date = $d", params={"d": AS_OF}
    ).pl()
    report = q.segments_report(frame, customers_in=frame.height, k=int(frame["cluster_id"].max()) + 1)
    total += time.perf_counter() - t
    print(f"cross-table output checks {time.perf_counter() - t:6.1f}s ok={report.success}")
    print(f"all checks {total:.1f}s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
