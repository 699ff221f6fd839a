"""The heavy stages of one snapshot on a SQL engine, reading the warehouse: features, then segmentation.

The warehouse tables are handed to the engine as Parquet files (written by DuckDB, streamed, never through
Python rows), so Spark reads them where it runs; ``staging_dir`` must be a path every Spark executor can
read (a shared or object-store path on a cluster; any local folder with ``local[N]``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from engines.engine import SqlEngine, arrow_schema
from engines.segmentation import segment_on_engine
from engines.sql import load_statement
from features.customer_features import (
    OPTIONAL_SOURCES,
    SQL_DIR,
    FeatureParams,
    _parameters,
    _record_params,
    output_columns,
)
from models.pipeline import SegmentationResult
from models.settings import SegmentationSettings
from segments.warehouse import replace_snapshot, table_exists

SOURCES = ("orders", "browsing", "feedback", "customers")


def export_sources(con: duckdb.DuckDBPyConnection, staging_dir: Path) -> dict[str, Path]:
    """Write each warehouse source table to ``staging_dir/<source>.parquet`` (an absent optional source
    as an empty file with the ingestion schema); returns the paths."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in SOURCES:
        path = staging_dir / f"{name}.parquet"
        if table_exists(con, name):
            con.table(name).write_parquet(str(path))
        elif name in OPTIONAL_SOURCES:
            import pyarrow.parquet as pq

            pq.write_table(arrow_schema(OPTIONAL_SOURCES[name]).empty_table(), path)
        else:
            raise ValueError("table 'orders' not found in the warehouse: ingest the orders source first")
        paths[name] = path
    return paths


def typed_frame(table: pa.Table, columns: list[tuple[str, str]]) -> pl.DataFrame:
    """An engine's result with exactly the warehouse column types (engines differ in integer widths and
    decimal precisions of intermediate results, never in values)."""
    return pl.from_arrow(table.select([n for n, _ in columns]).cast(arrow_schema(columns)))


def features_on_engine(
    engine: SqlEngine, sources: dict[str, Path], as_of: date, params: FeatureParams | None = None
) -> pl.DataFrame:
    """Run customer_features.sql on ``engine`` over the exported sources; leaves the ``features`` view on the
    engine and returns its rows typed as the warehouse table ``customer_features``."""
    params = params or FeatureParams()
    for name, path in sources.items():
        engine.register_parquet(name, path)
    columns = output_columns(params)
    statement = load_statement(SQL_DIR, "customer_features", engine.name)
    engine.create("features", statement, _parameters(as_of, params), columns=[n for n, _ in columns])
    return typed_frame(engine.fetch_view("features"), columns).sort("customer_id")


def segment_features(
    engine: SqlEngine,
    features: pl.DataFrame,
    settings: SegmentationSettings,
    as_of: date,
    previous_centroids: pl.DataFrame | None = None,
    *,
    registered: bool = False,
) -> SegmentationResult:
    """Segment snapshot ``as_of`` of features on ``engine`` (registering them as ``features`` unless the engine
    already holds them from :func:`features_on_engine`)."""
    if not registered:
        engine.register("features", features.to_arrow())
    return segment_on_engine(engine, features, settings, as_of, previous_centroids)


def build_features_on_engine(
    engine: SqlEngine, con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, staging_dir: Path
) -> int:
    """``engine: spark`` form of ``build_customer_features``: the feature statement runs on ``engine`` over
    the warehouse sources exported to ``staging_dir``; the rows replace snapshot ``as_of`` of the warehouse
    table ``customer_features`` (one transaction), so every later stage reads the same table. Returns rows."""
    frame = features_on_engine(engine, export_sources(con, staging_dir / "sources"), as_of, params)
    con.execute("begin transaction")
    try:
        _record_params(con, as_of, params)  # which windows this snapshot's columns are named after
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return replace_snapshot(con, "customer_features", frame, as_of)


def segment_warehouse_features(
    engine: SqlEngine,
    staging_dir: Path,
    features: pl.DataFrame,
    settings: SegmentationSettings,
    as_of: date,
    previous_centroids: pl.DataFrame | None = None,
) -> SegmentationResult:
    """``engine: spark`` form of ``segment_customers`` for one snapshot of the warehouse feature table:
    the rows go to the engine as Parquet in ``staging_dir`` and are segmented there."""
    path = staging_dir / "customer_features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    features.write_parquet(path)
    engine.register_parquet("features", path)
    return segment_on_engine(engine, features, settings, as_of, previous_centroids)
