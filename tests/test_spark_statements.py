"""Each SQL statement of the engines, on DuckDB and on Spark, against values worked out by hand on tiny inputs.

The same inputs through the polars models give the same values (the SQL forms restate models/ rules).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from engines.pipeline import export_sources, features_on_engine
from engines.segmentation import SQL_DIR, _grade_values, _score_values, assignment_statement
from engines.sql import load_statement
from models.grades import grade_customers
from models.lifecycle import assign_lifecycle
from models.rfm import score_rfm
from models.settings import load_segmentation_settings

try:
    from tests.conftest_features_helpers import event, make_warehouse, order
    from tests.spark_helpers import make_engine
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest_features_helpers import event, make_warehouse, order
    from spark_helpers import make_engine

D = date(2026, 11, 21)
ENGINES = ["duckdb", "spark"]
SETTINGS = load_segmentation_settings({})
ENGAGEMENT = 'coalesce("sessions_90d", 0) + coalesce("add_to_carts_90d", 0)'

# customer: is_buyer, recency, frequency, monetary, first purchase, reactivation gap, sessions, carts
ROWS = [
    ("a", True, 5, 1, "100.00", date(2026, 11, 16), None, 3, 1),
    ("b", True, 5, 3, "300.00", date(2025, 1, 1), 200, 0, 0),
    ("c", True, 40, 1, "100.00", date(2025, 6, 1), None, 1, 0),
    ("d", True, 200, 2, "500.00", date(2025, 1, 10), None, 0, 0),
    ("e", False, None, 0, "0.00", None, None, 2, 2),
    ("f", True, 100, 1, "-20.00", date(2025, 3, 1), None, 0, 0),
]


def _features() -> pl.DataFrame:
    cols = list(zip(*ROWS, strict=True))
    return pl.DataFrame(
        {
            "snapshot_date": [D] * len(ROWS),
            "customer_id": cols[0],
            "is_buyer": cols[1],
            "recency_days": pl.Series(cols[2], dtype=pl.Int64),
            "frequency": pl.Series(cols[3], dtype=pl.Int64),
            "monetary": pl.Series([Decimal(v) for v in cols[4]], dtype=pl.Decimal(18, 2)),
            "first_purchase_date": pl.Series(cols[5], dtype=pl.Date),
            "reactivation_gap_days": pl.Series(cols[6], dtype=pl.Int64),
            "sessions_90d": pl.Series(cols[7], dtype=pl.Int64),
            "add_to_carts_90d": pl.Series(cols[8], dtype=pl.Int64),
        }
    )


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest):
    eng = make_engine(request.param)
    eng.register("features", _features().to_arrow())
    return eng


def _values() -> dict[str, object]:
    return {**_score_values(SETTINGS), **_grade_values(SETTINGS)}


def test_rfm_score_table_scores_distinct_values_worst_first(engine) -> None:
    engine.create("rfm_score_table", load_statement(SQL_DIR, "rfm_score_table", engine.name), _values())
    got = pl.from_arrow(engine.fetch_view("rfm_score_table")).sort("metric", "value")
    # 5 buyers; score = 1 + (5 * worse) // 5. Recency worst first: 200, 100, 40, 5 (twice).
    want = pl.DataFrame(
        {
            "metric": ["frequency"] * 3 + ["monetary"] * 4 + ["recency_days"] * 4,
            "value": [Decimal(v) for v in ("1", "2", "3", "-20", "100", "300", "500", "5", "40", "100", "200")],
            "score": [1, 4, 5, 1, 2, 4, 5, 4, 3, 2, 1],
            "customers": [3, 1, 1, 1, 2, 1, 1, 2, 1, 1, 1],
        },
        schema={"metric": pl.String, "value": pl.Decimal(18, 2), "score": pl.Int64, "customers": pl.Int64},
    )
    assert_frame_equal(got, want)


def test_grade_table_grades_tie_groups_by_their_cumulative_share(engine) -> None:
    statement = load_statement(SQL_DIR, "grade_table", engine.name, engagement_score=ENGAGEMENT)
    engine.create("grade_table", statement, _values())
    got = pl.from_arrow(engine.fetch_view("grade_table")).sort("basis", "value")
    # Pareto 80/95. Monetary cents 50000, 30000 reach 80 % exactly (A, A); 2 × 10000 ends at 100 % (C);
    # -2000 is not positive (C). Frequency 3, 2 make 5/8 <= 80 % (A); the three 1s end at 100 % (C).
    # Engagement 4 (two customers) is the first group (A); 1 ends at 100 % (C); 0 is C.
    want = pl.DataFrame(
        {
            "basis": ["engagement"] * 3 + ["frequency"] * 3 + ["monetary"] * 4,
            "value": [0, 1, 4, 1, 2, 3, -2000, 10000, 30000, 50000],
            "grade": ["C", "C", "A", "C", "A", "A", "C", "C", "A", "A"],
        },
        schema={"basis": pl.String, "value": pl.Int64, "grade": pl.String},
    )
    assert_frame_equal(got, want)


EXPECTED_SCORES = pl.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "r_score": [4, 4, 3, 1, None, 2],
        "f_score": [1, 5, 1, 4, None, 1],
        "m_score": [2, 4, 2, 5, None, 1],
        "fm_score": [2, 5, 2, 5, None, 1],
        "engagement_score": [4, 0, 1, 0, 4, 0],
        "monetary_grade": ["C", "A", "C", "A", None, "C"],
        "frequency_grade": ["C", "A", "C", "A", None, "C"],
        "engagement_grade": ["A", "C", "C", "C", "A", "C"],
        # points: a 1+1+3 -> 5/3 -> B; b 3+3+1 -> B; c 1+1+1 -> C; d B; f C
        "overall_grade": ["B", "B", "C", "B", None, "C"],
        # a: first purchase 5 days ago; b: back after a 200-day gap; f: 100 days
        "lifecycle_stage": ["new", "reactivated", "active", "churned", "prospect", "at_risk"],
    },
    schema_overrides={c: pl.Int64 for c in ("r_score", "f_score", "m_score", "fm_score", "engagement_score")},
)


def test_customer_scores_give_scores_grades_and_stage_per_customer(engine) -> None:
    values = _values()
    engine.create("rfm_score_table", load_statement(SQL_DIR, "rfm_score_table", engine.name), values)
    engine.create(
        "grade_table", load_statement(SQL_DIR, "grade_table", engine.name, engagement_score=ENGAGEMENT), values
    )
    statement = load_statement(SQL_DIR, "customer_scores", engine.name, engagement_score=ENGAGEMENT)
    got = pl.from_arrow(engine.fetch(statement, values)).sort("customer_id")
    got = got.with_columns(pl.col(c).cast(pl.Int64) for c in ("r_score", "f_score", "m_score", "fm_score"))
    assert_frame_equal(got.select(EXPECTED_SCORES.columns), EXPECTED_SCORES)


def test_the_polars_models_agree_with_the_hand_worked_scores() -> None:
    frame = score_rfm(_features(), SETTINGS.rfm, D).frame
    frame = assign_lifecycle(grade_customers(frame, SETTINGS.grades), SETTINGS.lifecycle)
    assert_frame_equal(frame.select(EXPECTED_SCORES.columns).sort("customer_id"), EXPECTED_SCORES)


def test_cluster_assignment_takes_the_nearest_centroid_and_the_lowest_id_on_ties(engine) -> None:
    ln2 = math.log(2)
    engine.register(
        "cluster_scale",
        pa.table({f"{k}_{i}": [v] for i in (0, 1) for k, v in (("fill", 0.0), ("mean", 0.0), ("std", 1.0))}),
    )
    # two centers on the first axis: id 7 at 2·ln 2 (listed first), id 3 at 0
    engine.register(
        "cluster_centers", pa.table({"cluster_id": [7, 3], "center_0": [2 * ln2, 0.0], "center_1": [0.0, 0.0]})
    )
    statement = assignment_statement(engine.name, ['"monetary"', '"frequency"'])
    got = pl.from_arrow(engine.fetch(statement, {"all_customers": False})).sort("customer_id")
    # z = ln(1 + max(x, 0)): a 100 -> far right (7); b 300 (7); c 100 (7); d 500 (7);
    # f -20 clipped to 0, frequency 1 -> z = (0, ln 2): nearer 3. Non-buyer e is not in the population.
    assert got["customer_id"].to_list() == ["a", "b", "c", "d", "f"]
    assert got["cluster_id"].to_list() == [7, 7, 7, 7, 3]
    # a customer exactly between the centers: monetary 1 -> z_0 = ln 2, frequency 0 -> tie -> id 3
    engine.register(
        "features",
        _features()
        .with_columns(monetary=pl.lit(Decimal("1.00"), pl.Decimal(18, 2)), frequency=pl.lit(0, pl.Int64))
        .to_arrow(),
    )
    tied = pl.from_arrow(engine.fetch(statement, {"all_customers": True}))
    assert tied["cluster_id"].unique().to_list() == [3]
    assert tied.height == 6


def test_feature_statement_on_a_tiny_warehouse(tmp_path: Path, engine) -> None:
    con = make_warehouse(
        tmp_path / "wh.duckdb",
        orders=[
            order("o1", "A", "2026-11-01", "100.00", channel="online", category="x"),
            order("o2", "A", "2026-11-21", "50.00", channel="offline", category="y", ts="2026-11-21 23:59:59"),
            order("o3", "A", "2026-11-10", "30.00", status="refunded", category="x"),
            order("o4", "A", "2026-11-15", "999.00", status="cancelled"),
            order("o5", "B", "2025-05-01", "10.00", channel=None),
            order("o6", "B", "2026-11-22", "10.00", ts="2026-11-22 00:00:00"),  # after D: ignored
        ],
        browsing=[event("C", "s1", "2026-11-20", "add_to_cart", category="x", duration_s=30)],
    )
    got = features_on_engine(engine, export_sources(con, tmp_path / "staging"), D)
    con.close()
    rows = {r["customer_id"]: r for r in got.iter_rows(named=True)}
    assert sorted(rows) == ["A", "B", "C"]
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["frequency"], a["monetary"], a["gross_sales"], a["refund_amount"], a["aov"]) == (
        2,
        Decimal("120.00"),
        Decimal("150.00"),
        Decimal("30.00"),
        Decimal("60.00"),
    )
    assert (a["recency_days"], a["tenure_days"], a["cancelled_orders"], a["median_days_between_purchases"]) == (
        0,
        20,
        1,
        20.0,
    )
    assert (a["top_category"], a["preferred_channel"]) == ("x", "online")
    assert a["top_category_share"] == pytest.approx(70 / 120, abs=1e-12)
    assert a["online_share"] == pytest.approx(100 / 150, abs=1e-12)
    assert (b["frequency"], b["recency_days"], b["median_days_between_purchases"], b["online_share"]) == (
        1,
        (D - date(2025, 5, 1)).days,
        None,
        0.0,
    )
    assert (c["is_buyer"], c["frequency"], c["monetary"], c["recency_days"]) == (False, 0, Decimal("0.00"), None)
    assert (c["add_to_carts_30d"], c["time_online_s_30d"], c["top_browsed_category_90d"]) == (1, 30, "x")
