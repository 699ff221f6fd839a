"""Per-customer snapshot assets, partitioned by snapshot date D: features, segments, summaries, migrations."""

from datetime import date
from typing import Any

import dagster as dg
import polars as pl
import yaml

from assets.common import OWNERS, column_schema, markdown_table
from assets.partitions import snapshot_partitions
from assets.resources import SegmentsResource
from data_contracts.contracts import INPUT_SOURCES, load_output_contract
from features.customer_features import FeatureParams, anonymous_browsing_counts, build_customer_features
from features.segment_reports import previous_snapshot, segment_migrations, segment_summary
from models.pipeline import segment_customers
from models.settings import deep_merge, load_segmentation_settings
from segments.warehouse import read_snapshot, replace_snapshot

INGESTION = [dg.AssetKey(s) for s in INPUT_SOURCES]


def _schema(name: str) -> dict[str, object]:
    """Column descriptions from the output contract, shown in the Dagster UI."""
    return {"dagster/column_schema": column_schema(load_output_contract(name))}


class FeatureConfig(dg.Config):
    """Launchpad knobs for feature windows (0 / empty = the config file's value or the default)."""

    lookback_days: int = 0
    short_window_days: int = 30
    long_window_days: int = 90


class SegmentationConfig(dg.Config):
    """Launchpad knobs an analyst may change per run; empty/0 keeps segments.yaml (then models/defaults.yaml)."""

    rfm_method: str = ""
    segment_map: str = ""
    grade_method: str = ""
    new_days: int = 0
    active_days: int = 0
    churn_days: int = 0
    k: int = 0
    overrides_yaml: str = ""


def _snapshot_date(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


# Launchpad field -> (section, key) of the segmentation rules it overrides.
_CONFIG_KEYS = {
    "rfm_method": ("rfm", "method"),
    "segment_map": ("rfm", "segment_map"),
    "grade_method": ("grades", "method"),
    "new_days": ("lifecycle", "new_days"),
    "active_days": ("lifecycle", "active_days"),
    "churn_days": ("lifecycle", "churn_days"),
    "k": ("clusters", "k"),
}


def segmentation_overrides(config: SegmentationConfig) -> dict[str, Any]:
    """Run-config values as a ``segmentation:`` override mapping (only what the analyst set)."""
    out: dict[str, Any] = {}
    if config.overrides_yaml.strip():
        out = yaml.safe_load(config.overrides_yaml)
        if not isinstance(out, dict):
            raise dg.Failure("overrides_yaml must be a YAML mapping such as 'clusters: {k: 6}'")
    for field, (section, key) in _CONFIG_KEYS.items():
        if value := getattr(config, field):
            out = deep_merge(out, {section: {key: value}})
    return out


@dg.asset(
    partitions_def=snapshot_partitions,
    deps=INGESTION,
    group_name="features",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per known customer per snapshot date: purchase (RFM inputs), behaviour, feedback, "
    "preference and customer-record features as of the end of D, computed in DuckDB SQL.",
)
def customer_features(
    context: dg.AssetExecutionContext, config: FeatureConfig, segments: SegmentsResource
) -> dg.MaterializeResult:
    as_of = _snapshot_date(context)
    params = FeatureParams(
        lookback_days=config.lookback_days or None, windows=(config.short_window_days, config.long_window_days)
    )
    with segments.warehouse() as con:
        rows = build_customer_features(con, as_of, params)
        anonymous = anonymous_browsing_counts(con, as_of)
        buyers = con.execute(
            "select count(*) from customer_features where snapshot_date = $d and is_buyer", {"d": as_of}
        ).fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "snapshot_date": as_of.isoformat(),
            "buyers": int(buyers),
            "non_buyers": rows - int(buyers),
            **{f"anonymous_{k}": v for k, v in anonymous.items()},
            "lookback_days": config.lookback_days or "all history",
        }
    )


def _sizes_table(frame: pl.DataFrame, column: str) -> dg.MetadataValue:
    counts = (
        frame.group_by(pl.col(column).cast(pl.String).fill_null("unassigned").alias("segment"))
        .agg(pl.len().alias("customers"))
        .with_columns((pl.col("customers") / pl.col("customers").sum()).round(4).alias("share"))
        .sort(["customers", "segment"], descending=[True, False])
    )
    return markdown_table(counts.to_dicts(), ["segment", "customers", "share"])


@dg.multi_asset(
    partitions_def=snapshot_partitions,
    group_name="segmentation",
    specs=[
        dg.AssetSpec(
            "customer_segments",
            deps=["customer_features"],
            kinds={"duckdb", "polars", "scikit-learn"},
            owners=OWNERS,
            description="One row per customer per snapshot date: every feature plus RFM scores and segments, "
            "A/B/C grades, lifecycle stage, value tier and KMeans cluster.",
            metadata=_schema("customer_segments"),
        ),
        dg.AssetSpec(
            "rfm_cut_points",
            deps=["customer_features"],
            kinds={"duckdb"},
            owners=OWNERS,
            description="One row per snapshot date, metric and score: the value range each RFM score covers.",
            metadata=_schema("rfm_cut_points"),
        ),
        dg.AssetSpec(
            "cluster_profiles",
            deps=["customer_features"],
            kinds={"duckdb"},
            owners=OWNERS,
            description="One row per snapshot date and cluster: size, name and feature averages in original units.",
        ),
    ],
)
def segmentation(context: dg.AssetExecutionContext, config: SegmentationConfig, segments: SegmentsResource):
    """Score, segment, grade, stage, tier and cluster every customer of snapshot D."""
    as_of = _snapshot_date(context)
    settings = segments.settings()
    seg_settings = load_segmentation_settings(deep_merge(settings.segmentation, segmentation_overrides(config)))
    with segments.warehouse() as con:
        features = read_snapshot(con, "customer_features", as_of).sort("customer_id")
        if features.is_empty():
            raise dg.Failure(f"no customer_features for {as_of}: materialize customer_features first")
        prev = previous_snapshot(con, as_of, "cluster_centroids")
        prev_centroids = read_snapshot(con, "cluster_centroids", prev) if prev else None
        result = segment_customers(features, seg_settings, previous_centroids=prev_centroids)
        replace_snapshot(con, "customer_segments", result.customers, as_of)
        replace_snapshot(con, "rfm_cut_points", result.cut_points, as_of)
        replace_snapshot(con, "cluster_profiles", result.cluster_profiles, as_of)
        if result.centroids is not None and not result.centroids.is_empty():
            replace_snapshot(con, "cluster_centroids", result.centroids, as_of)
    for warning in result.warnings:
        context.log.warning(warning)
    customers = result.customers
    yield dg.MaterializeResult(
        asset_key="customer_segments",
        metadata={
            "dagster/row_count": customers.height,
            "snapshot_date": as_of.isoformat(),
            "rfm_segment_sizes": _sizes_table(customers, "rfm_segment"),
            "value_class_sizes": _sizes_table(customers, "value_class"),
            "lifecycle_stage_sizes": _sizes_table(customers, "lifecycle_stage"),
            "overall_grade_sizes": _sizes_table(customers, "overall_grade"),
            "value_tier_sizes": _sizes_table(customers, "value_tier"),
            "cluster_sizes": _sizes_table(customers, "cluster_name"),
            "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings) or "none"),
            "parameters": dg.MetadataValue.json(result.params),
            "previous_centroids_from": prev.isoformat() if prev else "none (first snapshot)",
        },
    )
    yield dg.MaterializeResult(
        asset_key="rfm_cut_points",
        metadata={
            "dagster/row_count": result.cut_points.height,
            "cut_points": markdown_table(result.cut_points.to_dicts(), result.cut_points.columns),
        },
    )
    yield dg.MaterializeResult(
        asset_key="cluster_profiles",
        metadata={
            "dagster/row_count": result.cluster_profiles.height,
            "profiles": markdown_table(result.cluster_profiles.to_dicts(), result.cluster_profiles.columns),
        },
    )


@dg.asset(
    name="segment_summary",
    partitions_def=snapshot_partitions,
    deps=["customer_segments"],
    group_name="segmentation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, segmentation and segment: customers, share, revenue and averages.",
    metadata=_schema("segment_summary"),
)
def segment_summary_table(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = _snapshot_date(context)
    with segments.warehouse() as con:
        summary = segment_summary(con, as_of, segments.registry())
        replace_snapshot(con, "segment_summary", summary, as_of)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.height,
            "summary": markdown_table(
                summary.to_dicts(), ["segmentation", "segment", "customers", "share", "revenue"], limit=80
            ),
        }
    )


@dg.asset(
    name="segment_migrations",
    partitions_def=snapshot_partitions,
    deps=["customer_segments"],
    group_name="segmentation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, segmentation and (from, to) pair: customers who moved since the "
    "previous snapshot.",
    metadata=_schema("segment_migrations"),
)
def segment_migrations_table(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = _snapshot_date(context)
    with segments.warehouse() as con:
        moves = segment_migrations(con, as_of, segments.registry(), previous_snapshot(con, as_of))
        replace_snapshot(con, "segment_migrations", moves, as_of)
    moved = moves.filter(pl.col("from_segment") != pl.col("to_segment"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": moves.height,
            "previous_snapshot": str(moves["previous_snapshot_date"][0]) if moves.height else "none",
            "moves": markdown_table(
                moved.sort("customers", descending=True).to_dicts(),
                ["segmentation", "from_segment", "to_segment", "customers"],
            ),
        }
    )


snapshot_assets = [customer_features, segmentation, segment_summary_table, segment_migrations_table]
