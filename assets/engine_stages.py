"""The heavy stages on the configured engine (``engine: duckdb | spark`` in segments.yaml).

Both engines write the same warehouse tables and return the same ``SegmentationResult``
(tests/test_spark_parity.py), so the assets and everything downstream are engine-blind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import Any

import duckdb

from assets.resources import SegmentsResource, SparkResource
from data_contracts.contracts import Contract
from engines.pipeline import build_features_on_engine, segment_warehouse_features
from engines.spark_landing import SparkLanding
from engines.spark_publish import SPARK_WRITTEN, spark_parquet_table, stage_snapshot_table
from engines.spark_stager import SparkStager
from features.customer_features import FeatureParams
from features.incremental import FeatureBuild
from features.incremental import build_features as build_features_incrementally
from models.pipeline import SegmentationResult
from models.stages import segmentation_stage
from publishing.deferred import DeferredTable


def ingestion_stager(source: str, segments: SegmentsResource, spark: SparkResource) -> SparkStager | None:
    """Where a source's row rules run: None on DuckDB; on Spark a stager that takes its Parquet and plain CSV
    files (gzip CSV, JSON Lines and CSV files with an irregular line stay on DuckDB's readers)."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return None
    return SparkStager(lambda: spark.engine().session, spark.staging(settings, f"ingest/{source}"))


def ingestion_landing(source: str, segments: SegmentsResource, spark: SparkResource) -> SparkLanding | None:
    """Where a source's files are read from: None for ``landing_dir``; for ``landing_url`` Spark's file systems.
    The files DuckDB reads are copied beside the warehouse (the driver's disk), not to the shared ``staging_dir``."""
    settings = segments.settings()
    if settings.landing_url is None:
        return None
    copies = settings.warehouse.parent / "spark_staging" / "landing" / source
    return SparkLanding(settings, lambda: spark.engine().session, copies)


def build_features(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, segments: SegmentsResource, spark: SparkResource
) -> FeatureBuild:
    """Build snapshot ``as_of`` of ``customer_features``: on DuckDB incrementally from an earlier snapshot
    when one is usable (features/incremental.py), on Spark in full."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return build_features_incrementally(con, as_of, params)
    engine = spark.engine()
    try:
        rows = build_features_on_engine(engine, con, as_of, params, spark.staging(settings, f"{as_of}/features"))
    finally:
        engine.close()
    return FeatureBuild(rows, "full", "engine: spark builds every snapshot in full")


def segmentation(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    rules: Mapping[str, Any],
    segments: SegmentsResource,
    spark: SparkResource,
) -> tuple[SegmentationResult, date | None]:
    """``models.stages.segmentation_stage`` with the model call on the configured engine."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return segmentation_stage(con, as_of, rules, overrides_file=settings.overrides_file)
    engine = spark.engine()
    try:
        staging = spark.staging(settings, f"{as_of}/segmentation")
        return segmentation_stage(
            con,
            as_of,
            rules,
            overrides_file=settings.overrides_file,
            segment=partial(segment_warehouse_features, engine, staging),
        )
    finally:
        engine.close()


def engine_written_tables(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    contracts: Mapping[str, Contract],
    segments: SegmentsResource,
    spark: SparkResource,
) -> dict[str, DeferredTable]:
    """The published tables the engine writes itself (none on DuckDB; ``customer_segments`` on Spark): each is
    staged from the warehouse as Parquet (streamed) and written by a Spark job when ``publish`` asks for it."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return {}
    engine = spark.engine()
    staging = spark.staging(settings, f"{as_of}/publish")
    out: dict[str, DeferredTable] = {}
    for name in SPARK_WRITTEN:
        staged = stage_snapshot_table(con, contracts[name], as_of, staging / f"{name}.parquet")
        out[name] = spark_parquet_table(engine, staged, contracts[name].primary_key)
    return out
