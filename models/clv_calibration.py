"""The holdout calibration table of the purchase model, and the WARN finding on its error.

Predicted purchases in the holdout (the last ``holdout_days`` before D) against the actual ones, per
frequency bucket of the observation period; models/clv.py predicts, this module tabulates and judges.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from models.settings import PredictionSettings

CALIBRATION_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "holdout_days": pl.Int64(),
    "bucket_order": pl.Int64(),
    "frequency_bucket": pl.String(),
    "customers": pl.Int64(),
    "predicted_mean": pl.Float64(),
    "actual_mean": pl.Float64(),
    "predicted_total": pl.Float64(),
    "actual_total": pl.Float64(),
    "abs_error": pl.Float64(),
    "relative_error": pl.Float64(),
}


def bucket_calibration(frame: pl.DataFrame, settings: PredictionSettings, snapshot_date: date | None) -> pl.DataFrame:
    """The calibration table from ``frequency``, ``holdout_purchases`` and ``predicted`` per customer."""
    cal = settings.calibration
    top = cal.top_bucket
    rows = frame.select(
        bucket_order=pl.min_horizontal(pl.col("frequency"), pl.lit(top)).cast(pl.Int64),
        predicted=pl.col("predicted").cast(pl.Float64),
        actual=pl.col("holdout_purchases").cast(pl.Float64),
    )
    buckets = (
        rows.group_by("bucket_order")
        .agg(
            customers=pl.len().cast(pl.Int64),
            predicted_total=pl.col("predicted").sum(),
            actual_total=pl.col("actual").sum(),
        )
        .sort("bucket_order")
        .with_columns(
            frequency_bucket=pl.when(pl.col("bucket_order") == top)
            .then(pl.format("{}+", pl.col("bucket_order")))
            .otherwise(pl.col("bucket_order").cast(pl.String)),
            abs_error=(pl.col("predicted_total") - pl.col("actual_total")).abs(),
        )
    )
    overall = buckets.select(
        bucket_order=pl.lit(top + 1, pl.Int64),
        customers=pl.col("customers").sum(),
        predicted_total=pl.col("predicted_total").sum(),
        actual_total=pl.col("actual_total").sum(),
        frequency_bucket=pl.lit("all"),
        abs_error=pl.col("abs_error").sum(),
    )
    return (
        pl.concat([buckets, overall], how="diagonal")
        .with_columns(
            snapshot_date=pl.lit(snapshot_date, pl.Date),
            holdout_days=pl.lit(cal.holdout_days, pl.Int64),
            predicted_mean=pl.col("predicted_total") / pl.col("customers"),
            actual_mean=pl.col("actual_total") / pl.col("customers"),
            relative_error=pl.when(pl.col("actual_total") > 0).then(pl.col("abs_error") / pl.col("actual_total")),
        )
        .select([pl.col(c).cast(t) for c, t in CALIBRATION_SCHEMA.items()])
    )


def calibration_error(table: pl.DataFrame) -> float | None:
    """The bucket-weighted relative error: sum |predicted - actual| per bucket / actual purchases."""
    overall = table.filter(pl.col("frequency_bucket") == "all")
    if overall.is_empty():
        return None
    value = overall["relative_error"][0]
    return None if value is None else float(value)


def calibration_finding(table: pl.DataFrame, max_error: float) -> str | None:
    """The WARN message when the holdout error exceeds ``max_error`` (None when within, or not measured)."""
    error = calibration_error(table)
    if error is None or error <= max_error:
        return None
    worst = (
        table.filter(pl.col("frequency_bucket") != "all")
        .sort(["abs_error", "bucket_order"], descending=[True, False])
        .row(0, named=True)
    )
    return (
        f"purchase model holdout error {error:.1%} > {max_error:.0%} "
        f"(segmentation.prediction.calibration.max_error): over the last {worst['holdout_days']} days it predicted "
        f"{table.filter(pl.col('frequency_bucket') == 'all')['predicted_total'][0]:.0f} purchases against "
        f"{table.filter(pl.col('frequency_bucket') == 'all')['actual_total'][0]:.0f}; worst bucket "
        f"{worst['frequency_bucket']} repeat purchases: {worst['predicted_mean']:.3f} predicted vs "
        f"{worst['actual_mean']:.3f} actual per customer"
    )
