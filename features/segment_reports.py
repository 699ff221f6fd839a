"""Segment summaries and migrations between snapshots, computed in SQL over ``customer_segments``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from segments.warehouse import table_exists

SQL_DIR = Path(__file__).resolve().parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def previous_snapshot(con: duckdb.DuckDBPyConnection, as_of: date, table: str = "customer_segments") -> date | None:
    """The latest snapshot date strictly before ``as_of`` in ``table`` (None when there is none)."""
    if not table_exists(con, table):
        return None
    row = con.execute(f'select max(snapshot_date) from "{table}" where snapshot_date < $d', {"d": as_of}).fetchall()
    return row[0][0]


def segment_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame:
    """Customers, share, revenue and averages per segmentation and segment for snapshot ``as_of``."""
    return con.sql(_sql("segment_summary"), params={"as_of": as_of}).pl()


def segment_migrations(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame:
    """Customers moving from -> to between the previous snapshot and ``as_of`` (empty without one)."""
    prev = previous_snapshot(con, as_of)
    if prev is None:
        return pl.DataFrame(
            schema={
                "snapshot_date": pl.Date,
                "previous_snapshot_date": pl.Date,
                "segmentation": pl.String,
                "from_segment": pl.String,
                "to_segment": pl.String,
                "customers": pl.Int64,
            }
        )
    return con.sql(_sql("segment_migrations"), params={"as_of": as_of, "prev": prev}).pl()
