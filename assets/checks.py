"""Asset checks: Great Expectations suites from the contracts, plus cross-table and soft (WARN) checks.

Checks only translate findings into ``AssetCheckResult``s; the findings come from
``data_contracts.suites`` (GX over bounded chunks, uniqueness in DuckDB) and ``data_contracts.quality``.
Blocking checks on the snapshot tables stop ``published_tables`` in the same run, so a bad snapshot is
never published and the previous files stay exactly as they were.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from assets.resources import SegmentsResource
from data_contracts.contracts import INPUT_SOURCES, Contract, load_contract, load_output_contract
from ingestion.loader import META_COLUMNS
from segments.warehouse import read_snapshot

# One Dagster check per property family; each family gathers the GX expectations of that kind.
FAMILIES: dict[str, str] = {
    "schema": "columns present with the contract's storage types",
    "not_null": "required and key columns are never null",
    "ranges": "values within the contract's min/max",
    "accepted_values": "values in the contract's accepted sets",
    "keys_unique": "the primary key is unique (one row per key)",
    "not_in_future": "no timestamp after the run that loaded it",
}


def family_of(check: str) -> str:
    """Family of a suite check name such as ``amount.between`` or ``primary_key.unique``."""
    if check == "columns" or check.endswith(".type"):
        return "schema"
    if check.endswith(".not_null") or check == "require_any":
        return "not_null"
    if check.endswith(".not_after_run"):
        return "not_in_future"
    if check.endswith(".between"):
        return "ranges"
    if check.endswith(".in_set"):
        return "accepted_values"
    if check.endswith(".unique"):
        return "keys_unique"
    if check == "has_rows":  # emptiness is its own check (not_empty) where it matters
        return "has_rows"
    return "schema"


def _examples(outcomes: Iterable[Any]) -> list[dict[str, Any]]:
    return [o.to_dict() for o in outcomes][:10]


def family_results(
    report: Any, asset_key: dg.AssetKey, families: Sequence[str], prefix: str = ""
) -> list[dg.AssetCheckResult]:
    """One result per family (named ``prefix + family``): failed blocking -> ERROR, failed warn -> WARN."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for outcome in report.results:
        grouped[family_of(outcome.check)].append(outcome)
    results = []
    for fam in families:
        outs = grouped.get(fam, [])
        failed = [o for o in outs if not o.success]
        blocking = [o for o in failed if o.blocking]
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=prefix + fam,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                metadata={
                    "expectations": len(outs),
                    "failed": len(failed),
                    "unexpected_rows": sum(o.unexpected_count or 0 for o in failed),
                    "failures": dg.MetadataValue.json(_examples(failed)),
                    "checked": ", ".join(o.check for o in outs) or "none",
                    "rows_validated": report.row_count,
                },
                description=FAMILIES[fam],
            )
        )
    return results


def _accepted(contract: Contract, settings: Any) -> dict[str, list[str]]:
    """Setting name -> values, for contract columns whose accepted values come from the config."""
    return {
        c.accepted_values_from: list(getattr(settings, c.accepted_values_from))
        for c in contract.columns
        if c.accepted_values_from
    }


INPUT_FAMILIES = ["schema", "not_null", "ranges", "accepted_values", "keys_unique", "not_in_future"]
_RUN_ID = re.compile(r"^[0-9a-f-]{1,64}$")


def validate_view(con: Any, view: str, select_sql: str, suite: Any) -> Any:
    """Validate the rows of ``select_sql`` through a temporary plain view.

    A plain view, not a temp one: the validator reads through cursors, which do not see temp objects.
    ``select_sql`` holds only identifiers from contracts and literals we formatted ourselves.
    """
    from data_contracts.gx_runner import validate

    con.execute(f'create or replace view "{view}" as {select_sql}')
    try:
        return validate(con, view, suite)
    finally:
        con.execute(f'drop view if exists "{view}"')


def _input_checks(source: str) -> dg.AssetChecksDefinition:
    contract = load_contract(source)

    @dg.multi_asset_check(
        name=f"{source}_contract_checks",
        specs=[dg.AssetCheckSpec(fam, asset=source, blocking=True, description=FAMILIES[fam]) for fam in INPUT_FAMILIES]
        + [
            dg.AssetCheckSpec("not_empty", asset=source, description="the table has rows (warn)"),
            dg.AssetCheckSpec(
                "quarantine_share",
                asset=source,
                description="share of this run's rows sent to quarantine is small (warn)",
            ),
        ],
        can_subset=False,
    )
    def _check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
        from data_contracts.suites import build_suite

        settings = segments.settings()
        run_id = context.run.run_id
        if not _RUN_ID.match(run_id):
            raise dg.Failure(f"unexpected run id {run_id!r}")
        view = f"_check_{source}"
        # The rows this run loaded: earlier rows passed these checks when they were loaded, so the
        # work stays proportional to new data. Keys are unique across files by ingestion's own check.
        suite = build_suite(
            contract,
            accepted=_accepted(contract, settings),
            max_ts=datetime.now(UTC),
            table_name=view,
            lineage_columns=[n for n, _ in META_COLUMNS],
        )
        with segments.warehouse() as con:
            report = validate_view(con, view, f"select * from \"{source}\" where _run_id = '{run_id}'", suite)
            total = con.execute(f'select count(*) from "{source}"').fetchall()[0][0]
            read, quarantined = con.execute(
                "select coalesce(sum(rows_read), 0), coalesce(sum(rows_quarantined), 0) from ingest_log "
                "where source = $s and run_id = $r",
                {"s": source, "r": run_id},
            ).fetchall()[0]
        context.log.info(f"{source}: validated {report.row_count:,} new rows in {report.seconds:.1f}s")
        yield from family_results(report, dg.AssetKey(source), INPUT_FAMILIES)
        yield dg.AssetCheckResult(
            asset_key=source,
            check_name="not_empty",
            passed=total > 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": int(total)},
        )
        share = quarantined / read if read else 0.0
        limit = settings.quality.max_quarantine_share
        yield dg.AssetCheckResult(
            asset_key=source,
            check_name="quarantine_share",
            passed=share <= limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_read": int(read),
                "rows_quarantined": int(quarantined),
                "share": round(share, 6),
                "limit": limit,
            },
        )

    return _check


input_checks = [_input_checks(s) for s in INPUT_SOURCES]


def validate_snapshot(con: Any, name: str, as_of: date) -> Any:
    """Validate one snapshot of output table ``name`` against its output contract's suite."""
    from data_contracts.suites import build_suite

    contract = load_output_contract(name)
    view = f"_check_{name}"
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    # The date literal comes from a ``date`` object, never from user text.
    sql = f"select {cols} from \"{name}\" where snapshot_date = date '{as_of.isoformat()}'"
    return validate_view(con, view, sql, build_suite(contract, table_name=view, lineage_columns=()))


OUTPUT_FAMILIES = ["schema", "not_null", "ranges", "accepted_values", "keys_unique"]


def _output_contract_checks(name: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"{name}_contract_checks",
        specs=[
            dg.AssetCheckSpec(f"contract_{fam}", asset=name, blocking=True, description=FAMILIES[fam])
            for fam in OUTPUT_FAMILIES
        ],
        can_subset=False,
    )
    def _check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
        as_of = date.fromisoformat(context.partition_key)
        with segments.warehouse() as con:
            report = validate_snapshot(con, name, as_of)
        yield from family_results(report, dg.AssetKey(name), OUTPUT_FAMILIES, prefix="contract_")

    return _check


output_contract_checks = [
    _output_contract_checks(n) for n in ("customer_segments", "segment_summary", "segment_migrations", "rfm_cut_points")
]


def _result(asset: str, name: str, outcomes: Sequence[Any], *, blocking: bool) -> dg.AssetCheckResult:
    """One check result from one or more outcomes (all must succeed)."""
    failed = [o for o in outcomes if not o.success]
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "unexpected": sum(o.unexpected_count or 0 for o in failed),
            "examples": dg.MetadataValue.json([ex for o in failed for ex in o.to_dict()["examples"]][:5]),
            "details": dg.MetadataValue.json(_examples(outcomes)),
        },
    )


SEGMENT_CHECKS = {
    "one_row_per_customer": "exactly one row per customer in the snapshot",
    "customers_out_equal_in": "every customer of customer_features is segmented, and no other",
    "scores_in_range": "R, F and M scores are within 1-5",
    "grades_valid": "grades are A, B or C (or null where the customer has no basis)",
    "buyers_have_segment_and_stage": "every buyer has an RFM segment and a lifecycle stage",
    "cluster_ids_valid": "every cluster id is one of this snapshot's clusters, ids within k",
}


@dg.multi_asset_check(
    name="customer_segments_output_checks",
    specs=[
        dg.AssetCheckSpec(n, asset="customer_segments", blocking=True, description=d) for n, d in SEGMENT_CHECKS.items()
    ]
    + [
        dg.AssetCheckSpec(
            "enough_buyers",
            asset="customer_segments",
            description="enough buyers for quantile scores to mean something (warn)",
        )
    ],
    can_subset=False,
)
def customer_segments_output_checks(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
    from data_contracts import quality as q

    as_of = date.fromisoformat(context.partition_key)
    settings = segments.settings()
    cols = [
        "customer_id",
        "is_buyer",
        "r_score",
        "f_score",
        "m_score",
        "monetary_grade",
        "frequency_grade",
        "engagement_grade",
        "overall_grade",
        "rfm_segment",
        "lifecycle_stage",
        "cluster_id",
    ]
    with segments.warehouse() as con:
        frame = con.sql(
            f"select {', '.join(cols)} from customer_segments where snapshot_date = $d", params={"d": as_of}
        ).pl()
        customers_in = con.execute(
            "select count(*) from customer_features where snapshot_date = $d", {"d": as_of}
        ).fetchall()[0][0]
        profile_ids = {
            r[0]
            for r in con.execute(
                "select cluster_id from cluster_profiles where snapshot_date = $d", {"d": as_of}
            ).fetchall()
        }
    ids = set(frame["cluster_id"].drop_nulls().to_list())
    unknown = sorted(ids - profile_ids)
    cluster_outcomes = [q.cluster_ids_in_range(frame, max(profile_ids, default=0) + 1)]
    if unknown:
        cluster_outcomes.append(
            q.ExpectationOutcome(
                expectation_type="expect_column_values_to_be_in_set",
                columns=("cluster_id",),
                success=False,
                severity="blocking",
                unexpected_count=len(unknown),
                examples=tuple(unknown[:5]),
                check="cluster_ids_in_profiles",
            )
        )
    yield _result("customer_segments", "one_row_per_customer", [q.one_row_per_customer(frame)], blocking=True)
    yield _result(
        "customer_segments",
        "customers_out_equal_in",
        [q.customers_out_equal_in(frame, int(customers_in))],
        blocking=True,
    )
    yield _result("customer_segments", "scores_in_range", [q.scores_in_range(frame)], blocking=True)
    yield _result("customer_segments", "grades_valid", [q.grades_in_set(frame)], blocking=True)
    yield _result("customer_segments", "buyers_have_segment_and_stage", [q.buyers_have(frame)], blocking=True)
    yield _result("customer_segments", "cluster_ids_valid", cluster_outcomes, blocking=True)
    buyers = int(frame["is_buyer"].sum())
    yield _result(
        "customer_segments",
        "enough_buyers",
        [q.min_buyers(buyers, settings.quality.min_buyers_for_quantiles)],
        blocking=False,
    )


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
            description="no RFM segment's share moved more than the configured amount (warn)",
        ),
        dg.AssetCheckSpec(
            "unassigned_share_growth",
            asset="segment_summary",
            description="the unassigned share did not grow more than configured (warn)",
        ),
    ],
    can_subset=False,
)
def segment_summary_output_checks(context: dg.AssetCheckExecutionContext, segments: SegmentsResource):
    from data_contracts import quality as q
    from features.segment_reports import previous_snapshot

    as_of = date.fromisoformat(context.partition_key)
    limits = segments.settings().quality
    with segments.warehouse() as con:
        curr = read_snapshot(con, "segment_summary", as_of)
        prev_date = previous_snapshot(con, as_of, "segment_summary")
        prev = read_snapshot(con, "segment_summary", prev_date) if prev_date else None
    per_segmentation = [q.shares_sum_to_one(part) for _, part in curr.group_by("segmentation", maintain_order=True)]
    yield _result(
        "segment_summary",
        "shares_sum_to_one",
        per_segmentation
        or [
            q.ExpectationOutcome(
                expectation_type="expect_table_row_count_to_be_between",
                columns=(),
                success=False,
                severity="blocking",
                check="summary_not_empty",
            )
        ],
        blocking=True,
    )

    def rfm(frame: Any) -> Any:
        return (
            None
            if frame is None
            else frame.filter(frame["segmentation"] == "rfm_segment").rename({"segment": "rfm_segment"})
        )

    yield _result(
        "segment_summary",
        "segment_share_drift",
        [q.share_drift(rfm(prev), rfm(curr), limits.max_segment_share_change)],
        blocking=False,
    )
    yield _result(
        "segment_summary",
        "unassigned_share_growth",
        [
            q.unassigned_share_growth(
                rfm(prev), rfm(curr), label="unassigned", max_increase=limits.max_unassigned_share_increase
            )
        ],
        blocking=False,
    )


@dg.asset_check(
    asset="rfm_cut_points",
    name="cut_point_drift",
    description="RFM cut points did not move more than the configured relative amount (warn)",
)
def cut_point_drift_check(context: dg.AssetCheckExecutionContext, segments: SegmentsResource) -> dg.AssetCheckResult:
    from data_contracts import quality as q
    from features.segment_reports import previous_snapshot

    as_of = date.fromisoformat(context.partition_key)
    limit = segments.settings().quality.max_cut_point_change

    def cuts(con: Any, d: date) -> dict[str, float]:
        rows = con.execute(
            "select metric, score, min_value from rfm_cut_points where snapshot_date = $d "
            "and min_value is not null order by metric, score",
            {"d": d},
        ).fetchall()
        return {f"{m}:{s}": float(v) for m, s, v in rows}

    with segments.warehouse() as con:
        prev_date = previous_snapshot(con, as_of, "rfm_cut_points")
        curr = cuts(con, as_of)
        prev = cuts(con, prev_date) if prev_date else None
    return _result("rfm_cut_points", "cut_point_drift", [q.cut_point_drift(prev, curr, limit)], blocking=False)


output_checks = [customer_segments_output_checks, segment_summary_output_checks, cut_point_drift_check]
