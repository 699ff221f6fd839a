"""Warehouse tables of ingestion and the manifest that makes it idempotent.

The manifest keys a file on its path, its content hash and the fingerprint of the config that read
it (renames, format, delimiter, timestamp format, zones, currency, separators, earliest date and the
contract). The same file under the same config is skipped; a changed file or a changed fingerprint
reloads it, replacing the rows and quarantine the earlier version left.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from data_contracts.contracts import load_contract
from ingestion.quarantine import QUARANTINE_COLUMNS
from ingestion.readers import q
from segments.config import Settings

if TYPE_CHECKING:
    from ingestion.report import FileResult

MANIFEST_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR"),
    ("path", "VARCHAR"),
    ("content_hash", "VARCHAR"),
    ("size_bytes", "BIGINT"),
    ("format", "VARCHAR"),
    ("status", "VARCHAR"),
    ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("duplicates_dropped", "BIGINT"),
    ("error", "VARCHAR"),
    ("warnings", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("ingested_at", "TIMESTAMP"),
    ("config_fingerprint", "VARCHAR"),
]
META_COLUMNS: list[tuple[str, str]] = [("_file", "VARCHAR"), ("_line", "BIGINT"), ("_run_id", "VARCHAR")]


def _create(con: duckdb.DuckDBPyConnection, table: str, cols: list[tuple[str, str]]) -> None:
    existing = {
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where table_name = $t and schema_name = 'main' "
            "and database_name = current_database()",
            {"t": table},
        ).fetchall()
    }
    if not existing:
        body = ", ".join(f"{q(n)} {t}" for n, t in cols)
        con.execute(f"create table if not exists {q(table)} ({body})")
        return
    # Warehouses from before a column was added get it (NULL for old rows).
    for n, t in cols:
        if n not in existing:
            con.execute(f"alter table {q(table)} add column {q(n)} {t}")


def ensure_schema(con: duckdb.DuckDBPyConnection, sources: list[str] | None = None) -> None:
    """Create the source tables, quarantine and manifest if missing (idempotent)."""
    for name in sources or ["orders", "browsing", "feedback", "customers"]:
        _create(con, name, load_contract(name).storage_columns() + META_COLUMNS)
    _create(con, "quarantine", QUARANTINE_COLUMNS)
    _create(con, "ingest_log", MANIFEST_COLUMNS)
    _create(con, "ingest_manifest", MANIFEST_COLUMNS)


def config_fingerprint(settings: Settings, source: str) -> str:
    """Hash of everything in the config and contract that changes how a file of ``source`` is read."""
    src = settings.sources[source]
    contract = load_contract(source)
    parts = {
        "format": src.format,
        "delimiter": src.delimiter,
        "rename": sorted(src.rename.items()),
        "timestamp_format": src.timestamp_format,
        "time_zone": settings.source_time_zone(source),
        "business_time_zone": settings.time_zone,  # local dates are derived at load
        "currency": settings.source_currency(source),
        "currencies": sorted(settings.currencies),
        "decimal_separator": src.decimal_separator,
        "thousands_separator": src.thousands_separator,
        "currency_symbol": src.currency_symbol,
        "earliest_date": settings.source_earliest_date(source).isoformat(),
        "contract": contract.model_dump_json(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def previous(con: duckdb.DuckDBPyConnection, source: str, path: str) -> tuple[str | None, str | None]:
    """(content hash, config fingerprint) the manifest holds for ``path``, or (None, None)."""
    rows = con.execute(
        "select content_hash, config_fingerprint from ingest_manifest where source = $s and path = $p",
        {"s": source, "p": path},
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def loaded_twin(con: duckdb.DuckDBPyConnection, source: str, digest: str, fingerprint: str, path: str):
    """(path, rows read) of another file with the same content loaded under the same config, if any."""
    rows = con.execute(
        "select path, rows_read from ingest_manifest where source = $s and content_hash = $h "
        "and config_fingerprint = $fp and status = 'loaded' and path <> $p order by path limit 1",
        {"s": source, "h": digest, "fp": fingerprint, "p": path},
    ).fetchall()
    return (rows[0][0], int(rows[0][1])) if rows else None


def forget(con: duckdb.DuckDBPyConnection, source: str, path: str) -> None:
    """Remove what an earlier version of this file loaded or quarantined."""
    con.execute(f"delete from {q(source)} where _file = $p", {"p": path})
    con.execute("delete from quarantine where source = $s and file = $p", {"s": source, "p": path})


def write_manifest(
    con: duckdb.DuckDBPyConnection,
    res: FileResult,
    run_id: str,
    run_ts: datetime,
    fingerprint: str,
    *,
    log_only: bool = False,
) -> None:
    """Replace the file's manifest row and append the attempt to ``ingest_log`` (only the log: ``log_only``)."""
    row = {
        **asdict(res),
        "warnings": "; ".join(res.warnings) or None,
        "run_id": run_id,
        "ingested_at": run_ts,
        "config_fingerprint": fingerprint,
    }
    names = [n for n, _ in MANIFEST_COLUMNS]
    params = {n: row[n] for n in names}
    cols = ", ".join(q(n) for n in names)
    placeholders = ", ".join(f"${n}" for n in names)
    if not log_only:
        con.execute(
            "delete from ingest_manifest where source = $source and path = $path",
            {"source": res.source, "path": res.path},
        )
        con.execute(f"insert into ingest_manifest ({cols}) values ({placeholders})", params)
    con.execute(f"insert into ingest_log ({cols}) values ({placeholders})", params)


def mark_stale(con: duckdb.DuckDBPyConnection, source: str, paths: list[str]) -> None:
    """Make the next ingestion reload ``paths`` (their rows stay until the reload replaces them)."""
    for p in paths:
        con.execute(
            "update ingest_manifest set config_fingerprint = 'stale' where source = $s and path = $p",
            {"s": source, "p": p},
        )
