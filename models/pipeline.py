"""One call that segments a snapshot: RFM, segment maps, grades, lifecycle, clusters, classifications, tags.

Pure: everything it needs comes in as arguments (the features of ONE snapshot date, the settings and
the previous snapshot's centroids); nothing reads the clock, the disk or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import polars as pl

from models.classifications import (
    RuleEvaluator,
    apply_classifications,
    compile_settings_rules,
    evaluate_on_duckdb,
    missing_rule_columns,
    rule_inputs,
)
from models.clusters import ClusterResult, cluster_customers
from models.clv import prediction_columns
from models.grades import grade_customers
from models.lifecycle import assign_lifecycle
from models.rfm import score_rfm
from models.segment_maps import apply_segment_map
from models.settings import RfmSettings, SegmentationSettings

REQUIRED_COLUMNS: tuple[str, ...] = (
    "snapshot_date",
    "customer_id",
    "is_buyer",
    "frequency",
    "monetary",
    "recency_days",
    "first_purchase_date",
    "reactivation_gap_days",
)

# Columns segment_customers adds, in order.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "rfm_segment",
    "rfm_segment_name",
    "value_class",
    "value_class_name",
    "engagement_score",
    "monetary_grade",
    "frequency_grade",
    "engagement_grade",
    "overall_grade",
    "lifecycle_stage",
    "value_tier",
    "value_tier_name",
    "cluster_id",
    "cluster_name",
)


@dataclass(frozen=True)
class SegmentationResult:
    """Everything one snapshot's segmentation produces."""

    # features + OUTPUT_COLUMNS + classifications (other than value tier), tag_<name> flags and tags,
    # one row per customer, sorted by customer_id
    customers: pl.DataFrame
    cut_points: pl.DataFrame  # rfm_cut_points
    cluster_profiles: pl.DataFrame
    centroids: pl.DataFrame  # persist; pass back as previous_centroids next snapshot
    warnings: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # for metadata: random_state, k, methods...
    override_audit: pl.DataFrame = field(default_factory=pl.DataFrame)  # filled by models.stages


def _check_snapshot_date(features: pl.DataFrame, as_of: date) -> None:
    """Every row must belong to snapshot ``as_of`` (one snapshot at a time, its date given explicitly)."""
    if features["snapshot_date"].null_count():
        raise ValueError("features: snapshot_date is null in some rows; every row needs the snapshot date")
    other = sorted(d for d in features["snapshot_date"].unique().to_list() if d != as_of)
    if other:
        raise ValueError(f"features: one snapshot at a time: rows of {other[:5]} given for snapshot {as_of}")


def check_features(features: pl.DataFrame) -> None:
    """Raise ValueError naming what is wrong with the input frame (columns, keys)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"features: missing columns {missing}")
    clash = [c for c in OUTPUT_COLUMNS if c in features.columns]
    if clash:
        raise ValueError(f"features: already has output columns {clash}")
    if features["customer_id"].null_count():
        raise ValueError("features: customer_id is null in some rows")
    if features["customer_id"].n_unique() != features.height:
        dupes = features.filter(pl.col("customer_id").is_duplicated())["customer_id"].unique().sort()
        raise ValueError(f"features: duplicate customer_id values, e.g. {dupes.head(5).to_list()}")


# Value-map axis -> (metric column, True when a smaller value is better).
VALUE_METRICS: dict[str, tuple[str, bool]] = {
    "r": ("recency_days", True),
    "f": ("frequency", False),
    "m": ("monetary", False),
}


def _metric_units(axis: str) -> pl.Expr:
    """The axis metric as an exact integer: days, orders, or cents of net spend."""
    column, _ = VALUE_METRICS[axis]
    if axis == "m":
        return (pl.col(column).cast(pl.Float64) * 100).round(0).cast(pl.Int64)
    return pl.col(column).cast(pl.Int64)


def value_thresholds(frame: pl.DataFrame, settings: RfmSettings) -> dict[str, Any]:
    """The cut of each value-map axis among scored buyers (rows with a non-null score of that axis).

    ``mean`` / ``median``: high = strictly better than the population mean / median of the metric
    (recency: fewer days; frequency, monetary: more). ``score``: high = score >= ``value_high_min_score``.
    Returned as ``{"method": ..., "r": value, ...}`` in original units, for metadata; the same statistics
    ``value_level_rules`` decides the levels with.
    """
    return {
        "method": settings.value_high_method,
        **{rule.axis: rule.threshold for rule in value_level_rules(frame, settings)},
    }


@dataclass(frozen=True)
class LevelRule:
    """When a value-map axis is ``high`` for a scored buyer: ``value op bound``.

    ``value`` is the axis score when ``on_score``, else its metric in exact integer units (days, orders,
    cents). Decided once per snapshot (:func:`value_level_rules`) and applied by polars here and by SQL on
    the engines (``engines/sql/value_levels.sql``), so the rule is stated in one place. ``bound`` is None
    when there are no scored buyers (nobody is high).
    """

    axis: str
    on_score: bool
    op: Literal[">=", ">", "<"]
    bound: int | float | None
    threshold: float | None = None  # the cut in the metric's own units (score, days, orders, money), for metadata


def value_level_rules(frame: pl.DataFrame, settings: RfmSettings) -> tuple[LevelRule, ...]:
    """The rule of each axis of the value map over ``frame``'s scored buyers (see ``value_thresholds``).

    ``score``: score >= ``value_high_min_score``. ``median``: strictly better than the median (a float).
    ``mean``: strictly better than the mean, compared exactly on integers: for an integer x,
    x > total / n  <=>  x > floor(total / n), and x < total / n  <=>  x < ceil(total / n).
    """
    rules = []
    for axis in settings.value_map_obj().axes:
        if settings.value_high_method == "score":
            min_score = getattr(settings.value_high_min_score, axis)
            rules.append(LevelRule(axis, True, ">=", min_score, min_score))
            continue
        _, smaller_is_better = VALUE_METRICS[axis]
        op: Literal[">", "<"] = "<" if smaller_is_better else ">"
        values = frame.filter(pl.col(f"{axis}_score").is_not_null()).select(_metric_units(axis).alias("v"))["v"]
        bound: int | float | None = None
        stat = values.mean() if settings.value_high_method == "mean" else values.median()
        threshold = None if stat is None else float(stat) / (100 if axis == "m" else 1)
        if values.is_empty():
            bound = None
        elif settings.value_high_method == "median":
            bound = float(values.median())
        else:
            total, n = int(values.sum()), values.len()
            bound = -(-total // n) if smaller_is_better else total // n
        rules.append(LevelRule(axis, False, op, bound, threshold))
    return tuple(rules)


def _high_expr(rule: LevelRule) -> pl.Expr:
    """``rule`` as a polars expression (True where the axis is high)."""
    if rule.bound is None:
        return pl.lit(False)
    value = pl.col(f"{rule.axis}_score") if rule.on_score else _metric_units(rule.axis)
    if isinstance(rule.bound, float):
        value = value.cast(pl.Float64)
    return {">=": value >= rule.bound, ">": value > rule.bound, "<": value < rule.bound}[rule.op]


def check_value_inputs(frame: pl.DataFrame, settings: RfmSettings) -> None:
    """The mean/median value methods read the metric columns; say which setting to change when they lack."""
    if settings.value_high_method == "score":
        return
    missing = [VALUE_METRICS[a][0] for a in settings.value_map_obj().axes if VALUE_METRICS[a][0] not in frame.columns]
    if missing:
        raise ValueError(
            f"rfm.value_high_method {settings.value_high_method!r} needs columns {missing}; "
            "give them or set segmentation.rfm.value_high_method: score"
        )


RFM_AXIS_COLUMNS: dict[str, str] = {"r": "r_score", "f": "f_score", "m": "m_score", "fm": "fm_score"}


def assign_rfm_segments(frame: pl.DataFrame, settings: RfmSettings) -> pl.DataFrame:
    """Add ``rfm_segment(_name)`` from the R × FM map and ``value_class(_name)`` from the value map.

    Needs ``r_score, f_score, m_score, fm_score`` (and, for the ``mean``/``median`` value methods,
    ``recency_days, frequency, monetary``); a null score (non-buyer) gives null labels. For the value
    map each axis is ``high`` or ``low`` as ``value_thresholds`` describes.
    """
    frame = apply_segment_map(frame, settings.segment_map_obj(), RFM_AXIS_COLUMNS, "rfm_segment", "rfm_segment_name")
    value_map = settings.value_map_obj()
    check_value_inputs(frame, settings)
    rules = value_level_rules(frame, settings)
    levels = {rule.axis: f"_{rule.axis}_level" for rule in rules}
    frame = frame.with_columns(
        [
            pl.when(pl.col(f"{rule.axis}_score").is_null())
            .then(pl.lit(None, pl.String))
            .when(_high_expr(rule))
            .then(pl.lit("high"))
            .otherwise(pl.lit("low"))
            .alias(levels[rule.axis])
            for rule in rules
        ]
    )
    frame = apply_segment_map(frame, value_map, levels, "value_class", "value_class_name")
    return frame.drop(list(levels.values()))


def classify_and_order(
    frame: pl.DataFrame,
    feature_columns: list[str],
    settings: SegmentationSettings,
    evaluate: RuleEvaluator = evaluate_on_duckdb,
) -> tuple[pl.DataFrame, list[str]]:
    """The last step of every engine: classifications and tags (their rules may read every column, clusters
    included; the compiled select runs where ``evaluate`` runs it), then the published column order
    (features, ``OUTPUT_COLUMNS``, rule-made columns) and the churn prediction columns, null until the
    prediction step (models/clv.py) fills them."""
    warnings: list[str] = []
    missing = missing_rule_columns(frame, compile_settings_rules(settings), rule_inputs(settings)[0])
    if missing:
        warnings.append(f"classification/tag rules read columns the features lack (read as null): {missing}")
    frame = apply_classifications(frame.sort("customer_id"), settings, evaluate)
    rule_columns = [c for c in frame.columns if c not in feature_columns and c not in OUTPUT_COLUMNS]
    frame = frame.select([*feature_columns, *OUTPUT_COLUMNS, *rule_columns]).sort("customer_id")
    frame = frame.with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in prediction_columns(settings.prediction).items()
        if name not in frame.columns
    )
    return frame, warnings


def run_params(
    frame: pl.DataFrame, settings: SegmentationSettings, snapshot: date, clusters: ClusterResult, **extra: Any
) -> dict[str, Any]:
    """The facts of one segmentation run (metadata and ``params``), the same on every engine."""
    return {
        "snapshot_date": snapshot.isoformat(),
        "customers": frame.height,
        "buyers": int(frame["is_buyer"].fill_null(False).sum()),
        "rfm_method": settings.rfm.method,
        "segment_map": settings.rfm.segment_map_obj().name,
        "value_map": settings.rfm.value_map_obj().name,
        "value_map_thresholds": value_thresholds(frame, settings.rfm),
        "grade_method": settings.grades.method,
        "random_state": settings.clusters.random_state,
        "k": clusters.params.get("k"),
        "clusters": clusters.params,
        "settings": settings.model_dump(mode="json"),
        **extra,
    }


def segment_customers(
    features: pl.DataFrame,
    settings: SegmentationSettings,
    as_of: date,
    previous_centroids: pl.DataFrame | None = None,
) -> SegmentationResult:
    """Segment snapshot ``as_of`` of customer features; output sorted by customer_id."""
    check_features(features)
    _check_snapshot_date(features, as_of)
    snapshot = as_of
    frame = features.sort("customer_id")
    warnings: list[str] = []

    rfm = score_rfm(frame, settings.rfm, snapshot)
    warnings += rfm.warnings
    frame = assign_rfm_segments(rfm.frame, settings.rfm)
    frame = grade_customers(frame, settings.grades, warnings=warnings)
    frame = assign_lifecycle(frame, settings.lifecycle)

    clusters: ClusterResult = cluster_customers(frame, settings.clusters, snapshot, previous_centroids)
    warnings += clusters.warnings
    frame = frame.join(clusters.assignments, on="customer_id", how="left", maintain_order="left")
    frame, rule_warnings = classify_and_order(frame, features.columns, settings)
    warnings += rule_warnings

    params = run_params(frame, settings, snapshot, clusters)
    return SegmentationResult(
        customers=frame,
        cut_points=rfm.cut_points,
        cluster_profiles=clusters.profiles,
        centroids=clusters.centroids,
        warnings=warnings,
        params=params,
    )
