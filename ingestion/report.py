"""What ingestion tells the user: per-file accounting, per-source status and the top quarantine reasons.

Each reason comes with a count, one example (file:line and the value as quarantined, so PII is masked)
and a hint naming the config key that usually fixes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from data_contracts.contracts import load_contract


@dataclass
class FileResult:
    """Row accounting and outcome of one landing file."""

    source: str
    path: str
    content_hash: str
    size_bytes: int
    format: str
    status: str  # loaded | rejected | unchanged | duplicate_file
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """rows_read == loaded + quarantined + dropped."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.duplicates_dropped


@dataclass
class IngestReport:
    """Outcome of ingesting one source: one result per landing file seen, status and reasons."""

    source: str
    files: list[FileResult]
    table_rows: int = 0
    problems: list[str] = field(default_factory=list)
    status: str = "OK"  # OK | QUARANTINED n (rows) | REJECTED n (files), over the source's current state
    quarantine_reasons: list[dict[str, Any]] = field(default_factory=list)

    def total(self, attr: str) -> int:
        """Sum of a count over the files processed in this run (unchanged files excluded)."""
        return sum(getattr(f, attr) for f in self.files if f.status != "unchanged")

    def count(self, status: str) -> int:
        """Number of files with ``status``."""
        return sum(f.status == status for f in self.files)

    def as_rows(self) -> list[dict[str, Any]]:
        """Plain dicts, one per file, for metadata tables."""
        return [{**asdict(f), "warnings": "; ".join(f.warnings)} for f in self.files]


def hint(source: str, rule: str, column: str | None, reason: str) -> str:
    """The config key (or action) that usually fixes quarantine rows of this kind."""
    s = f"sources.{source}"
    ctype = None
    if column and "," not in column:
        try:
            ctype = load_contract(source).column(column).type
        except KeyError:
            ctype = None
    if rule == "parse":
        if "encoding" in reason:
            return "re-export the file as UTF-8"
        return f"check {s}.delimiter and the quoting of the export"
    if rule == "required":
        return f"map the file's column onto {column} with {s}.rename, or fill it in the export"
    if rule == "type" and ctype == "timestamp":
        if "time-zone" in reason or "daylight" in reason:
            return f"{s}.time_zone, or export times with an offset"
        return f"{s}.timestamp_format (strftime codes, e.g. '%d/%m/%Y %H:%M')"
    if rule == "type" and ctype in ("decimal", "integer", "double"):
        if "currency symbol" in reason:
            return f"{s}.currency_symbol"
        return f"{s}.decimal_separator / {s}.thousands_separator"
    if rule == "earliest":
        return f"earliest_date (or {s}.earliest_date) if such old dates are real"
    if rule == "future":
        return f"{s}.time_zone (naive times are read in it), or the source clock"
    if rule == "accepted":
        return "currencies" if column == "currency" else f"the accepted values in data_contracts/{source}.yaml"
    if rule in ("duplicate_key", "key_conflict"):
        return "fix the export: one row per key, one customer per order"
    if rule == "precision":
        return "export amounts rounded to the cent"
    return "fix the value in the export"


def summarize(con: duckdb.DuckDBPyConnection, source: str, top: int = 5) -> tuple[str, list[dict[str, Any]]]:
    """Status and top quarantine reasons of ``source`` as the warehouse holds it now (every current file)."""
    rejected, quarantined = con.execute(
        "select count(*) filter (where status = 'rejected'), coalesce(sum(rows_quarantined), 0) "
        "from ingest_manifest where source = $s",
        {"s": source},
    ).fetchall()[0]
    status = f"REJECTED {rejected}" if rejected else f"QUARANTINED {quarantined}" if quarantined else "OK"
    # Key conflicts name their key values in the reason: group those by kind, the rest by the exact reason.
    rows = con.execute(
        """
        with g as (
            select coalesce(rule, 'unknown') as rule, column_name,
                   case when rule in ('duplicate_key', 'key_conflict') then rule else reason end as grp,
                   file, line, value, reason
            from quarantine where source = $s
        )
        select rule, column_name, count(*) as n,
               arg_min(reason, (file, line)) as reason,
               arg_min(file || ':' || cast(line as varchar), (file, line)) as at,
               arg_min(value, (file, line)) as value
        from g group by rule, column_name, grp
        order by n desc, rule, column_name nulls first, reason
        limit $top
        """,
        {"s": source, "top": top},
    ).fetchall()
    reasons = [
        {
            "column": col,
            "reason": reason,
            "rows": int(n),
            "example": at,
            "value": value,
            "hint": hint(source, rule, col, reason),
        }
        for rule, col, n, reason, at, value in rows
    ]
    return status, reasons
