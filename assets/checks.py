"""Asset checks: thin translations of ``data_contracts.table_checks`` findings into ``AssetCheckResult``s.

Blocking checks on the snapshot tables stop ``published_tables`` in the same run, so a bad snapshot is
never published and the previous files stay exactly as they were. The logic, queries and thresholds
live in ``data_contracts/``; here each check loads through the resource, calls one function and reports.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from assets.resources import SegmentsResource
from data_contracts import table_checks as tc
from data_contracts.contracts import INPUT_SOURCES, load_contract
from data_contracts.outcomes import ExpectationOutcome, ValidationReport


def _examples(outcomes: Iterable[ExpectationOutcome]) -> list[dict[str, Any]]:
    return [o.to_dict() for o in outcomes][:10]


def _result(
    asset: str, name: str, outcomes: Sequence[ExpectationOutcome], *, blocking: bool, description: str | None = None
) -> dg.AssetCheckResult:
    """One check result from one or more outcomes (all must succeed)."""
    failed = [o for o in outcomes if not o.success]
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "unexpected": sum(o.unexpected_count or 0 for o in failed),
            "examples": dg.MetadataValue.json([ex for o in failed for ex in o.to_dict()["examples"]][:10]),
            "details": dg.MetadataValue.json(_examples(outcomes)),
        },
        description=description,
    )


def family_results(
    report: ValidationReport, asset_key: dg.AssetKey, families: Sequence[str], prefix: str = ""
) -> list[dg.AssetCheckResult]:
    """One result per family (named ``prefix + family``): failed blocking -> ERROR, failed warn -> WARN."""
    results = []
    for fam, outs in tc.by_family(report, families).items():
        failed = [o for o in outs if not o.success]
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=prefix + fam,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR if any(o.blocking for o in failed) else dg.AssetCheckSeverity.WARN,
                metadata={
                    "expectations": len(outs),
                    "failed": len(failed),
                    "unexpected_rows": sum(o.unexpected_count or 0 for o in failed),
                    "failures": dg.MetadataValue.json(_examples(failed)),
                    "checked": ", ".join(o.check for o in outs) or "none",
                    "rows_validated": report.row_count,
                },
                description=tc.FAMILIES[fam],
            )
        )
    return results


def _input_checks(source: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"{source}_contract_checks",
        specs=[
            dg.AssetCheckSpec(fam, asset=source, blocking=True, description=tc.FAMILIES[fam])
            for fam in tc.INPUT_FAMILIES
        ]
        + [
            dg.AssetCheckSpec(
                "accounting",
                asset=source,
                blocking=True,
                description="every file adds up (read = loaded + quarantined + duplicates) and the table holds "
                "exactly the rows this run loaded",
            ),
            dg.AssetCheckSpec("not_empty", asset=source, description="the table has rows (warn)"),
            dg.AssetCheckSpec(
                "quarantine_share", asset=source, description="share of this run's rows sent to quarantine is small"
            ),
        ],
        can_subset=False,
    )
    def _check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
        settings = segments.settings()
        if source not in settings.sources or not settings.sources[source].enabled:
            # An optional source the config does not load: nothing to check, nothing to warn about.
            for name in (*tc.INPUT_FAMILIES, "accounting", "not_empty", "quarantine_share"):
                yield dg.AssetCheckResult(
                    asset_key=source, check_name=name, passed=True, metadata={"configured": False}
                )
            return
        accepted = tc.accepted_from_settings(load_contract(source), settings)
        with segments.warehouse() as con:
            # The run's own start bounds "timestamp in the future" (orchestration reads the clock).
            found = tc.input_findings(
                con,
                source,
                context.run.run_id,
                accepted,
                datetime.now(UTC),
                sample_rows=settings.quality.input_check_sample_rows,
            )
        context.log.info(f"{source}: validated {found.report.row_count:,} new rows in {found.report.seconds:.1f}s")
        yield from family_results(found.report, dg.AssetKey(source), tc.INPUT_FAMILIES)
        yield _result(source, "accounting", [found.accounting], blocking=True)
        yield dg.AssetCheckResult(
            asset_key=source,
            check_name="not_empty",
            passed=found.table_rows > 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": found.table_rows},
        )
        limit = settings.quality.max_quarantine_share
        yield dg.AssetCheckResult(
            asset_key=source,
            check_name="quarantine_share",
            passed=found.quarantine_share <= limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_read": found.rows_read,
                "rows_quarantined": found.rows_quarantined,
                "share": round(found.quarantine_share, 6),
                "limit": limit,
            },
        )

    return _check


input_checks = [_input_checks(s) for s in INPUT_SOURCES]


def _output_contract_checks(name: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"{name}_contract_checks",
        specs=[
            dg.AssetCheckSpec(f"contract_{fam}", asset=name, blocking=True, description=tc.FAMILIES[fam])
            for fam in tc.OUTPUT_FAMILIES
        ],
        can_subset=False,
    )
    def _check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
        with segments.warehouse() as con:
            report = tc.snapshot_contract_report(con, name, date.fromisoformat(context.partition_key))
        yield from family_results(report, dg.AssetKey(name), tc.OUTPUT_FAMILIES, prefix="contract_")

    return _check


output_contract_checks = [_output_contract_checks(n) for n in tc.CONTRACT_CHECKED_OUTPUTS]


@dg.multi_asset_check(
    name="customer_segments_output_checks",
    specs=[
        dg.AssetCheckSpec(n, asset="customer_segments", blocking=True, description=d)
        for n, d in tc.SEGMENT_CHECKS.items()
    ]
    + [dg.AssetCheckSpec("enough_buyers", asset="customer_segments", description="enough buyers for quantile scores")],
    can_subset=False,
)
def customer_segments_output_checks(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
    minimum = segments.settings().quality.min_buyers_for_quantiles
    with segments.warehouse() as con:
        found = tc.customer_segments_findings(con, date.fromisoformat(context.partition_key), minimum)
    for name, outcomes in found.items():
        yield _result("customer_segments", name, outcomes, blocking=name in tc.SEGMENT_CHECKS)


@dg.multi_asset_check(
    name="segment_summary_output_checks",
    specs=[
        dg.AssetCheckSpec(
            "shares_sum_to_one",
            asset="segment_summary",
            blocking=True,
            description="segment shares sum to 1 within every segmentation",
        ),
        dg.AssetCheckSpec(
            "segment_share_drift",
            asset="segment_summary",
            description="no segment of any drift-watched segmentation moved more than the configured share (warn)",
        ),
        dg.AssetCheckSpec(
            "unassigned_share_growth",
            asset="segment_summary",
            description="the share of buyers a segmentation leaves unassigned did not grow more than configured",
        ),
    ],
    can_subset=False,
)
def segment_summary_output_checks(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
    limits = segments.settings().quality
    with segments.warehouse() as con:
        found = tc.segment_summary_findings(
            con,
            date.fromisoformat(context.partition_key),
            segments.registry(),
            max_share_change=limits.max_segment_share_change,
            max_unassigned_increase=limits.max_unassigned_share_increase,
        )
    for name, outcomes in found.items():
        yield _result("segment_summary", name, outcomes, blocking=name == "shares_sum_to_one")


@dg.asset_check(
    asset="rfm_cut_points",
    name="cut_point_drift",
    description="RFM cut points did not move more than the configured relative amount (warn)",
)
def cut_point_drift_check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource) -> dg.AssetCheckResult:
    limit = segments.settings().quality.max_cut_point_change
    with segments.warehouse() as con:
        found = tc.cut_point_findings(con, date.fromisoformat(context.partition_key), limit)
    return _result("rfm_cut_points", "cut_point_drift", [found], blocking=False)


@dg.asset_check(
    asset="customer_features",
    name="data_freshness",
    description="the newest order is at most quality.max_data_age_days before the snapshot date (warn)",
)
def data_freshness_check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource) -> dg.AssetCheckResult:
    limit = segments.settings().quality.max_data_age_days
    with segments.warehouse() as con:
        found = tc.freshness_findings(con, date.fromisoformat(context.partition_key), limit)
    return _result("customer_features", "data_freshness", [found], blocking=False)


@dg.asset_check(
    asset="customer_segments",
    name="rule_lint",
    description="no tag matches nobody or every customer, no classification default swallows more than "
    "segmentation.rule_lint.max_default_share (warn)",
)
def rule_lint_check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource) -> dg.AssetCheckResult:
    rules = segments.settings().segmentation
    with segments.warehouse() as con:
        found = tc.rule_findings(con, date.fromisoformat(context.partition_key), rules)
    return _result("customer_segments", "rule_lint", [found], blocking=False)


@dg.asset_check(
    asset="model_calibration",
    name="calibration_error",
    description="the purchase model's holdout error is at most segmentation.prediction.calibration.max_error (warn)",
)
def calibration_check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource) -> dg.AssetCheckResult:
    from models.settings import load_segmentation_settings

    limit = load_segmentation_settings(
        segments.settings().segmentation, windows=segments.settings().windows()
    ).prediction.calibration.max_error
    with segments.warehouse() as con:
        found = tc.calibration_findings(con, date.fromisoformat(context.partition_key), limit)
    return _result("model_calibration", "calibration_error", [found], blocking=False)


output_checks = [
    calibration_check,
    rule_lint_check,
    customer_segments_output_checks,
    segment_summary_output_checks,
    cut_point_drift_check,
    data_freshness_check,
]
