"""Each check function of ``data_contracts.table_checks`` called directly on a clean and a planted-defect warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import run_script_json

from data_contracts import table_checks as tc
from features.segment_reports import segment_summary
from models.registry import Registry, builtin_registry
from models.settings import load_segmentation_settings
from segments.warehouse import replace_snapshot

D0, D1 = date(2026, 11, 14), date(2026, 11, 21)
# The segmentations this file's hand-made table has (the config's other classifications and tags are
# covered by tests/test_classifications*.py).
_FIXTURE_COLUMNS = {
    "rfm_segment",
    "value_class",
    "monetary_grade",
    "frequency_grade",
    "engagement_grade",
    "overall_grade",
    "lifecycle_stage",
    "value_tier",
    "cluster_id",
}
REGISTRY = Registry(tuple(s for s in builtin_registry(load_segmentation_settings()) if s.column in _FIXTURE_COLUMNS))


def _segments(as_of: date, rows: list[tuple[str, bool, str | None, str, str | None]]) -> pl.DataFrame:
    """Customers (id, is_buyer, rfm_segment, lifecycle_stage, value_tier) with valid scores and grades."""
    n = len(rows)
    return pl.DataFrame(
        {
            "snapshot_date": [as_of] * n,
            "customer_id": [r[0] for r in rows],
            "is_buyer": [r[1] for r in rows],
            "r_score": [3 if r[1] else None for r in rows],
            "f_score": [3 if r[1] else None for r in rows],
            "m_score": [3 if r[1] else None for r in rows],
            "monetary_grade": ["A" if r[1] else None for r in rows],
            "frequency_grade": ["B" if r[1] else None for r in rows],
            "engagement_grade": ["C"] * n,
            "overall_grade": ["B" if r[1] else None for r in rows],
            "rfm_segment": [r[2] for r in rows],
            "value_class": ["important_value" if r[1] else None for r in rows],
            "lifecycle_stage": [r[3] for r in rows],
            "value_tier": [r[4] for r in rows],
            "cluster_id": [0 if r[1] else None for r in rows],
            "monetary": [100.0 if r[1] else 0.0 for r in rows],
            "frequency": [2 if r[1] else 0 for r in rows],
            "recency_days": [10 if r[1] else None for r in rows],
        },
        schema_overrides={"cluster_id": pl.Int64, "r_score": pl.Int64, "f_score": pl.Int64, "m_score": pl.Int64},
    )


CLEAN = [
    ("c1", True, "champions", "active", "high_value"),
    ("c2", True, "loyal", "active", "general"),
    ("c3", True, "at_risk", "at_risk", "general"),
    ("c4", False, None, "prospect", "low_value"),
]


def _load(con: duckdb.DuckDBPyConnection, as_of: date, rows: list, *, features: int | None = None) -> None:
    frame = _segments(as_of, rows)
    replace_snapshot(con, "customer_segments", frame, as_of)
    ids = frame["customer_id"].unique().to_list()
    n = len(ids) if features is None else features
    replace_snapshot(
        con,
        "customer_features",
        pl.DataFrame({"snapshot_date": [as_of] * n, "customer_id": [f"f{i}" for i in range(n)]}),
        as_of,
    )
    replace_snapshot(con, "cluster_profiles", pl.DataFrame({"snapshot_date": [as_of], "cluster_id": [0]}), as_of)
    replace_snapshot(con, "segment_summary", segment_summary(con, as_of, REGISTRY), as_of)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield connection
    connection.close()


def test_customer_segments_checks_pass_on_a_clean_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, D1, CLEAN)
    found = tc.customer_segments_findings(con, D1, min_buyers=3)
    assert {name: all(o.success for o in outs) for name, outs in found.items()} == dict.fromkeys(found, True)


def test_customer_segments_checks_catch_planted_defects(con: duckdb.DuckDBPyConnection) -> None:
    # c2 twice (grain), a buyer without a segment, and one more customer in the features than segmented.
    _load(
        con, D1, [*CLEAN, ("c2", True, "loyal", "active", "general"), ("c5", True, None, "new", "general")], features=7
    )
    found = tc.customer_segments_findings(con, D1, min_buyers=10)
    failed = sorted(name for name, outs in found.items() if not all(o.success for o in outs))
    assert failed == [
        "buyers_have_segment_and_stage",
        "customers_out_equal_in",
        "enough_buyers",
        "one_row_per_customer",
    ]
    assert found["enough_buyers"][0].severity == "warn"


def test_share_drift_is_checked_for_every_registered_segmentation(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, D0, CLEAN)
    # Same RFM segments; value tier: every buyer moves from general to high_value (share 0.25 -> 0.75).
    moved = [(c, b, s, st, "high_value" if b else t) for c, b, s, st, t in CLEAN]
    _load(con, D1, moved)
    found = tc.segment_summary_findings(con, D1, REGISTRY, max_share_change=0.10, max_unassigned_increase=0.05)
    drifting = [o for o in found["segment_share_drift"] if not o.success]
    assert [o.check for o in drifting] == ["value_tier.segment_share_drift"]
    assert drifting[0].examples == (
        "value_tier · general: 0.5000 -> 0.0000 (-0.5000)",
        "value_tier · high_value: 0.2500 -> 0.7500 (+0.5000)",
    )
    assert [o.check.split(".")[0] for o in found["segment_share_drift"]] == [s.name for s in REGISTRY.where("drift")]
    assert all(o.success for o in found["shares_sum_to_one"])


def test_unassigned_growth_counts_buyers_without_a_value_not_prospects(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, D0, CLEAN)
    # Ten more prospects (no RFM segment by definition) must not count; one buyer losing its segment must.
    prospects = [(f"p{i}", False, None, "prospect", "low_value") for i in range(10)]
    _load(con, D1, [*CLEAN, *prospects])
    found = tc.segment_summary_findings(con, D1, REGISTRY, max_share_change=1.0, max_unassigned_increase=0.05)
    assert all(o.success for o in found["unassigned_share_growth"])

    lost = [("c1", True, None, "active", "high_value"), *CLEAN[1:]]
    _load(con, D1, lost)
    found = tc.segment_summary_findings(con, D1, REGISTRY, max_share_change=1.0, max_unassigned_increase=0.05)
    failed = [o for o in found["unassigned_share_growth"] if not o.success]
    assert [o.check for o in failed] == ["rfm_segment.unassigned_share_growth"]
    assert failed[0].examples == ("rfm_segment · unassigned: 0.0000 -> 0.3333 (+0.3333)",)


def test_cut_point_findings_compare_with_the_previous_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    for as_of, edge in ((D0, 100.0), (D1, 180.0)):
        replace_snapshot(
            con,
            "rfm_cut_points",
            pl.DataFrame({"snapshot_date": [as_of], "metric": ["monetary"], "score": [2], "min_value": [edge]}),
            as_of,
        )
    assert tc.cut_point_findings(con, D0, 0.5).success  # first snapshot
    found = tc.cut_point_findings(con, D1, 0.5)
    assert (found.success, found.examples) == (False, ("monetary:2: 100 -> 180 (+80.0%)",))


def test_freshness_warns_when_the_newest_order_is_older_than_the_limit(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create table orders (order_id varchar, order_date date)")
    con.execute(
        "insert into orders values ('o1', date '2026-11-10'), ('o2', date '2026-11-17'), ('o3', date '2026-11-25')"
    )
    fresh = tc.freshness_findings(con, D1, 4)  # newest on or before D1 is 11-17: 4 days
    assert fresh.success and fresh.observed == {"newest_order_date": "2026-11-17", "age_days": 4}
    stale = tc.freshness_findings(con, D1, 3)
    assert (stale.success, stale.severity) == (False, "warn")
    assert stale.examples == ("newest order 2026-11-17 is 4 days before the snapshot date 2026-11-21 (limit 3)",)
    assert not tc.freshness_findings(con, date(2026, 11, 1), 3).success  # no order at all before D


RUN = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"


def _ingested(con: duckdb.DuckDBPyConnection, rows: int, logged: list[tuple[str, int, int, int, int]]) -> None:
    from ingestion.loader import ensure_schema

    ensure_schema(con)
    for i in range(rows):
        con.execute(
            "insert into orders by name select $id as order_id, 'c1' as customer_id, "
            "timestamp '2026-11-20 10:00:00' as order_ts, date '2026-11-20' as order_date, 10.00 as amount, "
            "'CNY' as currency, 'completed' as status, 'f.csv' as _file, $line as _line, $run as _run_id",
            {"id": f"o{i}", "line": i + 2, "run": RUN},
        )
    for path, read, loaded, quarantined, dups in logged:
        con.execute(
            "insert into ingest_log by name select 'orders' as source, $p as path, $run as run_id, "
            "$r as rows_read, $l as rows_loaded, $q as rows_quarantined, $d as duplicates_dropped",
            {"p": path, "run": RUN, "r": read, "l": loaded, "q": quarantined, "d": dups},
        )


def test_input_accounting_passes_when_files_add_up_and_the_table_holds_the_run_rows(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _ingested(con, 3, [("f.csv", 5, 3, 1, 1)])
    found = tc.input_findings(con, "orders", RUN, {"currencies": ["CNY"]}, datetime(2026, 11, 22), sample_rows=2)
    assert found.accounting.success, found.accounting.examples
    assert found.report.row_count == 2  # the suite ran on a sample of the run's rows
    assert (found.rows_read, found.rows_quarantined, found.table_rows) == (5, 1, 3)


_NO_ROWS_RUN = """
import json, sys
from datetime import datetime
import duckdb
from data_contracts import table_checks as tc
con = duckdb.connect(sys.argv[1])
found = tc.input_findings(con, "orders", sys.argv[2], {"currencies": ["CNY"]}, datetime(2026, 11, 22))
print(json.dumps({"gx": "great_expectations" in sys.modules, "results": len(found.report.results),
                  "success": found.report.success, "rows": found.report.row_count,
                  "suite": found.report.suite_name, "accounting": found.accounting.success}))
"""


def test_input_suite_is_not_run_and_gx_not_imported_when_the_run_loaded_no_rows(tmp_path: Path) -> None:
    """A nightly run without a new orders file: the accounting is still checked, the GX suite has nothing to
    check and Great Expectations is never imported (a fresh process, as a multiprocess run's step)."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as setup:
        _ingested(setup, 3, [("f.csv", 3, 3, 0, 0)])  # rows of an earlier run
    other_run = "0f1e2d3c-aaaa-bbbb-cccc-000000000002"
    out = run_script_json(_NO_ROWS_RUN, str(path), other_run)
    assert out == {
        "gx": False,
        "results": 0,
        "success": True,
        "rows": 0,
        "suite": "not run: no rows of this run",
        "accounting": True,
    }


def test_input_accounting_catches_lost_rows_and_files_that_do_not_add_up(con: duckdb.DuckDBPyConnection) -> None:
    _ingested(con, 2, [("f.csv", 5, 3, 1, 0)])
    found = tc.accounting_outcome(con, "orders", RUN)
    assert (found.success, found.severity) == (False, "blocking")
    assert found.examples == (
        "f.csv: read 5 != loaded 3 + quarantined 1 + duplicates 0",
        "orders holds 2 rows of this run, the files say 3 were loaded",
    )
