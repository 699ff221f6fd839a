"""Parity: the sample data and a fixture of planted edge cases through both engines give the same snapshot.

DuckDB path: ``build_customer_features`` + ``models.pipeline.segment_customers`` (what ``engine: duckdb`` runs).
Spark path: the same feature statement rendered for Spark + the SQL forms of scores, grades, lifecycle and
nearest-centroid assignment on Spark (what ``engine: spark`` runs). Every column must agree row for row:
decimals, integers, dates and labels exactly, doubles within 1e-9.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import SAMPLE_SOURCES, project_config
from polars.testing import assert_frame_equal

from engines.pipeline import export_sources, features_on_engine, segment_features
from features.customer_features import build_customer_features, read_features
from ingestion.loader import ensure_schema, ingest_source
from models.pipeline import SegmentationResult, segment_customers
from models.settings import load_segmentation_settings
from segments.config import settings_from_dict
from segments.sample_data import generate

try:
    from tests.conftest_features_helpers import customer, event, feedback_row, make_warehouse, order
    from tests.spark_helpers import make_engine
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest_features_helpers import customer, event, feedback_row, make_warehouse, order
    from spark_helpers import make_engine

D = date(2026, 11, 21)
# Another corner of the settings: fixed RFM thresholds, quantile grades, everyone clustered, two bases.
VARIANT = {
    "rfm": {"method": "fixed"},
    "grades": {"method": "quantile", "overall_bases": ["monetary", "engagement"]},
    "lifecycle": {"new_days": 14, "active_days": 60, "churn_days": 120},
    "clusters": {"population": "all", "k": 4},
}


def _sample_warehouse(root: Path) -> Path:
    """Sample data (with its planted defects) ingested as the pipeline does, time zone Asia/Shanghai."""
    generate(root / "landing", customers=150, days=400, end_date=D, seed=11, defects=True, daily_days=7)
    settings = settings_from_dict(project_config(warehouse="wh.duckdb", published_dir="pub"), base_dir=root)
    con = duckdb.connect(str(settings.warehouse))
    con.execute("set TimeZone = 'UTC'")
    ensure_schema(con)
    for source in SAMPLE_SOURCES:
        ingest_source(con, settings, source, run_id="parity", run_ts=datetime(2026, 11, 22, tzinfo=UTC))
    con.close()
    return settings.warehouse


def _edge_warehouse(root: Path) -> Path:
    """Planted edge cases: quintile ties, NULLs, refunds past the sale, midnight and time-zone boundaries,
    window edges, one-order customers, prospects known only from browsing, feedback or a record."""
    orders = []
    for i, amount in enumerate(
        ["10.00", "10.00", "20.00", "20.00", "30.00", "30.00", "40.00", "40.00", "50.00", "50.00"]
    ):
        orders.append(order(f"t{i}", f"tie{i:02d}", f"2026-{9 + i % 3:02d}-0{1 + i % 2}", amount, category="toys"))
    orders += [
        # local date D at Shanghai midnight (16:00 UTC the day before) and at the last second of D
        order("m1", "mid", "2026-11-21", "99.99", ts="2026-11-20 16:00:00", category=None, channel=None),
        order("m2", "mid", "2026-11-21", "0.01", ts="2026-11-21 15:59:59", line_id=2),
        order("m3", "mid", "2026-10-22", "5.00", ts="2026-10-21 16:00:00"),  # exactly D - 30: outside 30d
        # refund larger than the sale, cancelled line, second line of a refunded order
        order("r1", "refund", "2026-08-01", "100.00", category="shoes"),
        order("r1", "refund", "2026-08-03", "150.00", status="refunded", category="shoes", line_id=2),
        order("r2", "refund", "2026-08-24", "70.00", status="cancelled"),
        # long gap then a return within 90 days (reactivated), exactly D - 90 (outside 90d)
        order("g1", "gap", "2025-01-05", "300.00", channel="app"),
        order("g2", "gap", "2026-11-01", "300.00", channel="app"),
        order("g3", "gap", "2026-08-23", "1.00", channel="offline"),
        # one-order customers, one of them on D itself, one long ago
        order("s1", "one_today", "2026-11-21", "12.34"),
        order("s2", "one_old", "2024-12-31", "12.34", channel="offline"),
        order("f1", "future", "2026-11-22", "5.00"),  # after D only: unknown yet
        # home store: a tie between two stores (smaller id wins), a store made net-negative by a refund
        order("h1", "stores", "2026-10-01", "25.00", channel="offline", store_id="S2"),
        order("h2", "stores", "2026-10-02", "25.00", channel="offline", store_id="S1"),
        order("h3", "stores", "2026-10-03", "40.00", channel="offline", store_id="S3"),
        order("h3", "stores", "2026-10-04", "45.00", status="refunded", channel="offline", store_id="S3", line_id=2),
    ]
    browsing = [
        event("browse_only", "b1", "2026-11-20", "product_view", category="toys", duration_s=None),
        event("browse_only", "b1", "2026-11-20", "add_to_cart", category="toys", duration_s=40),
        event(None, "anon", "2026-11-20", "page_view"),
        event("mid", "b2", "2026-09-01", "add_to_cart", category="books", duration_s=5),
    ]
    feedback = [
        feedback_row("fb1", "fb_only", "2026-11-01", "survey", rating=None, nps=None),
        feedback_row("fb2", "gap", "2026-11-02", "complaint", rating=1, nps=3),
    ]
    customers = [customer("record_only", "2026-01-01", region="east"), customer("late", "2026-11-25")]
    path = root / "edge.duckdb"
    make_warehouse(path, orders=orders, browsing=browsing, feedback=feedback, customers=customers).close()
    return path


@pytest.fixture(scope="module", params=["sample", "edge"])
def warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(request.param)
    return _sample_warehouse(root) if request.param == "sample" else _edge_warehouse(root)


def _duckdb_path(
    path: Path, overrides: dict, previous: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, SegmentationResult]:
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    build_customer_features(con, D)
    features = read_features(con, D)
    con.close()
    return features, segment_customers(features, load_segmentation_settings(overrides), D, previous_centroids=previous)


def _assert_same(want: SegmentationResult, got: SegmentationResult) -> None:
    for name in ("customers", "cut_points", "cluster_profiles", "centroids"):
        a, b = getattr(want, name), getattr(got, name)
        assert a.schema == b.schema, name
        assert_frame_equal(a, b, check_exact=False, abs_tol=1e-9, rel_tol=0)
    for column in (
        "rfm_segment",
        "value_class",
        "overall_grade",
        "lifecycle_stage",
        "value_tier",
        "cluster_id",
        "home_store",
    ):
        assert want.customers[column].equals(got.customers[column]), column


def test_both_engines_give_the_same_snapshot(warehouse: Path, tmp_path: Path) -> None:
    want_features, want = _duckdb_path(warehouse, {})
    spark = make_engine("spark")
    con = duckdb.connect(str(warehouse), read_only=True)
    sources = export_sources(con, tmp_path / "staging")
    con.close()
    got_features = features_on_engine(spark, sources, D)
    assert_frame_equal(got_features, want_features, check_exact=False, abs_tol=1e-9, rel_tol=0)
    got = segment_features(spark, got_features, load_segmentation_settings({}), D, registered=True)
    _assert_same(want, got)
    assert want.customers["cluster_id"].drop_nulls().n_unique() >= 2  # clustering really happened

    # other methods and windows, and ids matched to the previous snapshot's centroids
    _, want_variant = _duckdb_path(warehouse, VARIANT, previous=want.centroids)
    got_variant = segment_features(
        spark, got_features, load_segmentation_settings(VARIANT), D, want.centroids, registered=True
    )
    _assert_same(want_variant, got_variant)
