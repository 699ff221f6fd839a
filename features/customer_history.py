"""Read the previous snapshot's rows that per-customer history needs (one snapshot, a few columns)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from features.segment_reports import previous_snapshot
from models.history import history_columns
from models.registry import Registry
from segments.warehouse import table_exists


def previous_history(
    con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry, table: str = "customer_segments"
) -> tuple[date | None, pl.DataFrame | None]:
    """(previous snapshot date, its customer_id + segmentation values + ``_since`` columns) or (None, None).

    Reads only the snapshot just before ``as_of`` and only the columns that exist in the table (a
    segmentation added since has none yet): work proportional to customers, never all history.
    """
    if not table_exists(con, table):
        return None, None
    prev = previous_snapshot(con, as_of, table)
    if prev is None:
        return None, None
    have = {r[0] for r in con.execute(f'describe "{table}"').fetchall()}
    cols = ", ".join(f'"{c}"' for c in history_columns(registry) if c in have)  # registry identifiers only
    frame = con.sql(f'select {cols} from "{table}" where snapshot_date = $d', params={"d": prev}).pl()
    return prev, frame
