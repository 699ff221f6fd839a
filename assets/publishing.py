"""Publishing: atomic Parquet tables with history, a DuckDB catalog for BI tools, a segment report."""

from datetime import date

import dagster as dg
import polars as pl

from assets.common import OWNERS, column_schema, markdown_table
from assets.partitions import snapshot_partitions
from assets.resources import SegmentsResource
from data_contracts.contracts import SNAPSHOT_OUTPUTS, load_output_contract, output_contracts
from publishing.outputs import run_tables, snapshot_tables
from publishing.parquet import build_catalog, publish, published_snapshots, write_text_atomic
from publishing.report import render_report


@dg.asset(
    partitions_def=snapshot_partitions,
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
def published_tables(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    contracts = output_contracts()
    with segments.warehouse() as con:
        tables = {**snapshot_tables(con, as_of), **run_tables(con)}
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
    }
    for name, t in report.tables.items():
        metadata[f"{name}_rows"] = t.rows
        metadata[f"{name}_bytes"] = t.bytes
    if not current_updated:
        context.log.info(f"{as_of} is older than the newest published snapshot: history written, current kept")
    return dg.MaterializeResult(metadata=metadata)


def report_is_current(published_dir, as_of: date) -> bool:
    """Whether ``as_of`` is the newest published snapshot (then the report also goes to current/)."""
    return as_of >= max(published_snapshots(published_dir, "customer_segments"), default=as_of)


@dg.asset(
    partitions_def=snapshot_partitions,
    deps=["published_tables"],
    group_name="publish",
    kinds={"html"},
    owners=OWNERS,
    description="One HTML page per snapshot date: segment sizes, grade and stage distributions, revenue and "
    "the largest migrations, as inline SVG charts (reports/segment_report_<D>.html and current/).",
)
def segment_report(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    with segments.warehouse() as con:
        tables = snapshot_tables(con, as_of, names=("segment_summary", "segment_migrations", "cluster_profiles"))
    summary = pl.from_arrow(tables["segment_summary"])
    moves = pl.from_arrow(tables["segment_migrations"])
    profiles = pl.from_arrow(tables["cluster_profiles"])
    names = {str(r["cluster_id"]): r["cluster_name"] for r in profiles.unique("cluster_id").iter_rows(named=True)}
    page = render_report(as_of, summary, moves, warnings=[], cluster_names=names)
    path = settings.published_dir / "reports" / f"segment_report_{as_of.isoformat()}.html"
    write_text_atomic(path, page)
    if report_is_current(settings.published_dir, as_of):
        write_text_atomic(settings.published_dir / "current" / "segment_report.html", page)
    rfm = summary.filter(pl.col("segmentation") == "rfm_segment").sort("customers", descending=True)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "rfm_segment_sizes": markdown_table(rfm.to_dicts(), ["segment", "customers", "share", "revenue"]),
        }
    )


publishing_assets = [published_tables, segment_report]
