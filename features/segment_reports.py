"""Segment summaries and migrations between snapshots, computed in SQL over ``customer_segments``.

Which columns are summarized and tracked comes from the registry of segmentations
(``models/registry.py``): the SQL files hold the shape of the query, and one generated branch per
segmentation (identifiers validated by the registry, values bound as parameters) fills it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from models.registry import Registry, Segmentation
from segments.warehouse import table_exists

SQL_DIR = Path(__file__).resolve().parent / "sql"
MIGRATION_SCHEMA = {
    "snapshot_date": pl.Date,
    "previous_snapshot_date": pl.Date,
    "segmentation": pl.String,
    "from_segment": pl.String,
    "to_segment": pl.String,
    "customers": pl.Int64,
}


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _q(ident: str) -> str:
    return '"' + ident + '"'  # registry identifiers are lower_snake_case (checked in Segmentation)


def _name(seg: Segmentation) -> str:
    return "'" + seg.name + "'"


def previous_snapshot(con: duckdb.DuckDBPyConnection, as_of: date, table: str = "customer_segments") -> date | None:
    """The latest snapshot date strictly before ``as_of`` in ``table`` (None when there is none)."""
    if not table_exists(con, table):
        return None
    row = con.execute(f'select max(snapshot_date) from "{table}" where snapshot_date < $d', {"d": as_of}).fetchall()
    return row[0][0]


def summary_sql(registry: Registry) -> str:
    """The segment_summary statement with one branch per summarized segmentation."""
    segs = registry.where("summarized")
    if not segs:
        raise ValueError("no segmentation is summarized: the registry needs at least one")
    branches = "\n    union all\n    ".join(
        f"select {_name(s)} as segmentation, cast({_q(s.column)} as varchar) as segment, "
        "monetary, frequency, recency_days from base"
        for s in segs
    )
    return _sql("segment_summary").replace("/*SEGMENTATIONS*/", branches)


def migrations_sql(registry: Registry) -> str:
    """The segment_migrations statement with one branch per segmentation tracked in migrations."""
    segs = registry.where("migrations")
    if not segs:
        raise ValueError("no segmentation is tracked in migrations: the registry needs at least one")
    pairs = "".join(
        f'cast(p.{_q(s.column)} as varchar) as "p_{s.name}", cast(c.{_q(s.column)} as varchar) as "c_{s.name}",\n'
        "        "
        for s in segs
    )
    branches = "\n    union all\n    ".join(
        f'select {_name(s)} as segmentation, "p_{s.name}" as from_value, "c_{s.name}" as to_value, '
        "is_new, is_gone from pairs"
        for s in segs
    )
    return _sql("segment_migrations").replace("/*PAIR_COLUMNS*/", pairs).replace("/*SEGMENTATIONS*/", branches)


def segment_summary(con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry) -> pl.DataFrame:
    """Customers, share, revenue and averages per segmentation and segment for snapshot ``as_of``."""
    return con.sql(summary_sql(registry), params={"as_of": as_of}).pl()


def segment_migrations(
    con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry, previous: date | None
) -> pl.DataFrame:
    """Customers moving from -> to between snapshot ``previous`` and ``as_of`` (empty without one)."""
    if previous is None:
        return pl.DataFrame(schema=MIGRATION_SCHEMA)
    return con.sql(migrations_sql(registry), params={"as_of": as_of, "prev": previous}).pl()
