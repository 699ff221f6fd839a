"""Planted defects: about 0.4 % of rows per source, each kind of defect at least once.

Text sources (orders, feedback) get column rewrites from polars expressions, duplicates inserted right
after the row they copy; browsing defects are planted while building its typed frame (``frames``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from segments.sample_data.formatting import _money_expr

_DEFECT_RATE = 0.004
_BAD_EXPORT_ROWS = 5
_UNPARSEABLE_TS = "2026-13-45 25:00:00"
_FUTURE_YEAR = 2031


def _defect_count(n_rows: int, n_kinds: int) -> int:
    """About 0.4 % of the rows, at least one per kind, never more than half the rows."""
    return min(max(n_kinds, round(_DEFECT_RATE * n_rows)), n_rows // 2)


def _future_text(col: str) -> pl.Expr:
    """Same timestamp text moved to the year 2031 (29 Feb becomes 28 Feb)."""
    moved = pl.lit(str(_FUTURE_YEAR)) + pl.col(col).str.slice(4)
    return moved.str.replace(f"{_FUTURE_YEAR}-02-29", f"{_FUTURE_YEAR}-02-28", literal=True).alias(col)


def _order_mutations() -> dict[str, tuple[pl.Expr, ...]]:
    """Column changes per order defect kind (empty = verbatim copy)."""
    qty = pl.col("quantity").cast(pl.Int64) + 1
    unit = pl.col("unit_price").str.replace(".", "", literal=True).cast(pl.Int64)
    return {
        "non_numeric_amount": (pl.lit("abc").alias("amount"),),
        "negative_amount": ((pl.lit("-") + pl.col("amount")).alias("amount"),),
        "nan_amount": (pl.lit("NaN").alias("amount"),),
        "absurd_amount": (pl.lit("1000000000000.00").alias("amount"),),
        "unparseable_ts": (pl.lit(_UNPARSEABLE_TS).alias("order_ts"),),
        "future_ts": (_future_text("order_ts"),),
        "empty_customer_id": (pl.lit(None, pl.String).alias("customer_id"),),
        "unknown_status": (pl.lit("shipped").alias("status"),),
        "unknown_currency": (pl.lit("XYZ").alias("currency"),),
        "exact_duplicate": (),
        "duplicate_key": (qty.cast(pl.String).alias("quantity"), _money_expr(qty * unit).alias("amount")),
    }


def _feedback_mutations() -> dict[str, tuple[pl.Expr, ...]]:
    """Column changes per feedback defect kind (empty = verbatim copy)."""
    return {
        "rating_out_of_range": (pl.lit("7").alias("rating"),),
        "nps_out_of_range": (pl.lit("11").alias("nps"),),
        "empty_customer_id": (pl.lit(None, pl.String).alias("customer_id"),),
        "unparseable_ts": (pl.lit(_UNPARSEABLE_TS).alias("submitted_ts"),),
        "future_ts": (_future_text("submitted_ts"),),
        "exact_duplicate": (),
        "duplicate_key": (
            pl.lit("1").alias("rating"),
            pl.lit("Edited: duplicate submission").alias("comment"),
        ),
    }


_APPENDED = frozenset({"exact_duplicate", "duplicate_key"})


@dataclass(frozen=True)
class _DefectPlan:
    """Rows to spoil (row positions in file order, sorted) and the defect kind planted at each."""

    pos: np.ndarray
    kind: np.ndarray

    def within(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (relative to ``start``) and kinds of the planned defects in rows [start, stop)."""
        i, j = np.searchsorted(self.pos, [start, stop])
        return self.pos[i:j] - start, self.kind[i:j]


def _plan_defects(rng: np.random.Generator, n_rows: int, n_kinds: int, enabled: bool) -> _DefectPlan:
    """Pick distinct rows for about 0.4 % defects, kinds spread evenly; nothing when disabled."""
    k = _defect_count(n_rows, n_kinds) if enabled else 0
    if k == 0:
        return _DefectPlan(np.empty(0, np.int64), np.empty(0, np.int64))
    pos = np.sort(rng.choice(n_rows, size=k, replace=False))
    return _DefectPlan(pos, rng.permutation(np.arange(k) % n_kinds))


def _apply_text_defects(
    df: pl.DataFrame, pos: np.ndarray, kind: np.ndarray, mutations: dict[str, tuple[pl.Expr, ...]]
) -> pl.DataFrame:
    """Plant defects in a text frame: most kinds rewrite the row in place; duplicates are inserted
    right after the row they copy (so they land in the same file)."""
    if len(pos) == 0:
        return df
    kinds = list(mutations)
    appended = np.isin(kind, [kinds.index(x) for x in _APPENDED if x in kinds])
    take = np.sort(np.concatenate([np.arange(df.height), pos[appended]]))
    df = df[take]
    target = np.searchsorted(take, pos, side="left") + appended  # a copy sits after its original
    for j, name in enumerate(kinds):
        rows = np.sort(target[kind == j])
        exprs = mutations[name]
        if not exprs or len(rows) == 0:
            continue
        new = df[rows].with_columns(*exprs)
        changed = {}
        for e in exprs:
            column = e.meta.output_name()
            values = df[column].clone()
            values.scatter(rows, new[column])
            changed[column] = values
        df = df.with_columns(**changed)
    return df


ORDER_DEFECTS = tuple(_order_mutations())
FEEDBACK_DEFECTS = tuple(_feedback_mutations())
BROWSING_DEFECTS = ("missing_session_id", "unknown_event_type", "future_event_ts")
