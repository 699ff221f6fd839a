"""Churn drivers: churn / at-risk rates of buyers by NPS class, complaints, satisfaction, source,
region, category and cluster, with lift against the overall rate (SQL over ``customer_segments``).

So a CRM team can see *why* customers leave (the source documents' 流失分析). Definitions in the
header of ``sql/churn_drivers.sql``. A lift above 1 means the group churns more than buyers overall;
small groups give noisy lifts, so ``buyers`` is published next to every rate.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import polars as pl

from features.customer_features import FeatureError, _bind, _check_as_of, _relation_exists, load_sql

_COMPLAINTS = re.compile(r"^complaints_[0-9]+d$")
_RATING_BANDS = (
    "case when avg_rating is null then 'unknown' when avg_rating >= 4 then 'satisfied' "
    "when avg_rating >= 3 then 'neutral' else 'dissatisfied' end"
)
DRIVERS: tuple[str, ...] = (
    "nps_class",
    "recent_complaint",
    "satisfaction",
    "source_channel",
    "region",
    "top_category",
    "cluster",
)
DRIVERS_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "driver": pl.String(),
    "driver_value": pl.String(),
    "value_label": pl.String(),
    "buyers": pl.Int64(),
    "buyer_share": pl.Float64(),
    "churned": pl.Int64(),
    "at_risk": pl.Int64(),
    "churn_rate": pl.Float64(),
    "at_risk_rate": pl.Float64(),
    "churn_lift": pl.Float64(),
    "at_risk_lift": pl.Float64(),
    "predicted_churn_rate": pl.Float64(),
    "predicted_churn_lift": pl.Float64(),
}


def churn_drivers(con: duckdb.DuckDBPyConnection, as_of: date, table: str = "customer_segments") -> pl.DataFrame:
    """The churn-drivers table of snapshot ``as_of``, sorted by driver and value (empty without buyers).

    ``table`` must hold the customer_segments columns, with one ``complaints_<N>d`` column (the configured
    complaint window); without a ``predicted_churn`` column (predictions not run) the predicted rates are null.
    """
    as_of = _check_as_of(as_of)
    if table != "customer_segments" and not table.replace("_", "").isalnum():
        raise FeatureError(f"table must be a plain identifier, got {table!r}")
    if not _relation_exists(con, table):
        raise FeatureError(f"table {table!r} not found in the warehouse: materialize customer_segments first")
    columns = [row[0] for row in con.execute(f'describe "{table}"').fetchall()]
    # The complaint count is named by its configured window (complaints_90d by default).
    complaint = sorted(c for c in columns if _COMPLAINTS.match(c))
    if len(complaint) != 1:
        raise FeatureError(
            f"table {table!r} needs exactly one complaints_<N>d column for the recent-complaint driver, "
            f"found {complaint or 'none'}"
        )
    extra = [f'"{complaint[0]}" as recent_complaints']
    # The satisfaction classification (models/classifications) when the table has it; else rating bands.
    extra.append(
        "satisfaction as satisfaction_class" if "satisfaction" in columns else f"{_RATING_BANDS} as satisfaction_class"
    )
    if "predicted_churn" not in columns:
        extra.append("cast(null as varchar) as predicted_churn")
    source = f'(select *, {", ".join(extra)} from "{table}")'
    sql = load_sql("churn_drivers").replace("{source}", source)
    frame = con.sql(sql, params=_bind(sql, {"as_of": as_of})).pl()
    return frame.select([pl.col(c).cast(t) for c, t in DRIVERS_SCHEMA.items()])
