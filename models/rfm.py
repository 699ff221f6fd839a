"""RFM scores 1–5 (5 best) among buyers, the FM score, and the cut points used.

Scores are computed on DISTINCT values and joined back, so equal values always get equal scores
and the work grows with the number of distinct values, not customers (PRODUCT.md §6).

Quantile rule (default). Sort the distinct values from worst to best (recency: most days first;
frequency and monetary: smallest first). For a value v let ``worse(v)`` be the number of buyers
whose value is strictly worse and ``n`` the number of scored buyers; then

    score(v) = 1 + floor(5 × worse(v) / n)        (integer arithmetic, exact)

This is the percentile rank of the first customer of the tie group, binned in fifths: with no ties
it gives five equal quintiles; a tie group never straddles a boundary; the worst value always
scores 1. Under heavy ties it degrades gracefully: if half the buyers ordered once, they all score
F1 and the next value starts at F3, so score 2 is simply unused. When fewer than 5 distinct scores
are reached a warning says so.

Fixed rule. Business thresholds from config: recency ``[30, 60, 90, 180]`` are the inclusive upper
bounds of scores 5, 4, 3, 2 (above the last: 1); frequency/monetary thresholds are the inclusive
lower bounds of scores 2, 3, 4, 5 (below the first: 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from models.settings import RfmSettings

BINS = 5
CUT_POINT_VALUE = pl.Decimal(18, 2)
CUT_POINTS_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "metric": pl.String(),
    "score": pl.Int64(),
    "min_value": CUT_POINT_VALUE,
    "max_value": CUT_POINT_VALUE,
    "method": pl.String(),
    "customers": pl.Int64(),
}
SCORE_COLUMNS: tuple[str, ...] = ("r_score", "f_score", "m_score", "fm_score")


@dataclass(frozen=True)
class RfmMetric:
    """One RFM input: its column, the score column it feeds and its direction."""

    column: str
    score_column: str
    lower_is_better: bool
    config_key: str


@dataclass(frozen=True)
class RfmResult:
    """Scored frame (input + r/f/m/fm scores), cut points for publication, and warnings."""

    frame: pl.DataFrame
    cut_points: pl.DataFrame
    warnings: list[str]


def fm_score(f: pl.Expr, m: pl.Expr) -> pl.Expr:
    """round-half-up((F + M) / 2) as an integer: (F + M + 1) // 2; null if either is null."""
    return (f + m + 1) // 2


def quantile_score_table(values: pl.Series, *, lower_is_better: bool, bins: int = BINS) -> pl.DataFrame:
    """Distinct value -> score with the quantile rule above; columns ``value, score, customers``."""
    dist = (
        pl.DataFrame({"value": values})
        .drop_nulls()
        .group_by("value")
        .agg(customers=pl.len().cast(pl.Int64))
        .sort("value", descending=lower_is_better)  # worst first
    )
    n = int(dist["customers"].sum())
    if n == 0:
        return dist.with_columns(score=pl.lit(None, pl.Int64)).select("value", "score", "customers")
    worse = pl.col("customers").cum_sum() - pl.col("customers")
    return dist.with_columns(score=(1 + (bins * worse) // n).cast(pl.Int64)).select("value", "score", "customers")


def _unit(dtype: pl.DataType) -> Decimal:
    """Smallest step of a column's values, to turn exclusive bounds into inclusive ones."""
    if isinstance(dtype, pl.Decimal):
        return Decimal(1).scaleb(-(dtype.scale or 0))
    if dtype.is_integer():
        return Decimal(1)
    return Decimal("0.01")


def _lit(value: Any, dtype: pl.DataType) -> pl.Expr:
    """A threshold literal comparable with a column of ``dtype``."""
    if isinstance(dtype, pl.Decimal):
        return pl.lit(Decimal(str(value))).cast(dtype)
    if dtype.is_float():
        return pl.lit(float(value))
    return pl.lit(value)


def fixed_score_expr(value: pl.Expr, thresholds: list[Any], *, lower_is_better: bool, dtype: pl.DataType) -> pl.Expr:
    """Score 1–5 from four ascending thresholds (see module docstring); null stays null."""
    expr = pl.when(value.is_null()).then(pl.lit(None, pl.Int64))
    if lower_is_better:
        for score, bound in zip((5, 4, 3, 2), thresholds, strict=True):
            expr = expr.when(value <= _lit(bound, dtype)).then(pl.lit(score, pl.Int64))
    else:
        for score, bound in zip((5, 4, 3, 2), reversed(thresholds), strict=True):
            expr = expr.when(value >= _lit(bound, dtype)).then(pl.lit(score, pl.Int64))
    return expr.otherwise(pl.lit(1, pl.Int64))


def fixed_bounds(
    thresholds: list[Any], *, lower_is_better: bool, unit: Decimal
) -> dict[int, tuple[Decimal | None, Decimal | None]]:
    """Inclusive (min, max) value range of each score under the fixed rule; None = open end."""
    t = [Decimal(str(x)) for x in thresholds]
    if lower_is_better:  # t = upper bounds of 5, 4, 3, 2
        return {
            5: (None, t[0]),
            4: (t[0] + unit, t[1]),
            3: (t[1] + unit, t[2]),
            2: (t[2] + unit, t[3]),
            1: (t[3] + unit, None),
        }
    # t = lower bounds of 2, 3, 4, 5
    return {
        1: (None, t[0] - unit),
        2: (t[0], t[1] - unit),
        3: (t[1], t[2] - unit),
        4: (t[2], t[3] - unit),
        5: (t[3], None),
    }


def score_rfm(
    features: pl.DataFrame,
    settings: RfmSettings,
    snapshot_date: date | None,
    *,
    buyer_column: str = "is_buyer",
    recency_column: str = "recency_days",
    frequency_column: str = "frequency",
    monetary_column: str = "monetary",
) -> RfmResult:
    """Add ``r_score, f_score, m_score, fm_score`` (Int64, buyers only) and build the cut points."""
    metrics = (
        RfmMetric(recency_column, "r_score", True, "recency_days"),
        RfmMetric(frequency_column, "f_score", False, "frequency"),
        RfmMetric(monetary_column, "m_score", False, "monetary"),
    )
    is_buyer = pl.col(buyer_column).fill_null(False)
    buyers = features.filter(is_buyer)
    frame = features
    warnings: list[str] = []
    cut_rows: list[dict[str, Any]] = []
    if buyers.height == 0:
        warnings.append("rfm: no buyers in this snapshot; every RFM score is null")

    for metric in metrics:
        dtype = features.schema[metric.column]
        if settings.method == "quantile":
            table = quantile_score_table(buyers[metric.column], lower_is_better=metric.lower_is_better)
            frame = frame.join(
                table.select(pl.col("value").alias(metric.column), pl.col("score").alias(metric.score_column)),
                on=metric.column,
                how="left",
                maintain_order="left",
                nulls_equal=False,
            )
            rows, note = quantile_cut_rows(metric.config_key, table)
            cut_rows += rows
            warnings += [note] if note else []
        else:
            thresholds = getattr(settings.fixed, metric.config_key)
            frame = frame.with_columns(
                fixed_score_expr(
                    pl.col(metric.column), thresholds, lower_is_better=metric.lower_is_better, dtype=dtype
                ).alias(metric.score_column)
            )
            counts = dict(
                frame.filter(is_buyer & pl.col(metric.score_column).is_not_null())
                .group_by(metric.score_column)
                .len()
                .iter_rows()
            )
            bounds = fixed_bounds(thresholds, lower_is_better=metric.lower_is_better, unit=_unit(dtype))
            cut_rows += fixed_cut_rows(metric.config_key, bounds, counts)
        frame = frame.with_columns(
            pl.when(is_buyer).then(pl.col(metric.score_column)).otherwise(None).alias(metric.score_column)
        )

    frame = frame.with_columns(fm_score(pl.col("f_score"), pl.col("m_score")).cast(pl.Int64).alias("fm_score"))
    cut_points = _cut_points_frame(cut_rows, snapshot_date, settings.method)
    return RfmResult(frame=frame, cut_points=cut_points, warnings=warnings)


def quantile_cut_rows(metric: str, table: pl.DataFrame) -> tuple[list[dict[str, Any]], str | None]:
    """Cut-point rows of one metric from its distinct-value score table (``value, score, customers``),
    and the warning when ties leave scores unreachable (None otherwise). Shared by every engine."""
    summary = (
        table.group_by("score")
        .agg(min_value=pl.col("value").min(), max_value=pl.col("value").max(), customers=pl.col("customers").sum())
        .sort("score")
    )
    rows = [{"metric": metric, **row} for row in summary.iter_rows(named=True)]
    reached = summary["score"].to_list()
    if not table.height or len(reached) >= BINS:
        return rows, None
    return rows, (
        f"rfm {metric}: only {len(reached)} distinct scores {reached} are reachable "
        f"({table.height} distinct values among {int(table['customers'].sum())} buyers); "
        "tied values share a score, so the other scores are unused"
    )


def fixed_cut_rows(metric: str, bounds: dict[int, tuple[Any, Any]], counts: dict[int, int]) -> list[dict[str, Any]]:
    """Cut-point rows of one metric under fixed thresholds: every score with its bounds and buyers."""
    return [
        {
            "metric": metric,
            "score": s,
            "min_value": bounds[s][0],
            "max_value": bounds[s][1],
            "customers": counts.get(s, 0),
        }
        for s in range(1, BINS + 1)
    ]


def _cut_points_frame(rows: list[dict[str, Any]], snapshot_date: date | None, method: str) -> pl.DataFrame:
    """Rows -> the published ``rfm_cut_points`` schema, sorted by metric and score."""
    if not rows:
        return pl.DataFrame(schema=CUT_POINTS_SCHEMA)
    raw = pl.DataFrame(
        {
            "metric": [r["metric"] for r in rows],
            "score": [r["score"] for r in rows],
            "min_value": [None if r["min_value"] is None else Decimal(str(r["min_value"])) for r in rows],
            "max_value": [None if r["max_value"] is None else Decimal(str(r["max_value"])) for r in rows],
            "customers": [int(r["customers"]) for r in rows],
        },
        schema_overrides={"min_value": pl.Decimal(38, 10), "max_value": pl.Decimal(38, 10)},
    )
    order = {"recency_days": 0, "frequency": 1, "monetary": 2}
    return (
        raw.with_columns(
            snapshot_date=pl.lit(snapshot_date, pl.Date),
            method=pl.lit(method),
            _order=pl.col("metric").replace_strict(order, return_dtype=pl.Int64),
        )
        .sort("_order", "score")
        .select([pl.col(c).cast(t) for c, t in CUT_POINTS_SCHEMA.items()])
    )
