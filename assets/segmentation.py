"""Per-customer snapshot assets (daily partitions = snapshot date D): features, segments, summaries, migrations.

Each body loads through the ``segments`` resource, calls one stage of ``features``/``models`` with D
explicit, and turns the result into metadata. The partitions are attached when the definitions are
built from the config (``pipelines.definitions``), so the config is read once.
"""

import dataclasses
from datetime import date
from enum import Enum
from typing import Any

import dagster as dg
import polars as pl
import yaml
from pydantic import Field

from assets import engine_stages
from assets.common import OWNERS, column_schema, markdown_table
from assets.resources import SegmentsResource, SparkResource
from data_contracts.contracts import INPUT_SOURCES, load_output_contract
from features.customer_features import anonymous_browsing_counts, feature_params
from models.rule_lint import lint_rules, lint_snapshot
from models.settings import SegmentationSettingsError, deep_merge, load_segmentation_settings
from models.stages import group_summary_stage, migrations_stage, summary_stage

INGESTION = [dg.AssetKey(s) for s in INPUT_SOURCES]


def _meta(name: str) -> dict[str, object]:
    """Table name and column descriptions from the output contract, shown in the Dagster UI."""
    return {
        "dagster/table_name": f"warehouse.main.{name}",
        "dagster/column_schema": column_schema(load_output_contract(name)),
    }


class FeatureConfig(dg.Config):
    """Launchpad knobs for feature windows; unset fields keep ``features:`` of segments.yaml."""

    lookback_days: int | None = Field(
        default=None, ge=1, description="Days of history for frequency/monetary (unset: segments.yaml, else all)."
    )
    short_window_days: int | None = Field(
        default=None, ge=1, description="Short behaviour window in days: columns sessions_{N}d ... (default 30)."
    )
    long_window_days: int | None = Field(
        default=None, ge=1, description="Long behaviour window in days: columns sessions_{N}d ... (default 90)."
    )
    complaint_window_days: int | None = Field(
        default=None, ge=1, description="Window of complaints_{N}d in days (default 90)."
    )


class RfmMethod(Enum):
    """RFM scoring method."""

    quantile = "quantile"
    fixed = "fixed"


class GradeMethod(Enum):
    """A/B/C grading method."""

    pareto = "pareto"
    quantile = "quantile"


class SegmentationConfig(dg.Config):
    """Launchpad knobs an analyst may change per run; unset fields keep segments.yaml, then models/defaults.yaml."""

    rfm_method: RfmMethod | None = Field(default=None, description="quantile (rank of distinct values) or fixed.")
    segment_map: str | None = Field(default=None, description="Bundled RFM segment map name, e.g. rfm_11.")
    grade_method: GradeMethod | None = Field(default=None, description="pareto (cumulative share) or quantile.")
    new_days: int | None = Field(default=None, ge=0, description="First purchase within N days -> new.")
    active_days: int | None = Field(default=None, ge=0, description="Last purchase within N days -> active.")
    churn_days: int | None = Field(default=None, ge=1, description="Last purchase more than N days ago -> churned.")
    k: int | None = Field(default=None, ge=1, le=50, description="Number of KMeans clusters (unset: config).")
    overrides_yaml: str | None = Field(
        default=None, description="Any other key of models/defaults.yaml as YAML, e.g. 'clusters: {k: 6}'."
    )


# Launchpad field -> (section, key) of the segmentation rules it overrides.
CONFIG_KEYS = {
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
    if config.overrides_yaml and config.overrides_yaml.strip():
        out = yaml.safe_load(config.overrides_yaml)
        if not isinstance(out, dict):
            raise dg.Failure("overrides_yaml must be a YAML mapping such as 'clusters: {k: 6}'")
    for field, (section, key) in CONFIG_KEYS.items():
        value = getattr(config, field)
        if value is not None:
            out = deep_merge(out, {section: {key: value.value if isinstance(value, Enum) else value}})
    return out


def _snapshot_date(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


@dg.asset(
    deps=INGESTION,
    group_name="features",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per known customer per snapshot date: purchase (RFM inputs), behaviour, feedback, "
    "preference and customer-record features as of the end of D, computed in DuckDB SQL.",
    metadata={"dagster/table_name": "warehouse.main.customer_features"},
)
def customer_features(
    context: dg.AssetExecutionContext, config: FeatureConfig, segments: SegmentsResource, spark: SparkResource
) -> dg.MaterializeResult:
    as_of = _snapshot_date(context)
    # The reactivation gap follows the lifecycle's active window of the config file (segmentation.lifecycle).
    active_days = load_segmentation_settings(
        segments.settings().segmentation, windows=segments.settings().windows()
    ).lifecycle.active_days
    params = dataclasses.replace(
        segments.settings().features.params(**config.model_dump()), reactivation_window_days=active_days
    )
    with segments.warehouse() as con:
        build = engine_stages.build_features(con, as_of, params, segments, spark)  # engine: duckdb | spark
        rows = build.rows
        anonymous = anonymous_browsing_counts(con, as_of)
        buyers = con.execute(
            "select count(*) from customer_features where snapshot_date = $d and is_buyer", {"d": as_of}
        ).fetchall()[0][0]
    schema = column_schema(load_output_contract("customer_segments", params.window_names()))
    feature_cols = {"snapshot_date", "customer_id", *(n for n in _feature_columns(params))}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(columns=[c for c in schema.columns if c.name in feature_cols]),
            "snapshot_date": as_of.isoformat(),
            "buyers": int(buyers),
            "non_buyers": rows - int(buyers),
            **{f"anonymous_{k}": v for k, v in anonymous.items()},
            "lookback_days": params.lookback_days or "all history",
            "windows": dg.MetadataValue.json(params.window_names()),
            "reactivation_window_days": active_days,
            **build.metadata(),
        }
    )


def _feature_columns(params: Any) -> list[str]:
    from features.customer_features import output_columns

    return [n for n, _ in output_columns(params)]


def _sizes_table(frame: pl.DataFrame, column: str) -> dg.MetadataValue:
    counts = (
        frame.group_by(pl.col(column).cast(pl.String).fill_null("unassigned").alias("segment"))
        .agg(pl.len().alias("customers"))
        .with_columns((pl.col("customers") / pl.col("customers").sum()).round(4).alias("share"))
        .sort(["customers", "segment"], descending=[True, False])
    )
    return markdown_table(counts.to_dicts(), ["segment", "customers", "share"])


@dg.multi_asset(
    group_name="segmentation",
    specs=[
        dg.AssetSpec(
            "customer_segments",
            deps=["customer_features"],
            kinds={"duckdb", "polars", "scikit-learn"},
            owners=OWNERS,
            description="One row per customer per snapshot date: every feature plus RFM scores and segments, "
            "A/B/C grades, lifecycle stage, value tier and KMeans cluster.",
            metadata=_meta("customer_segments"),
        ),
        dg.AssetSpec(
            "rfm_cut_points",
            deps=["customer_features"],
            kinds={"duckdb"},
            owners=OWNERS,
            description="One row per snapshot date, metric and score: the value range each RFM score covers.",
            metadata=_meta("rfm_cut_points"),
        ),
        dg.AssetSpec(
            "override_audit",
            deps=["customer_features"],
            kinds={"duckdb"},
            owners=OWNERS,
            description="One row per snapshot date and line of the overrides file: applied, expired or refused.",
            metadata=_meta("override_audit"),
        ),
        dg.AssetSpec(
            "cluster_profiles",
            deps=["customer_features"],
            kinds={"duckdb"},
            owners=OWNERS,
            description="One row per snapshot date, cluster and feature: size, name and the feature's mean and "
            "median in original units.",
            metadata=_meta("cluster_profiles"),
        ),
    ],
)
def segmentation(
    context: dg.AssetExecutionContext, config: SegmentationConfig, segments: SegmentsResource, spark: SparkResource
):
    """Score, segment, grade, stage, tier and cluster every customer of snapshot D."""
    as_of = _snapshot_date(context)
    rules = deep_merge(segments.settings().segmentation, segmentation_overrides(config))
    try:  # refuse a bad launchpad value before touching the warehouse
        load_segmentation_settings(rules, windows=segments.settings().windows())
    except SegmentationSettingsError as exc:
        raise dg.Failure(f"launchpad config: {exc}") from exc
    with segments.warehouse() as con:
        result, prev = engine_stages.segmentation(con, as_of, rules, segments, spark)  # engine: duckdb | spark
        windows = feature_params(con, as_of).window_names()  # the snapshot's windows name its rule columns
    customers = result.customers
    seg_settings = load_segmentation_settings(rules, windows=windows)
    findings = [*lint_rules(seg_settings), *lint_snapshot(customers, as_of, seg_settings)]
    for warning in [*result.warnings, *(f"{f.where}: {f.message}" for f in findings)]:
        context.log.warning(warning)
    registry = segments.registry()
    yield dg.MaterializeResult(
        asset_key="customer_segments",
        metadata={
            "dagster/row_count": customers.height,
            "snapshot_date": as_of.isoformat(),
            **{
                f"{s.name}_sizes": _sizes_table(customers, s.column if s.name != "cluster" else "cluster_name")
                for s in registry.where("summarized")
            },
            "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings) or "none"),
            "parameters": dg.MetadataValue.json(result.params),
            "previous_centroids_from": prev.isoformat() if prev else "none (first snapshot)",
            "rule_findings": dg.MetadataValue.md("\n".join(f"- {f.where}: {f.message}" for f in findings) or "none"),
        },
    )
    audit = result.override_audit
    yield dg.MaterializeResult(
        asset_key="override_audit",
        metadata={
            "dagster/row_count": audit.height,
            "overrides": markdown_table(
                audit.to_dicts(), ["line", "customer_id", "field", "value", "status", "detail"]
            ),
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
    deps=["customer_segments", "churn_predictions"],
    group_name="segmentation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, segmentation and segment: customers, share, revenue and averages.",
    metadata=_meta("segment_summary"),
)
def segment_summary_table(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    with segments.warehouse() as con:
        summary = summary_stage(con, _snapshot_date(context), segments.registry())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.height,
            "summary": markdown_table(
                summary.to_dicts(), ["segmentation", "segment", "customers", "share", "revenue"], limit=80
            ),
        }
    )


@dg.asset(
    name="segment_summary_by_group",
    deps=["customer_segments", "churn_predictions"],
    group_name="segmentation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, region (summary_group_by), segmentation and segment: customers, "
    "share within the region and revenue.",
    metadata=_meta("segment_summary_by_group"),
)
def segment_summary_by_group_table(
    context: dg.AssetExecutionContext, segments: SegmentsResource
) -> dg.MaterializeResult:
    groups = tuple(
        load_segmentation_settings(
            segments.settings().segmentation, windows=segments.settings().windows()
        ).summary_group_by
    )
    with segments.warehouse() as con:
        summary = group_summary_stage(con, _snapshot_date(context), segments.registry(), groups)
    return dg.MaterializeResult(metadata={"dagster/row_count": summary.height, "group_by": ", ".join(groups)})


@dg.asset(
    name="segment_migrations",
    deps=["customer_segments", "churn_predictions"],
    group_name="segmentation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, segmentation and (from, to) pair: customers who moved since the "
    "previous snapshot.",
    metadata=_meta("segment_migrations"),
)
def segment_migrations_table(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    with segments.warehouse() as con:
        moves = migrations_stage(con, _snapshot_date(context), segments.registry())
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


snapshot_assets = [
    customer_features,
    segmentation,
    segment_summary_table,
    segment_summary_by_group_table,
    segment_migrations_table,
]
