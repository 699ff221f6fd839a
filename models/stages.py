"""The snapshot stages over the warehouse: read what a stage needs, call the pure model, write its tables.

Each function takes the warehouse connection and the snapshot date D explicitly; the Dagster assets only
call one of these and turn the result into metadata. Every write is a delete-then-insert of snapshot D
(``segments.warehouse.replace_snapshot``), so re-running a stage gives the same tables.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from features.clv_summary import clv_summary
from features.customer_features import feature_params, read_features
from features.customer_history import previous_history
from features.group_summary import segment_summary_by_group
from features.predictions import attach_predictions
from features.segment_reports import previous_snapshot, segment_migrations, segment_summary
from models.clv import PredictionResult, prediction_columns, run_predictions
from models.overrides import load_overrides
from models.pipeline import SegmentationResult, segment_customers
from models.published_columns import finalize_customers
from models.registry import Registry, builtin_registry
from models.settings import PredictionSettings, load_segmentation_settings
from segments.warehouse import read_snapshot, replace_snapshot


class StageError(RuntimeError):
    """A stage cannot run; the message says which upstream to materialize first."""


def segmentation_stage(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    rules: Mapping[str, Any],
    *,
    overrides_file: Path | None = None,
    segment: Callable[..., SegmentationResult] | None = None,
) -> tuple[SegmentationResult, date | None]:
    """Segment snapshot ``as_of`` and write customer_segments, rfm_cut_points, cluster_profiles and centroids.

    ``rules`` is the ``segmentation:`` mapping (config + run overrides); window placeholders in it are
    rendered with the windows the features of ``as_of`` were built with. Cluster ids are matched to the
    latest earlier snapshot's centroids. Manual overrides (``overrides_file``) apply last, then the
    per-customer history columns; ``override_audit`` is written too. Returns the result (customers as
    published) and the date of the centroids it matched (None on the first snapshot). ``segment`` is the
    model call, ``segment_customers`` or the same on another engine (``engine: spark``,
    engines/pipeline.py), with the same arguments and result.
    """
    features = read_features(con, as_of)
    if features.is_empty():
        raise StageError(f"no customer_features for {as_of}: materialize customer_features first")
    rendered = load_segmentation_settings(rules, windows=feature_params(con, as_of).window_names())
    prev = previous_snapshot(con, as_of, "cluster_centroids")
    prev_centroids = read_snapshot(con, "cluster_centroids", prev) if prev else None
    segment = segment or segment_customers  # looked up per call, so the module attribute is the default
    result = segment(features, rendered, as_of, previous_centroids=prev_centroids)
    # Classification hook: manual overrides, then history (previous value, since when) from the last snapshot.
    prev_date, previous = previous_history(con, as_of, builtin_registry(rendered))
    customers, audit = finalize_customers(
        result.customers, load_overrides(overrides_file), previous, prev_date, rendered, as_of
    )
    result = dataclasses.replace(result, customers=customers, override_audit=audit)
    replace_snapshot(con, "customer_segments", result.customers, as_of)
    replace_snapshot(con, "override_audit", audit, as_of)
    replace_snapshot(con, "rfm_cut_points", result.cut_points, as_of)
    replace_snapshot(con, "cluster_profiles", result.cluster_profiles, as_of)
    if result.centroids is not None and not result.centroids.is_empty():
        replace_snapshot(con, "cluster_centroids", result.centroids, as_of)
    return result, prev


def summary_stage(con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry) -> pl.DataFrame:
    """Write and return segment_summary of ``as_of`` (every summarized segmentation of the registry)."""
    summary = segment_summary(con, as_of, registry)
    replace_snapshot(con, "segment_summary", summary, as_of)
    return summary


def group_summary_stage(
    con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry, group_by: tuple[str, ...]
) -> pl.DataFrame:
    """Write and return segment_summary_by_group of ``as_of`` (segment sizes within each region)."""
    summary = segment_summary_by_group(con, as_of, registry, group_by)
    replace_snapshot(con, "segment_summary_by_group", summary, as_of)
    return summary


def migrations_stage(con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry) -> pl.DataFrame:
    """Write and return segment_migrations of ``as_of`` against the latest earlier snapshot."""
    moves = segment_migrations(con, as_of, registry, previous_snapshot(con, as_of))
    replace_snapshot(con, "segment_migrations", moves, as_of)
    return moves


@dataclasses.dataclass(frozen=True)
class PredictionStage:
    """What the prediction stage wrote for one snapshot, and how long its parts took."""

    result: PredictionResult
    rows: int  # buyers predicted (rows of churn_predictions)
    summary_seconds: float
    model_seconds: float  # fit or reuse, score, calibrate


def prediction_stage(con: duckdb.DuckDBPyConnection, as_of: date, settings: PredictionSettings) -> PredictionStage:
    """Predict snapshot ``as_of``: write churn_predictions (and its customer_segments columns),
    model_calibration and prediction_parameters.

    The models are re-fitted or the parameters stored by the latest earlier snapshot are reused
    (models/clv_reuse.py); reusing them never imports pymc-marketing.
    """
    started = time.perf_counter()
    summary = clv_summary(con, as_of)
    holdout = clv_summary(con, as_of, settings.calibration.holdout_days) if settings.calibration.enabled else None
    prev = previous_snapshot(con, as_of, "prediction_parameters")
    stored = read_snapshot(con, "prediction_parameters", prev) if prev else None
    summary_s = time.perf_counter() - started
    result = run_predictions(summary, holdout, settings, as_of, stored)
    model_s = time.perf_counter() - started - summary_s
    rows = attach_predictions(con, as_of, result.predictions, prediction_columns(settings))
    replace_snapshot(con, "model_calibration", result.calibration, as_of)
    if result.parameters.height:
        replace_snapshot(con, "prediction_parameters", result.parameters, as_of)
    return PredictionStage(result, rows, summary_s, model_s)
