"""Benchmark: one snapshot's heavy stages on DuckDB and on Spark local[2], per stage, same data, same results.

Sample data (``segments.sample_data.generate``) is ingested once into a DuckDB warehouse in a temp folder;
then each engine builds the features and segments them. The two results are compared (they must be equal).
Then customer_segments is published from the warehouse by each engine's writer (DuckDB: publishing's
pyarrow writer on the driver; Spark: staged by DuckDB, written by a Spark job) and the files are compared.

    .venv/bin/python bench/spark_bench.py --customers 100000 [--shuffle-partitions 4] [--skip-warm]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from engines.pipeline import export_sources, features_on_engine, segment_features
from engines.spark import SparkEngine, SparkSettings, spark_session
from engines.spark_publish import spark_parquet_table, stage_snapshot_table
from features.customer_features import build_customer_features, read_features
from ingestion.loader import ensure_schema, ingest_source
from models.pipeline import segment_customers
from models.published_columns import finalize_customers, published_contracts
from models.settings import load_segmentation_settings
from publishing.atomic import current_set, publish
from publishing.outputs import snapshot_tables
from segments.config import settings_from_dict
from segments.sample_data import generate
from segments.warehouse import replace_snapshot

D = date(2026, 11, 21)
SOURCES = {
    "orders": {"glob": "orders/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
    "browsing": {"glob": "browsing/*"},
    "feedback": {"glob": "feedback/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
    "customers": {"glob": "customers/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
}


def _timed(times: dict[str, float], name: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    times[name] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--skip-warm", action="store_true", help="skip the second (warm-session) Spark runs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spark_bench_"))
    try:
        prep: dict[str, float] = {}
        counts = _timed(prep, "generate", generate, root / "landing", customers=args.customers, end_date=D)
        raw = {"landing_dir": "landing", "warehouse": "wh.duckdb", "published_dir": "pub", "time_zone": "Asia/Shanghai"}
        settings = settings_from_dict({**raw, "sources": SOURCES}, base_dir=root)
        con = duckdb.connect(str(settings.warehouse))
        con.execute("set TimeZone = 'UTC'")
        ensure_schema(con)
        start = time.perf_counter()
        for source in SOURCES:
            ingest_source(con, settings, source, run_id="bench", run_ts=datetime(2026, 11, 22, tzinfo=UTC))
        prep["ingest (DuckDB)"] = time.perf_counter() - start
        seg_settings = load_segmentation_settings({})

        duck: dict[str, float] = {}
        _timed(duck, "features", build_customer_features, con, D)
        features = read_features(con, D)
        want = _timed(duck, "segmentation", segment_customers, features, seg_settings, D)

        spark: dict[str, float] = {}
        session = _timed(
            spark, "session start", spark_session, SparkSettings(shuffle_partitions=args.shuffle_partitions)
        )
        engine = SparkEngine(session)
        sources = _timed(spark, "export to Parquet", export_sources, con, root / "staging")
        got_features = _timed(spark, "features", features_on_engine, engine, sources, D)
        got = _timed(spark, "segmentation", segment_features, engine, got_features, seg_settings, D, registered=True)
        if not args.skip_warm:
            _timed(spark, "features (warm)", features_on_engine, engine, sources, D)
            _timed(
                spark, "segmentation (warm)", segment_features, engine, got_features, seg_settings, D, registered=True
            )
        customers, _ = finalize_customers(want.customers, [], None, None, seg_settings, D)
        replace_snapshot(con, "customer_segments", customers, D)
        contracts = published_contracts(seg_settings)
        contract = contracts["customer_segments"]

        def duckdb_publish() -> None:
            tables = snapshot_tables(con, D, ["customer_segments"], contracts=contracts)
            publish(root / "pub_duckdb", tables, snapshot_date=D, contracts=contracts)

        def spark_publish() -> None:
            staged = stage_snapshot_table(con, contract, D, root / "staging" / "customer_segments.parquet")
            table = spark_parquet_table(engine, staged, contract.primary_key)
            publish(root / "pub_spark", {"customer_segments": table}, snapshot_date=D, contracts=contracts)

        _timed(duck, "publish customer_segments", duckdb_publish)
        _timed(spark, "publish customer_segments", spark_publish)
        con.close()
        files = [current_set(root / f"pub_{e}").folder / "customer_segments.parquet" for e in ("duckdb", "spark")]
        assert pq.read_schema(files[1]).equals(pq.read_schema(files[0]), check_metadata=True)
        assert pq.read_table(files[1]).equals(pq.read_table(files[0]))

        assert_frame_equal(got_features, features, check_exact=False, abs_tol=1e-9, rel_tol=0)
        assert_frame_equal(got.customers, want.customers, check_exact=False, abs_tol=1e-9, rel_tol=0)
        print(f"customers={features.height} order_lines={counts['orders_lines']} events={counts['browsing_events']}")
        print("prep: " + ", ".join(f"{k} {v:.1f}s" for k, v in prep.items()))
        print("| stage | DuckDB (s) | Spark local[2] (s) |\n|---|---|---|")
        for stage in (
            "session start",
            "export to Parquet",
            "features",
            "segmentation",
            "features (warm)",
            "segmentation (warm)",
            "publish customer_segments",
        ):
            print(f"| {stage} | {duck.get(stage, float('nan')):.1f} | {spark.get(stage, float('nan')):.1f} |")
        print("results identical: yes (features, segmentation, published customer_segments files)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
