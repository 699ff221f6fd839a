"""Churn prediction assets per snapshot date D (partitions attached by pipelines/definitions.py): p_alive /
expected purchases / CLV per buyer, the holdout calibration of the purchase model, and churn drivers."""

from datetime import date

import dagster as dg

from assets.common import OWNERS, column_schema, markdown_table
from assets.resources import SegmentsResource
from data_contracts.contracts import load_output_contract
from features.churn_drivers import churn_drivers as churn_drivers_frame
from models.clv_calibration import calibration_finding
from models.settings import load_segmentation_settings
from models.stages import prediction_stage
from segments.warehouse import replace_snapshot


def _schema(name: str) -> dict[str, object]:
    return {"dagster/column_schema": column_schema(load_output_contract(name))}


@dg.multi_asset(
    group_name="prediction",
    specs=[
        dg.AssetSpec(
            "churn_predictions",
            deps=["customer_segments"],
            kinds={"duckdb", "sql", "pymc"},
            owners=OWNERS,
            description="One row per buyer per snapshot date: p_alive, expected purchases and CLV from the "
            "BG/NBD and Gamma-Gamma models of pymc-marketing (MAP), also written into customer_segments.",
        ),
        dg.AssetSpec(
            "model_calibration",
            deps=["customer_segments"],
            kinds={"duckdb", "pymc"},
            owners=OWNERS,
            description="One row per snapshot date and frequency bucket: predicted vs actual purchases in the "
            "holdout (the purchase model refitted on data up to D minus the holdout).",
            metadata=_schema("model_calibration"),
        ),
    ],
)
def churn_predictions(context: dg.AssetExecutionContext, segments: SegmentsResource):
    """Fit on a bounded sample (or reuse the stored fit), predict every buyer of D, calibrate, store everything."""
    as_of = date.fromisoformat(context.partition_key)
    settings = load_segmentation_settings(
        segments.settings().segmentation, windows=segments.settings().windows()
    ).prediction
    with segments.warehouse() as con:
        stage = prediction_stage(con, as_of, settings)
    result = stage.result
    fit = "re-fitted" if result.params.get("refit") else "reused"
    context.log.info(f"prediction model {fit}: {result.params.get('refit_reason')}")
    for warning in result.warnings:
        context.log.warning(warning)
    finding = calibration_finding(result.calibration, settings.calibration.max_error)
    if finding:
        context.log.warning(finding)
    churners = int((result.predictions["predicted_churn"] == "churn").sum())
    yield dg.MaterializeResult(
        asset_key="churn_predictions",
        metadata={
            "dagster/row_count": stage.rows,
            "snapshot_date": as_of.isoformat(),
            "predicted_churn": churners,
            "model_fit": f"{fit}: {result.params.get('refit_reason')}" if "refit" in result.params else "disabled",
            "summary_seconds": round(stage.summary_seconds, 2),
            "fit_and_predict_seconds": round(stage.model_seconds, 2),
            "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings) or "none"),
            "parameters": dg.MetadataValue.json(result.params),
        },
    )
    yield dg.MaterializeResult(
        asset_key="model_calibration",
        metadata={
            "dagster/row_count": result.calibration.height,
            "calibration_error": result.params.get("calibration_error"),
            "finding": finding or "within bound",
            "calibration": markdown_table(result.calibration.to_dicts(), result.calibration.columns),
        },
    )


@dg.asset(
    name="churn_drivers",
    deps=["churn_predictions"],
    group_name="prediction",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    description="One row per snapshot date, driver and value: churn, at-risk and predicted churn rates of buyers "
    "by NPS class, complaints, satisfaction, source, region, category and cluster, with lift.",
    metadata=_schema("churn_drivers"),
)
def churn_drivers(context: dg.AssetExecutionContext, segments: SegmentsResource) -> dg.MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    with segments.warehouse() as con:
        table = churn_drivers_frame(con, as_of)
        replace_snapshot(con, "churn_drivers", table, as_of)
    top = table.filter(table["driver"] != "all").sort(["churn_lift", "buyers"], descending=True, nulls_last=True)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "top_churn_lifts": markdown_table(
                top.to_dicts(), ["driver", "value_label", "buyers", "churn_rate", "churn_lift"], limit=15
            ),
        }
    )


prediction_assets = [churn_predictions, churn_drivers]
