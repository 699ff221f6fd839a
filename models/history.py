"""Per-customer history for CRM flows: ``<column>_previous`` and ``<column>_since`` for every segmentation.

Like a CRM's "previous group" and "date of change": ``_previous`` is the value the customer had before the
current value started (null while the customer has had only one value), ``_since`` the snapshot date the
current value started. Computed from the previous snapshot's row of the same customer only (a join on
customer_id, work proportional to customers): when the value is unchanged both are carried from that row;
when it changed, ``_previous`` is that row's effective value and ``_since`` this snapshot's date. A customer
new in this snapshot, or the first snapshot, starts on this snapshot's date. Snapshots
are expected in date order: a backfill of an older date does not rewrite later snapshots' history.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from models.registry import Registry


def history_columns(registry: Registry) -> list[str]:
    """The columns the previous snapshot must provide: customer_id, each value, its ``_previous`` and ``_since``."""
    cols = ["customer_id"]
    for seg in registry:
        cols += [seg.column, f"{seg.column}_previous", f"{seg.column}_since"]
    return cols


def add_history(
    frame: pl.DataFrame, previous: pl.DataFrame | None, registry: Registry, as_of: date, previous_date: date | None
) -> pl.DataFrame:
    """Add ``<column>_previous`` and ``<column>_since`` for every segmentation column of ``frame``.

    ``previous`` holds the previous snapshot's ``history_columns`` (any may be missing: a column added
    since, or no previous snapshot at all).
    """
    segs = [s for s in registry if s.column in frame.columns]
    if previous is None or previous.is_empty():
        previous = pl.DataFrame({"customer_id": pl.Series([], dtype=pl.String)})
    prev_cols: list[pl.Expr] = [pl.col("customer_id"), pl.lit(True).alias("_had_row")]
    for seg in segs:
        col, dtype = seg.column, frame.schema[seg.column]
        prev_cols.append(
            (pl.col(col).cast(dtype) if col in previous.columns else pl.lit(None, dtype=dtype)).alias(f"_p_{col}")
        )
        before = f"{col}_previous"
        prev_cols.append(
            (pl.col(before).cast(dtype) if before in previous.columns else pl.lit(None, dtype=dtype)).alias(f"_q_{col}")
        )
        since = f"{col}_since"
        prev_cols.append(
            (pl.col(since).cast(pl.Date) if since in previous.columns else pl.lit(None, dtype=pl.Date)).alias(
                f"_s_{col}"
            )
        )
    prev = previous.select(prev_cols)
    joined = frame.join(prev, on="customer_id", how="left", maintain_order="left")
    fallback = pl.lit(previous_date if previous_date is not None else as_of, dtype=pl.Date)
    out: list[pl.Expr] = []
    for seg in segs:
        col = seg.column
        same = pl.col("_had_row").fill_null(False) & pl.col(col).eq_missing(pl.col(f"_p_{col}"))
        out.append(pl.when(same).then(pl.col(f"_q_{col}")).otherwise(pl.col(f"_p_{col}")).alias(f"{col}_previous"))
        out.append(
            pl.when(same)
            .then(pl.col(f"_s_{col}").fill_null(fallback))
            .otherwise(pl.lit(as_of, dtype=pl.Date))
            .alias(f"{col}_since")
        )
    return joined.with_columns(out).select([*frame.columns, *(e.meta.output_name() for e in out)])
