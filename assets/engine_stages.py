"""The two heavy stages on the configured engine (``engine: duckdb | spark`` in segments.yaml).

Both engines write the same warehouse table and return the same ``SegmentationResult``
(tests/test_spark_parity.py), so the assets and everything downstream are engine-blind.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from assets.resources import SegmentsResource, SparkResource
from engines.pipeline import build_features_on_engine, segment_warehouse_features
from features.customer_features import FeatureParams, build_customer_features
from models.pipeline import SegmentationResult, segment_customers
from models.settings import SegmentationSettings


def build_features(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, segments: SegmentsResource, spark: SparkResource
) -> int:
    """Rebuild snapshot ``as_of`` of ``customer_features``; returns rows written."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return build_customer_features(con, as_of, params)
    engine = spark.engine()
    try:
        return build_features_on_engine(engine, con, as_of, params, spark.staging(settings, f"{as_of}/features"))
    finally:
        engine.close()


def segment(
    features: pl.DataFrame,
    seg_settings: SegmentationSettings,
    previous_centroids: pl.DataFrame | None,
    segments: SegmentsResource,
    spark: SparkResource,
) -> SegmentationResult:
    """Segment one snapshot of features."""
    settings = segments.settings()
    if settings.engine == "duckdb":
        return segment_customers(features, seg_settings, previous_centroids=previous_centroids)
    as_of = features["snapshot_date"][0]
    engine = spark.engine()
    try:
        staging = spark.staging(settings, f"{as_of}/segmentation")
        return segment_warehouse_features(engine, features, seg_settings, previous_centroids, staging)
    finally:
        engine.close()
