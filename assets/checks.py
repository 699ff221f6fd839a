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

from data_contracts.contracts import INPUT_SOURCES, Contract, load_contract, load_output_contract
from pipelines.resources import SegmentsResource
from segments.ingest import META_COLUMNS

# One Dagster check per property family; each family gathers the GX expectations of that kind.
FAMILIES: dict[str, str] = {
    "schema": "columns present with the contract's storage types",
    "not_null": "required and key columns are never null",
    "ranges": "values within the contract's min/max",
    "accepted_values": "values in the contract's accepted sets",
    "keys_unique": "the primary key is unique (one row per key)",
    "not_in_future": "no timestamp after the run that loaded it",
    "has_rows": "the table is not empty (warn)",
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
    if check == "has_rows":
        return "has_rows"
    return "schema"


def _examples(outcomes: Iterable[Any]) -> list[dict[str, Any]]:
    return [o.to_dict() for o in outcomes][:10]


def family_results(report: Any, asset_key: dg.AssetKey, families: Sequence[str]) -> list[dg.AssetCheckResult]:
    """One result per family: failed blocking outcomes -> ERROR, failed warn outcomes -> WARN."""
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
                check_name=fam,
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
        from data_contracts.suites import build_suite, validate

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
            con.execute(f'create or replace view "{view}" as select * from "{source}" where _run_id = \'{run_id}\'')
            try:
                report = validate(con, view, suite)
            finally:
                con.execute(f'drop view if exists "{view}"')
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


def snapshot_view_sql(contract: Contract) -> str:
    """Select the contract's columns of one snapshot date ($d) from the warehouse table."""
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    return f'select {cols} from "{contract.name}" where snapshot_date = $d'


def validate_snapshot(con: Any, name: str, as_of: date) -> Any:
    """Validate one snapshot of output table ``name`` against its output contract's suite."""
    from data_contracts.suites import build_suite, validate

    contract = load_output_contract(name)
    view = f"_check_{name}"
    # A plain view (not temp): the validator reads through cursors, which do not see temp objects.
    # The date literal comes from a ``date`` object, never from user text.
    sql = snapshot_view_sql(contract).replace("$d", f"date '{as_of.isoformat()}'")
    con.execute(f'create or replace view "{view}" as {sql}')
    try:
        suite = build_suite(contract, table_name=view, lineage_columns=())
        return validate(con, view, suite)
    finally:
        con.execute(f'drop view if exists "{view}"')


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
        for res in family_results(report, dg.AssetKey(name), OUTPUT_FAMILIES):
            yield dg.AssetCheckResult(
                asset_key=res.asset_key,
                check_name=f"contract_{res.check_name}",
                passed=res.passed,
                severity=res.severity,
                metadata=res.metadata,
                description=res.description,
            )

    return _check


output_contract_checks = [
    _output_contract_checks(n) for n in ("customer_segments", "segment_summary", "segment_migrations", "rfm_cut_points")
]
