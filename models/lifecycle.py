"""Lifecycle stage: exactly one of prospect, new, reactivated, active, at_risk, churned per customer.

"Within N days" means days <= N. First matching stage wins, in this order:

1. prospect    - never bought (``is_buyer`` false/null, or no recency).
2. new         - first purchase within ``new_days`` (30) of the snapshot date.
3. reactivated - last purchase within ``active_days`` (90) AND ``reactivation_gap_days`` (the
                 largest gap between consecutive purchases ending in a purchase within
                 ``active_days``, boundary included) > ``churn_days`` (180): the customer had
                 churned and came back.
4. active      - last purchase within ``active_days`` (90).
5. at_risk     - last purchase within ``churn_days`` (91–180).
6. churned     - last purchase more than ``churn_days`` (> 180) ago.

So new > reactivated > active: a first-time buyer cannot be reactivated, and a returning churner is
reported as reactivated rather than merely active. ``reactivation_gap_days`` is computed upstream
(features) over the same window: ``FeatureParams.reactivation_window_days`` = ``active_days``.
"""

from __future__ import annotations

import polars as pl

from models.settings import LifecycleSettings

STAGES: tuple[str, ...] = ("prospect", "new", "reactivated", "active", "at_risk", "churned")


def lifecycle_stage_expr(
    settings: LifecycleSettings,
    *,
    snapshot_column: str = "snapshot_date",
    buyer_column: str = "is_buyer",
    recency_column: str = "recency_days",
    first_purchase_column: str = "first_purchase_date",
    reactivation_gap_column: str = "reactivation_gap_days",
) -> pl.Expr:
    """Expression giving the stage of each row (see module docstring for the precedence)."""
    recency = pl.col(recency_column)
    since_first = (pl.col(snapshot_column) - pl.col(first_purchase_column)).dt.total_days()
    gap = pl.col(reactivation_gap_column)
    return (
        pl.when(~pl.col(buyer_column).fill_null(False) | recency.is_null())
        .then(pl.lit("prospect"))
        .when(since_first <= settings.new_days)
        .then(pl.lit("new"))
        .when((recency <= settings.active_days) & (gap > settings.churn_days))
        .then(pl.lit("reactivated"))
        .when(recency <= settings.active_days)
        .then(pl.lit("active"))
        .when(recency <= settings.churn_days)
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("churned"))
    )


def assign_lifecycle(frame: pl.DataFrame, settings: LifecycleSettings) -> pl.DataFrame:
    """Add the ``lifecycle_stage`` column."""
    return frame.with_columns(lifecycle_stage_expr(settings).alias("lifecycle_stage"))
