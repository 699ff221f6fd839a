"""Segment sizes per region (or another grouping column): ``segment_summary_by_group``.

A separate table rather than extra rows of ``segment_summary``, so the summary keeps its key and its
"shares sum to 1 per segmentation" invariant, and readers that ignore regions are unaffected.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from models.registry import Registry

SQL = Path(__file__).resolve().parent / "sql" / "segment_summary_by_group.sql"

SCHEMA = {
    "snapshot_date": pl.Date,
    "group_by": pl.String,
    "group_value": pl.String,
    "segmentation": pl.String,
    "segment": pl.String,
    "customers": pl.Int64,
    "share": pl.Float64,
    "revenue": pl.Decimal(18, 2),
}


def group_summary_sql(registry: Registry, group_by: tuple[str, ...]) -> str:
    """The statement with one branch per grouping column and summarized segmentation.

    A segmentation is not summarized within its own column (home_store by home_store: one segment per group).
    """
    # identifiers: registry names/columns and validated settings (lower_snake_case), never user text
    branches = "\n    union all\n    ".join(
        f"select '{g}' as group_by, cast(\"{g}\" as varchar) as group_value, '{s.name}' as segmentation, "
        f'cast("{s.column}" as varchar) as segment, monetary from base'
        for g in group_by
        for s in registry.where("summarized")
        if s.column != g
    )
    return SQL.read_text(encoding="utf-8").replace("/*BRANCHES*/", branches)


def segment_summary_by_group(
    con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry, group_by: tuple[str, ...]
) -> pl.DataFrame:
    """Customers, share within the group and revenue per group value, segmentation and segment.

    A grouping column the snapshot lacks, or holds no value in (a dataset without store_id: every
    home_store null), gives no rows rather than one "unknown" group.
    """
    have = {r[0] for r in con.execute("describe customer_segments").fetchall()}
    present = [g for g in group_by if g in have]
    if present:  # one scan: which grouping columns hold a value in this snapshot
        counts = ", ".join(f'count("{g}")' for g in present)
        row = con.execute(
            f"select {counts} from customer_segments where snapshot_date = $as_of", {"as_of": as_of}
        ).fetchall()[0]
        present = [g for g, n in zip(present, row, strict=True) if n]
    groups = tuple(present)
    if not groups or not registry.where("summarized"):
        return pl.DataFrame(schema=SCHEMA)
    return con.sql(group_summary_sql(registry, groups), params={"as_of": as_of}).pl()
