"""Formatting helpers: integer codes, ids, timestamps and cents as polars text columns (no per-row Python)."""

from __future__ import annotations

import numpy as np
import polars as pl

from segments.sample_data.vocabulary import TS_FORMAT, _Calendar


def _labels(codes: np.ndarray, labels: tuple[str, ...] | list[str] | pl.Series) -> pl.Series:
    """String column from integer codes (a gather, no Python objects per row); null where code < 0."""
    idx = pl.Series(codes, dtype=pl.Int64).cast(pl.UInt32, strict=False)  # negative -> null
    table = labels if isinstance(labels, pl.Series) else pl.Series(list(labels), dtype=pl.String)
    return table.gather(idx)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Zero-padded ids like C0000042 for numbers >= 1 (and < 10**width); null where the number is < 1."""
    s = pl.Series("n", numbers, dtype=pl.Int64)
    digits = (pl.when(s >= 1).then(s) + 10**width).cast(pl.String).str.slice(1)  # cheaper than zfill
    return pl.select(pl.format(prefix + "{}", digits).alias("v")).to_series()


def _timestamps(sec: np.ndarray, cal: _Calendar) -> pl.Series:
    """Naive local timestamps (microseconds) from seconds relative to the calendar start."""
    return pl.from_epoch(pl.Series((sec + cal.epoch_s) * 1_000_000), time_unit="us")


def _ts_text(sec: np.ndarray, cal: _Calendar) -> pl.Series:
    """``YYYY-MM-DD HH:MM:SS`` text of timestamps."""
    return _timestamps(sec, cal).dt.strftime(TS_FORMAT)


def _money_expr(cents: pl.Expr) -> pl.Expr:
    """Text with two decimals from integer cents (exact; cents >= 0)."""
    return pl.format("{}.{}", cents // 100, (cents % 100 + 100).cast(pl.String).str.slice(1))


def _money(cents: np.ndarray) -> pl.Series:
    """Two-decimal text from an array of cents."""
    return pl.select(_money_expr(pl.Series(cents, dtype=pl.Int64)).alias("v")).to_series()


def _int_text(values: np.ndarray) -> pl.Series:
    """Integer text; null where the value is negative (the 'empty' marker)."""
    s = pl.Series(values, dtype=pl.Int64)
    return pl.select(pl.when(s >= 0).then(s.cast(pl.String)).alias("v")).to_series()


def _width(minimum: int, largest: int) -> int:
    """Digits for zero-padded ids: at least ``minimum``, more when the numbers need it."""
    return max(minimum, len(str(largest)))
