"""Segment one snapshot with SQL on any engine: the same ``SegmentationResult`` ``models.pipeline`` gives.

What runs as SQL on the engine (distributed on Spark): the distinct-value RFM score table, the distinct-value
grade table, every customer's scores, grades and lifecycle stage (``sql/customer_scores.sql``), the
segment-map lookups as joins against each map's cell table (``engines/segment_maps.py``), the
nearest-centroid cluster assignment, and the classifications and tags (value tier included; the rule
compiler's select in the engine's dialect, ``engines/rules.py``). What runs on the driver: choosing the
clustering sample and fitting KMeans on it (``models.clusters``), the value map's high/low bounds (a mean
or median per axis), cluster profiles and cut points, all on the collected per-customer rows. The rules
themselves live in ``models/``; the SQL forms are parity-tested against them
(tests/test_spark_statements.py, tests/test_spark_segment_maps.py, tests/test_spark_parity.py).
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from engines.engine import SqlEngine
from engines.rules import evaluate_rules_on_engine
from engines.segment_maps import SCORES_VIEW, assign_rfm_segments_on_engine
from engines.sql import Statement, load_statement
from models.clusters import ClusterResult, _profiles, cluster_customers, stable_hash
from models.grades import bases_with_data, basis_inputs, engagement_score_expr, missing_bases_warning
from models.pipeline import (
    SegmentationResult,
    _check_snapshot_date,
    check_features,
    classify_and_order,
    run_params,
)
from models.rfm import _cut_points_frame, _unit, fixed_bounds, fixed_cut_rows, quantile_cut_rows
from models.settings import SegmentationSettings

SQL_DIR = Path(__file__).resolve().parent / "sql"
_METRICS = (("recency_days", "r", True), ("frequency", "f", False), ("monetary", "m", False))
_INTEGER_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def _quote(column: str, features: pl.DataFrame, key: str) -> str:
    """A feature column as a quoted identifier; only names of the features frame are accepted."""
    if column not in features.columns:
        raise ValueError(f"{key}: column {column!r} is not a feature column; known: {features.columns}")
    return '"' + column.replace('"', "") + '"'


def _engagement_sql(features: pl.DataFrame, settings: SegmentationSettings) -> str:
    key = "segmentation.grades.engagement_columns"
    for column in settings.grades.engagement_columns:
        _quote(column, features, key)
        if features.schema[column] not in _INTEGER_TYPES:
            raise ValueError(f"{key}: {column!r} is {features.schema[column]}; the SQL engines grade integer counts")
    return " + ".join(f"coalesce({_quote(c, features, key)}, 0)" for c in settings.grades.engagement_columns)


def _score_values(settings: SegmentationSettings) -> dict[str, object]:
    fixed = settings.rfm.fixed
    values: dict[str, object] = {"fixed": settings.rfm.method == "fixed"}
    for metric, prefix, _ in _METRICS:
        for i, bound in enumerate(getattr(fixed, metric), start=1):
            values[f"{prefix}_{i}"] = bound
    return values


def _grade_values(
    settings: SegmentationSettings, with_data: tuple[str, ...] | list[str] = ("monetary", "frequency", "engagement")
) -> dict[str, object]:
    """Parameters of the grade and lifecycle statements; bases not in ``with_data`` leave the overall grade."""
    grades = settings.grades
    a, b = Fraction(str(grades.cutoffs.a)), Fraction(str(grades.cutoffs.b))
    lifecycle = settings.lifecycle
    return {
        "pareto": grades.method == "pareto",
        "a_num": a.numerator,
        "a_den": a.denominator,
        "b_num": b.numerator,
        "b_den": b.denominator,
        "overall_monetary": "monetary" in grades.overall_bases and "monetary" in with_data,
        "overall_frequency": "frequency" in grades.overall_bases and "frequency" in with_data,
        "overall_engagement": "engagement" in grades.overall_bases and "engagement" in with_data,
        "new_days": lifecycle.new_days,
        "active_days": lifecycle.active_days,
        "churn_days": lifecycle.churn_days,
    }


def _cut_points(
    table: pl.DataFrame, features: pl.DataFrame, settings: SegmentationSettings, snapshot: date | None
) -> tuple[pl.DataFrame, list[str]]:
    """rfm_cut_points from the distinct-value score table (small; on the driver), plus warnings."""
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    for metric, _, lower_is_better in _METRICS:
        part = table.filter(pl.col("metric") == metric)
        if settings.rfm.method == "quantile":
            cut_rows, note = quantile_cut_rows(metric, part.select("value", "score", "customers"))
            rows += cut_rows
            warnings += [note] if note else []
        else:
            counts = dict(part.group_by("score").agg(pl.col("customers").sum()).iter_rows())
            thresholds = getattr(settings.rfm.fixed, metric)
            bounds = fixed_bounds(thresholds, lower_is_better=lower_is_better, unit=_unit(features.schema[metric]))
            rows += fixed_cut_rows(metric, bounds, counts)
    if features.filter(pl.col("is_buyer").fill_null(False)).is_empty():
        warnings.insert(0, "rfm: no buyers in this snapshot; every RFM score is null")
    return _cut_points_frame(rows, snapshot, settings.rfm.method), warnings


def _cluster_tables(result: ClusterResult, n_features: int) -> tuple[pa.Table, pa.Table]:
    """The fitted centroids as data: one scale row (fill, mean, std per feature) and one row per center."""
    long = result.centroids.sort("cluster_id")
    ids = long["cluster_id"].unique().sort().to_list()
    first = long.filter(pl.col("cluster_id") == ids[0])
    scale: dict[str, list[float]] = {}
    centers: dict[str, list[Any]] = {"cluster_id": ids}
    for i in range(n_features):
        row = first.row(i, named=True)
        scale[f"fill_{i}"] = [float(row["fill_null"])]
        scale[f"mean_{i}"] = [float(row["scale_mean"])]
        scale[f"std_{i}"] = [float(row["scale_std"])]
        centers[f"center_{i}"] = [
            float(long.filter(pl.col("cluster_id") == cid).row(i, named=True)["center_std"]) for cid in ids
        ]
    return pa.table(scale), pa.table(
        {k: pa.array(v, pa.int64() if k == "cluster_id" else pa.float64()) for k, v in centers.items()}
    )


def assignment_statement(engine: str, quoted_columns: list[str]) -> Statement:
    """cluster_assignment.sql for ``engine`` over the given quoted feature columns (validated identifiers):
    z = (ln(1 + max(coalesce(x, fill), 0)) - mean) / std, distance summed in feature order."""
    n = len(quoted_columns)
    return load_statement(
        SQL_DIR,
        "cluster_assignment",
        engine,  # type: ignore[arg-type]
        population_columns=",\n        ".join(f"{q} as feature_{i}" for i, q in enumerate(quoted_columns)),
        z_columns=",\n        ".join(
            f"cast(ln(1 + greatest(coalesce(cast(feature_{i} as double), fill_{i}), cast(0 as double))) - mean_{i} "
            f"as double) / cast(std_{i} as double) as z_{i}"
            for i in range(n)
        ),
        distance=" + ".join(f"(z_{i} - center_{i}) * (z_{i} - center_{i})" for i in range(n)),
    )


def _clusters(
    engine: SqlEngine,
    features: pl.DataFrame,
    settings: SegmentationSettings,
    snapshot: date | None,
    previous_centroids: pl.DataFrame | None,
) -> ClusterResult:
    """Fit on the hash sample (driver), assign everyone with nearest-centroid SQL (engine)."""
    cfg = settings.clusters
    names = [f.column for f in cfg.features]
    key = "segmentation.clusters.features"
    quoted = [_quote(c, features, key) for c in names]
    frame = features.select("customer_id", "is_buyer", *names).sort("customer_id")
    in_pop = pl.col("is_buyer").fill_null(False) if cfg.population == "buyers" else pl.lit(True)
    pop = frame.filter(in_pop)
    # The sample models.clusters would draw from the whole population: the smallest stable hashes.
    order = np.lexsort((np.arange(pop.height), stable_hash(pop["customer_id"])))
    sample = pop[np.sort(order[: cfg.sample_size])]
    fitted = cluster_customers(sample, cfg, snapshot, previous_centroids)
    if not cfg.enabled or fitted.centroids.is_empty():
        return _unassigned(frame, fitted)

    scale, centers = _cluster_tables(fitted, len(names))
    engine.register("cluster_scale", scale)
    engine.register("cluster_centers", centers)
    statement = assignment_statement(engine.name, quoted)
    labels = pl.from_arrow(engine.fetch(statement, {"all_customers": cfg.population == "all"}))
    name_map = fitted.centroids.select("cluster_id", "cluster_name").unique().sort("cluster_id")
    assignments = (
        frame.select("customer_id")
        .join(labels, on="customer_id", how="left", maintain_order="left")
        .join(name_map, on="cluster_id", how="left", maintain_order="left")
    )
    profiles = _profiles(pop.join(labels, on="customer_id", how="left"), name_map, cfg, snapshot)
    params = {**fitted.params, "population_size": pop.height, "assigned_with": f"nearest-centroid SQL on {engine.name}"}
    return ClusterResult(assignments, profiles, fitted.centroids, params, fitted.warnings)


def _unassigned(frame: pl.DataFrame, fitted: ClusterResult) -> ClusterResult:
    assignments = frame.select("customer_id", cluster_id=pl.lit(None, pl.Int64), cluster_name=pl.lit(None, pl.String))
    return ClusterResult(assignments, fitted.profiles, fitted.centroids, fitted.params, fitted.warnings)


def segment_on_engine(
    engine: SqlEngine,
    features: pl.DataFrame,
    settings: SegmentationSettings,
    as_of: date,
    previous_centroids: pl.DataFrame | None = None,
) -> SegmentationResult:
    """Segment snapshot ``as_of`` held by the engine's ``features`` view; ``features`` is the same rows
    collected (typed as the warehouse table), from which the output frame is assembled."""
    check_features(features)
    _check_snapshot_date(features, as_of)
    snapshot = as_of
    engagement = _engagement_sql(features, settings)

    # Bases without data (no browsing source, no positive spend) get null grades and leave the overall
    # grade, as models.grades does; decided on the driver's copy of the features (one pass, no events).
    graded = features.select(
        "is_buyer",
        "monetary",
        "frequency",
        engagement_score=engagement_score_expr(settings.grades),
    )
    with_data = bases_with_data(graded, basis_inputs())
    values = {**_score_values(settings), **_grade_values(settings, with_data)}
    engine.create("rfm_score_table", load_statement(SQL_DIR, "rfm_score_table", engine.name), values)
    engine.create(
        "grade_table", load_statement(SQL_DIR, "grade_table", engine.name, engagement_score=engagement), values
    )
    scores_sql = load_statement(SQL_DIR, "customer_scores", engine.name, engagement_score=engagement)
    engine.create(SCORES_VIEW, scores_sql, values)  # kept on the engine: the segment-map lookups read it
    scores = pl.from_arrow(engine.fetch_view(SCORES_VIEW)).sort("customer_id")
    score_table = pl.from_arrow(engine.fetch_view("rfm_score_table"))
    cut_points, warnings = _cut_points(score_table, features, settings, snapshot)
    note = missing_bases_warning(settings.grades, with_data)
    if note and features.height:
        warnings.append(note)
    scores = scores.with_columns(
        pl.lit(None, pl.String).alias(f"{b}_grade") for b in basis_inputs() if b not in with_data
    )

    frame = features.sort("customer_id").join(scores, on="customer_id", how="left", maintain_order="left")
    frame = assign_rfm_segments_on_engine(engine, frame, settings.rfm)  # joins on the map cells, on the engine
    clusters = _clusters(engine, features, settings, snapshot, previous_centroids)
    warnings += clusters.warnings
    frame = frame.join(clusters.assignments, on="customer_id", how="left", maintain_order="left")
    # Classifications and tags compiled for the engine and evaluated there; column order and prediction
    # placeholders as the DuckDB path does.
    frame, rule_warnings = classify_and_order(
        frame, features.columns, settings, evaluate=partial(evaluate_rules_on_engine, engine)
    )
    warnings += rule_warnings
    frame = frame.with_columns(
        [
            pl.col(c).cast(pl.Int64)
            for c in ("r_score", "f_score", "m_score", "fm_score", "engagement_score", "cluster_id")
        ]
    )
    params = run_params(frame, settings, snapshot, clusters, engine=engine.name)
    return SegmentationResult(
        customers=frame,
        cut_points=cut_points,
        cluster_profiles=clusters.profiles,
        centroids=clusters.centroids,
        warnings=warnings,
        params=params,
    )
