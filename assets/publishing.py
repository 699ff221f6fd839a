"""Publishing: atomic Parquet tables with history, a DuckDB catalog for BI tools, a segment report."""

from datetime import date

import dagster as dg

from assets.common import OWNERS, column_schema
from assets.partitions import snapshot_partitions
from data_contracts.contracts import SNAPSHOT_OUTPUTS, output_contracts
from pipelines.resources import SegmentsResource
from segments.outputs import run_tables, snapshot_tables
from segments.publish import build_catalog, publish

_SCHEMAS = {name: column_schema(c) for name, c in output_contracts().items()}


@dg.asset(
    partitions_def=snapshot_partitions,
    deps=list(SNAPSHOT_OUTPUTS),
    group_name="publish",
    kinds={"parquet", "duckdb"},
    owners=OWNERS,
    description="One Parquet file per published table and snapshot date (history) plus current/ copies, "
    "data_quality, quarantine and catalog.duckdb. Runs only when every blocking output check passed; "
    "written atomically, so a failed or killed run leaves the previous version intact.",
    metadata={"dagster/column_schema": _SCHEMAS["customer_segments"]},
)
def published_tables(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    contracts = output_contracts()
    with segments.warehouse() as con:
        snap = snapshot_tables(con, as_of)
        run = run_tables(con)
    report = publish(settings.published_dir, snap, snapshot_date=as_of, contracts=contracts)
    run_report = publish(settings.published_dir, run, snapshot_date=None, contracts=contracts)
    catalog = build_catalog(settings.published_dir, contracts)
    metadata: dict[str, object] = {
        "snapshot_date": as_of.isoformat(),
        "published_dir": dg.MetadataValue.path(str(settings.published_dir)),
        "catalog": dg.MetadataValue.path(str(catalog)),
        "dagster/row_count": report.tables["customer_segments"].rows,
        "current_updated": report.tables["customer_segments"].current_path is not None,
    }
    for name, t in {**report.tables, **run_report.tables}.items():
        metadata[f"{name}_rows"] = t.rows
        metadata[f"{name}_bytes"] = t.bytes
    if report.tables["customer_segments"].current_path is None:
        context.log.info(f"{as_of} is older than the newest published snapshot: history written, current kept")
    return dg.MaterializeResult(metadata=metadata)


publishing_assets = [published_tables]
