"""Ingestion assets: one per source, loading new or changed landing files into the warehouse."""

from datetime import UTC, datetime

import dagster as dg

from assets.common import OWNERS, column_schema, markdown_table
from assets.engine_stages import ingestion_landing, ingestion_stager
from assets.resources import SegmentsResource, SparkResource
from data_contracts.contracts import INPUT_SOURCES, load_contract
from ingestion.loader import ensure_schema, ingest_source

FILE_COLUMNS = [
    "path",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "duplicates_dropped",
    "error",
    "warnings",
]


def _ingestion_asset(source: str) -> dg.AssetsDefinition:
    contract = load_contract(source)

    @dg.asset(
        name=source,
        group_name="ingestion",
        kinds={"duckdb"},
        owners=OWNERS,
        description=f"{contract.grain.capitalize()}: {contract.description} "
        f"Loaded from landing files checked against data_contracts/{source}.yaml; bad rows go to quarantine.",
        metadata={"dagster/column_schema": column_schema(contract), "contract": f"data_contracts/{source}.yaml"},
        # The warehouse may be held by another run past the lock wait; ingestion is idempotent per file.
        retry_policy=dg.RetryPolicy(max_retries=1, delay=30),
    )
    def _asset(
        context: dg.AssetExecutionContext, segments: SegmentsResource, spark: SparkResource
    ) -> dg.MaterializeResult:
        settings = segments.settings()
        with segments.warehouse() as con:
            ensure_schema(con)
            if source not in settings.sources or not settings.sources[source].enabled:
                n = con.execute(f'select count(*) from "{source}"').fetchall()[0][0]
                return dg.MaterializeResult(metadata={"configured": False, "dagster/row_count": int(n)})
            # The ingest run's own time bounds "timestamp in the future" (orchestration reads the clock).
            stager = ingestion_stager(source, segments, spark)
            landing = ingestion_landing(source, segments, spark)
            report = ingest_source(
                con, settings, source, run_id=context.run_id, run_ts=datetime.now(UTC), stager=stager, landing=landing
            )
        # Messages name files, lines, reasons and config keys, never values (they may be PII).
        for problem in report.problems:
            context.log.warning(f"{source}: {problem}")
        for f in report.files:
            if f.status == "rejected":
                context.log.error(f"{source}: rejected {f.path}: {f.error}")
        for r in report.quarantine_reasons:
            context.log.warning(
                f"{source}: {r['rows']:,} row(s) quarantined, column {r['column']}: {r['reason']} "
                f"(e.g. {r['example']}); hint: {r['hint']}"
            )
        processed = [r for r in report.as_rows() if r["status"] != "unchanged"]
        return dg.MaterializeResult(
            metadata={
                "status": report.status,
                "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
                "problems": dg.MetadataValue.json(report.problems),
                "dagster/row_count": report.table_rows,
                "files_seen": len(report.files),
                "files_loaded": report.count("loaded"),
                "files_unchanged": report.count("unchanged"),
                "files_rejected": report.count("rejected"),
                "files_duplicate": report.count("duplicate_file"),
                "rows_read": report.total("rows_read"),
                "rows_loaded": report.total("rows_loaded"),
                "rows_quarantined": report.total("rows_quarantined"),
                "duplicates_dropped": report.total("duplicates_dropped"),
                "accounting_balanced": all(f.balanced for f in report.files),
                # engine: spark runs the row rules of Parquet files on Spark (docs/scale-out.md)
                "files_staged_on_spark": len(stager.staged) if stager is not None else 0,
                "files_left_to_duckdb": dg.MetadataValue.json(
                    [{"file": f.name, "why": why} for f, why in stager.handed_back] if stager is not None else []
                ),
                # landing_url: files DuckDB read, copied to the driver (the rest never left Spark's file system)
                "files_copied_to_driver": len(landing.copied) if landing is not None else 0,
                "files": markdown_table(processed, FILE_COLUMNS),
            }
        )

    return _asset


ingestion_assets = [_ingestion_asset(s) for s in INPUT_SOURCES]
