"""Parity: the sample data and a fixture of planted edge cases through both engines give the same snapshot.

DuckDB path: ``build_customer_features`` + ``models.pipeline.segment_customers`` (what ``engine: duckdb`` runs).
Spark path: the same feature statement rendered for Spark + the SQL forms of scores, grades, lifecycle,
segment-map lookups and nearest-centroid assignment on Spark (what ``engine: spark`` runs). Every column must
agree row for row: decimals, integers, dates and labels exactly, doubles within 1e-9. Then each engine's
customer_segments is published from a warehouse as its engine does (DuckDB: publishing's own writer; Spark:
a Spark job writing through the same atomic publish), and the published files must have the same Arrow
schema, contract metadata included, and the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_SOURCES, project_config
from polars.testing import assert_frame_equal

from engines.pipeline import export_sources, features_on_engine, segment_features
from engines.spark_publish import spark_parquet_table, stage_snapshot_table
from features.customer_features import build_customer_features, read_features
from ingestion.loader import ensure_schema, ingest_source
from models.pipeline import SegmentationResult, segment_customers
from models.published_columns import finalize_customers, published_contracts
from models.settings import load_segmentation_settings
from publishing.atomic import current_set, history_path, publish
from publishing.outputs import snapshot_tables
from segments.config import settings_from_dict
from segments.sample_data import generate
from segments.warehouse import replace_snapshot

try:
    from tests.conftest_features_helpers import customer, event, feedback_row, insert_rows, order
    from tests.spark_helpers import make_engine, start_spark_in_background
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest_features_helpers import customer, event, feedback_row, insert_rows, order
    from spark_helpers import make_engine, start_spark_in_background

D = date(2026, 11, 21)
# Another corner of the settings: fixed RFM thresholds, quantile grades, everyone clustered, two bases,
# and a user classification and tags using the operators the shipped rules do not (arithmetic, division,
# decimal and date literals, not in, not between, is null, age).
VARIANT = {
    "rfm": {"method": "fixed"},
    "grades": {"method": "quantile", "overall_bases": ["monetary", "engagement"]},
    "lifecycle": {"new_days": 14, "active_days": 60, "churn_days": 120},
    "clusters": {"population": "all", "k": 4},
    "classifications": {
        "spend_band": {
            "title": {"en": "Spend band", "zh": "消费档"},
            "labels": {k: {"en": k, "zh": k} for k in ("big", "mid", "small")},
            "rules": [
                {"label": "big", "when": "monetary >= 1000.00 and frequency >= 3 and cluster_id is not null"},
                {"label": "mid", "when": "monetary / frequency between 50 and 999.99 or overall_grade = 'B'"},
            ],
            "default": "small",
        }
    },
    "tags": {
        name: {"title": {"en": name, "zh": name}, "when": when}
        for name, when in (
            ("recent_rated", "last_purchase_date >= date '2026-10-01' and avg_rating is not null"),
            ("young_or_unknown", "age < 35 or birth_year is null"),
            ("odd_spend", "-monetary + frequency * 2 < -100.5 and lifecycle_stage not in ('new', 'churned')"),
            ("not_mid", "not spend_band = 'mid' and value_tier <> 'general' and recency_days not between 0 and 30"),
        )
    },
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


def _add_edge_cases(path: Path) -> None:
    """Planted edge cases added to the sample warehouse (ids of their own): quintile ties, NULLs, refunds past
    the sale, midnight and time-zone boundaries, window edges, one-order customers, prospects known only from
    browsing, feedback or a record."""
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
    con = duckdb.connect(str(path))
    for table, rows in (("orders", orders), ("browsing", browsing), ("feedback", feedback), ("customers", customers)):
        insert_rows(con, table, rows)
    con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One warehouse holding the sample data and the planted edge cases, so each engine runs once per settings."""
    # the JVM and its Python worker (the published-file writer) start while DuckDB ingests and runs the reference
    start_spark_in_background(python_workers=True)
    path = _sample_warehouse(tmp_path_factory.mktemp("parity"))
    _add_edge_cases(path)
    return path


@dataclass(frozen=True)
class Runs:
    """One engine's features and its segmentation under the default and the variant settings."""

    features: pl.DataFrame
    default: SegmentationResult
    variant: SegmentationResult


@pytest.fixture(scope="module")
def duckdb_runs(warehouse: Path) -> Runs:
    """The reference: what ``engine: duckdb`` runs (the variant matches ids to the default's centroids)."""
    con = duckdb.connect(str(warehouse))
    con.execute("set TimeZone = 'UTC'")
    build_customer_features(con, D)
    features = read_features(con, D)
    con.close()
    default = segment_customers(features, load_segmentation_settings({}), D)
    variant = segment_customers(features, load_segmentation_settings(VARIANT), D, previous_centroids=default.centroids)
    return Runs(features, default, variant)


@pytest.fixture(scope="module")
def spark_runs(warehouse: Path, duckdb_runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """What ``engine: spark`` runs: features and segmentation (classifications and tags included) on Spark."""
    spark = make_engine("spark")
    con = duckdb.connect(str(warehouse), read_only=True)
    sources = export_sources(con, tmp_path_factory.mktemp("staging"))
    con.close()
    features = features_on_engine(spark, sources, D)
    default = segment_features(spark, features, load_segmentation_settings({}), D, registered=True)
    variant = segment_features(
        spark, features, load_segmentation_settings(VARIANT), D, duckdb_runs.default.centroids, registered=True
    )
    return Runs(features, default, variant)


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


def _rule_columns(settings: dict) -> list[str]:
    rules = load_segmentation_settings(settings)
    names = list(rules.active_classifications())
    return [*names, *(f"{n}_name" for n in names), *(f"tag_{t}" for t in rules.active_tags()), "tags"]


def _assert_features_equal(want: pl.DataFrame, got: pl.DataFrame) -> None:
    assert_frame_equal(got, want, check_exact=False, abs_tol=1e-9, rel_tol=0)
    ids = set(want["customer_id"])
    assert {"tie00", "mid", "refund", "gap", "one_today", "browse_only", "record_only"} <= ids  # edge cases in
    assert len(ids) > 150  # and the sample's customers


def _assert_rules_agree(want: SegmentationResult, got: SegmentationResult, settings: dict) -> None:
    """Classifications and tags are evaluated on Spark (engines/rules.py), and give DuckDB's labels."""
    columns = _rule_columns(settings)
    assert_frame_equal(got.customers.select("customer_id", *columns), want.customers.select("customer_id", *columns))
    # the comparison proves something only when the labels tell customers apart
    labels = [c for c in columns if c != "tags" and not c.endswith("_name") and not c.startswith("tag_")]
    assert all(want.customers[c].n_unique() >= 2 for c in labels), labels
    assert want.customers["tags"].list.len().sum() > 0 and want.customers["tags"].explode().n_unique() >= 3


def test_both_engines_give_the_same_snapshot(duckdb_runs: Runs, spark_runs: Runs, tmp_path: Path) -> None:
    """Features, then every published column under the default and the variant settings, classifications and
    tags included, then the published customer_segments files. One test, not several: should the tests of one
    module run on both workers (``pytest -n 2 --dist worksteal``, say), each would pay for its own DuckDB
    reference and Spark runs."""
    _assert_features_equal(duckdb_runs.features, spark_runs.features)
    for name, settings in (("default", {}), ("variant", VARIANT)):
        want, got = getattr(duckdb_runs, name), getattr(spark_runs, name)
        _assert_same(want, got)
        _assert_rules_agree(want, got, settings)
    assert duckdb_runs.default.customers["cluster_id"].drop_nulls().n_unique() >= 2  # clustering really happened
    _assert_published_files_equal(duckdb_runs, spark_runs, tmp_path)


def _publish_customers(result: SegmentationResult, engine: str, root: Path) -> dict[str, Path]:
    """customer_segments of ``result`` finalized and stored as the segmentation stage does, then published as
    ``engine: <engine>`` publishes it; returns the history file and the current set's file."""
    settings = load_segmentation_settings({})
    contracts = published_contracts(settings)
    customers, _ = finalize_customers(result.customers, [], None, None, settings, D)
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    replace_snapshot(con, "customer_segments", customers, D)
    if engine == "duckdb":
        tables = snapshot_tables(con, D, ["customer_segments"], contracts=contracts)
    else:
        staged = stage_snapshot_table(con, contracts["customer_segments"], D, root / "staging" / "cs.parquet")
        key = contracts["customer_segments"].primary_key
        tables = {"customer_segments": spark_parquet_table(make_engine("spark"), staged, key)}
    con.close()
    publish(root / "published", tables, snapshot_date=D, contracts=contracts)
    snap = current_set(root / "published")
    assert snap is not None
    return {
        "history": history_path(root / "published", "customer_segments", D),
        "current": snap.folder / "customer_segments.parquet",
    }


def _assert_published_files_equal(duckdb_runs: Runs, spark_runs: Runs, tmp_path: Path) -> None:
    """The files BI tools read: same Arrow schema (names, order, types, contract descriptions) and rows."""
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "spark").mkdir()
    want = _publish_customers(duckdb_runs.default, "duckdb", tmp_path / "duckdb")
    got = _publish_customers(spark_runs.default, "spark", tmp_path / "spark")
    for kind in ("history", "current"):
        assert pq.read_schema(got[kind]).equals(pq.read_schema(want[kind]), check_metadata=True), kind
        a, b = pl.read_parquet(want[kind]), pl.read_parquet(got[kind])
        assert a.height > 150 and a["customer_id"].is_sorted()
        assert_frame_equal(b, a, check_exact=False, abs_tol=1e-9, rel_tol=0)
