"""Publishing: atomic Parquet tables with history, a DuckDB catalog for BI tools, a segment report."""

from datetime import date

import dagster as dg

from assets.common import OWNERS, column_schema, markdown_table
from assets.engine_stages import engine_written_tables
from assets.resources import SegmentsResource, SparkResource
from data_contracts.contracts import SNAPSHOT_OUTPUTS, load_output_contract
from features.customer_features import feature_params
from models.published_columns import published_contracts
from models.settings import load_segmentation_settings
from publishing.outputs import run_tables, snapshot_tables
from publishing.parquet import build_catalog, publish, publish_page
from publishing.report import build_report_data, render_report


@dg.asset(
    deps=list(SNAPSHOT_OUTPUTS),
    group_name="publish",
    kinds={"parquet", "duckdb"},
    owners=OWNERS,
    description="Every published table of one snapshot date as one set: history partitions, the set folder "
    "current/ points at (snapshot tables plus data_quality and quarantine), and catalog.duckdb. Runs only when "
    "every blocking output check passed; current/ switches with one atomic rename, so a failed or killed run "
    "leaves the previous set intact and readers never see two snapshots mixed.",
    metadata={"dagster/column_schema": column_schema(load_output_contract("customer_segments"))},
    # A transient file-system error (full disk freed, NFS hiccup) is worth one more try; publishing is
    # atomic and idempotent, so a retry can never leave a mix.
    retry_policy=dg.RetryPolicy(max_retries=1, delay=10),
)
def published_tables(
    context: dg.AssetExecutionContext, segments: SegmentsResource, spark: SparkResource
) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    with segments.warehouse() as con:
        windows = feature_params(con, as_of).window_names()
        contracts = published_contracts(load_segmentation_settings(settings.segmentation, windows=windows), windows)
        by_engine = engine_written_tables(con, as_of, contracts, segments, spark)  # engine: spark writes these
        names = [n for n in SNAPSHOT_OUTPUTS if n not in by_engine]
        tables = {**snapshot_tables(con, as_of, names, contracts=contracts), **by_engine, **run_tables(con)}
    report = publish(settings.published_dir, tables, snapshot_date=as_of, contracts=contracts, history=SNAPSHOT_OUTPUTS)
    catalog = build_catalog(settings.published_dir, contracts, paths=settings.catalog_paths)
    current_updated = report.tables["customer_segments"].current_path is not None
    metadata: dict[str, object] = {
        "snapshot_date": as_of.isoformat(),
        "published_dir": dg.MetadataValue.path(str(settings.published_dir)),
        "catalog": dg.MetadataValue.path(str(catalog)),
        "snapshot_set": report.snapshot_id or "",
        "dagster/row_count": report.tables["customer_segments"].rows,
        "current_updated": current_updated,
        "tables_reused": ", ".join(report.reused) or "none",  # unchanged since the previous set: linked, not written
    }
    for name, t in report.tables.items():
        metadata[f"{name}_rows"] = t.rows
        metadata[f"{name}_bytes"] = t.bytes
    if not current_updated:
        context.log.info(f"{as_of} is older than the newest published snapshot: history written, current kept")
    return dg.MaterializeResult(metadata=metadata)


def failed_warn_checks(context: dg.AssetExecutionContext, max_examples: int = 3) -> list[str]:
    """Failed WARN checks evaluated so far in this run: "asset / check: description; examples" lines."""
    records = context.instance.get_records_for_run(
        run_id=context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    out = []
    for record in records:
        ev = record.event_log_entry.dagster_event.event_specific_data  # AssetCheckEvaluation
        if ev.passed or ev.severity != dg.AssetCheckSeverity.WARN:
            continue
        examples = ev.metadata.get("examples")
        shown = list(examples.value)[:max_examples] if examples is not None and examples.value else []
        details = [ev.description or ""] + [
            ", ".join(f"{k} {v}" for k, v in e.items()) if isinstance(e, dict) else str(e) for e in shown
        ]
        detail = "; ".join(d for d in details if d)
        out.append(f"{ev.asset_key.to_user_string()} / {ev.check_name}" + (f": {detail}" if detail else ""))
    return sorted(out)


@dg.asset(
    deps=["published_tables"],
    group_name="publish",
    kinds={"html"},
    owners=OWNERS,
    description="One self-contained HTML page per snapshot date for marketers (reports/segment_report_<D>.html "
    "and current/): totals, segment sizes with display names, revenue and averages, trends across snapshots, "
    "migration matrices, cluster profiles in plain words, data quality and warnings; language from the config.",
)
def segment_report(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    with segments.warehouse() as con:
        data = build_report_data(con, as_of, segments.registry(), settings, warnings=failed_warn_checks(context))
    page = render_report(data, settings.language)
    path = publish_page(settings.published_dir, as_of, "segment_report", page, table="customer_segments")
    rfm = next((s["rows"] for s in data["segmentations"] if s["name"] == "rfm_segment"), [])
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "language": settings.language,
            "customers": data["totals"]["customers"],
            "warnings": len(data["warnings"]),
            "rfm_segment_sizes": markdown_table(
                rfm, ["key", f"name_{settings.language}", "customers", "share", "revenue"]
            ),
        }
    )


publishing_assets = [published_tables, segment_report]
