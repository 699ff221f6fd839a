"""Every quality check of the pipeline as a plain function: warehouse in, named findings out.

The Dagster checks in ``assets/checks.py`` only call these and translate the findings into
``AssetCheckResult``s (STYLE.md: thin checks). Queries bind their values as parameters; identifiers come
from the contracts and the registry of segmentations; thresholds come in as arguments from the config.

* ``input_findings``: a source's contract suite on the rows one run loaded, plus row counts.
* ``snapshot_contract_report``: one snapshot of an output table against its output contract.
* ``customer_segments_findings``: grain, customers in = out, scores, grades, buyers segmented, clusters.
* ``segment_summary_findings``: shares sum to 1; share drift of every registered segmentation; growth of
  the share of *buyers* a segmentation leaves unassigned.
* ``cut_point_findings``: RFM cut points drifting.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb

from data_contracts import quality as q
from data_contracts.contracts import Contract, load_contract, load_output_contract
from data_contracts.outcomes import ExpectationOutcome, ValidationReport
from models.registry import Registry
from segments.warehouse import read_snapshot, table_exists

# One Dagster check per property family; each family gathers the GX expectations of that kind.
FAMILIES: dict[str, str] = {
    "schema": "columns present with the contract's storage types",
    "not_null": "required and key columns are never null",
    "ranges": "values within the contract's min/max",
    "accepted_values": "values in the contract's accepted sets",
    "keys_unique": "the primary key is unique (one row per key)",
    "not_in_future": "no timestamp after the run that loaded it",
}
INPUT_FAMILIES = ("schema", "not_null", "ranges", "accepted_values", "keys_unique", "not_in_future")
OUTPUT_FAMILIES = ("schema", "not_null", "ranges", "accepted_values", "keys_unique")
# Output tables with a per-snapshot contract check.
CONTRACT_CHECKED_OUTPUTS = ("customer_segments", "segment_summary", "segment_migrations", "rfm_cut_points")
LINEAGE = ("_file", "_line", "_run_id")

SEGMENT_CHECKS: dict[str, str] = {
    "one_row_per_customer": "exactly one row per customer in the snapshot",
    "customers_out_equal_in": "every customer of customer_features is segmented, and no other",
    "scores_in_range": "R, F and M scores are within 1-5",
    "grades_valid": "grades are A, B or C (or null where the customer has no basis)",
    "buyers_have_segment_and_stage": "every buyer has an RFM segment and a lifecycle stage",
    "cluster_ids_valid": "every cluster id is one of this snapshot's clusters, ids within k",
}
_SEGMENT_COLUMNS = (
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
)
_RUN_ID = re.compile(r"^[0-9a-f-]{1,64}$")
UNASSIGNED = "unassigned"


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


def by_family(report: ValidationReport, families: Sequence[str]) -> dict[str, list[ExpectationOutcome]]:
    """The report's outcomes grouped by family, one (possibly empty) list per family asked for."""
    grouped: dict[str, list[ExpectationOutcome]] = defaultdict(list)
    for outcome in report.results:
        grouped[family_of(outcome.check)].append(outcome)
    return {fam: grouped.get(fam, []) for fam in families}


def validate_view(con: duckdb.DuckDBPyConnection, view: str, select_sql: str, suite: Any) -> ValidationReport:
    """Validate the rows of ``select_sql`` through a temporary plain view.

    A plain view, not a temp one: the validator reads through cursors, which do not see temp objects.
    ``select_sql`` holds only identifiers from contracts and literals formatted from typed values.
    """
    from data_contracts.gx_runner import validate

    con.execute(f'create or replace view "{view}" as {select_sql}')
    try:
        return validate(con, view, suite)
    finally:
        con.execute(f'drop view if exists "{view}"')


def accepted_from_settings(contract: Contract, settings: Any) -> dict[str, list[str]]:
    """Setting name -> values, for contract columns whose accepted values come from the config."""
    return {
        c.accepted_values_from: list(getattr(settings, c.accepted_values_from))
        for c in contract.columns
        if c.accepted_values_from
    }


@dataclass(frozen=True)
class InputFindings:
    """A source's contract suite on (a bounded sample of) one run's rows, its accounting, and row counts."""

    report: ValidationReport
    accounting: ExpectationOutcome
    table_rows: int
    rows_read: int
    rows_quarantined: int

    @property
    def quarantine_share(self) -> float:
        """Share of the run's rows sent to quarantine."""
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def accounting_outcome(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> ExpectationOutcome:
    """Every file of the run adds up (read = loaded + quarantined + duplicates) and the table holds exactly
    the rows the run says it loaded. Blocking: a mismatch means rows were lost or invented."""
    files = con.execute(
        "select path, rows_read, rows_loaded, rows_quarantined, duplicates_dropped from ingest_log "
        "where source = $s and run_id = $r order by path",
        {"s": source, "r": run_id},
    ).fetchall()
    bad = [
        f"{p}: read {r} != loaded {ld} + quarantined {q} + duplicates {d}"
        for p, r, ld, q, d in files
        if (r or 0) != (ld or 0) + (q or 0) + (d or 0)
    ]
    loaded = sum(f[2] or 0 for f in files)
    in_table = con.execute(f'select count(*) from "{source}" where _run_id = $r', {"r": run_id}).fetchall()[0][0]
    if in_table != loaded:
        bad.append(f"{source} holds {in_table} rows of this run, the files say {loaded} were loaded")
    return ExpectationOutcome(
        expectation_type="expect_row_accounting_to_add_up",
        columns=(),
        success=not bad,
        severity="blocking",
        unexpected_count=len(bad),
        element_count=len(files) + 1,
        examples=tuple(bad[:5]),
        check="accounting",
        observed={"files": len(files), "rows_loaded": loaded, "rows_in_table": int(in_table)},
    )


def _run_input_suite(
    con: duckdb.DuckDBPyConnection,
    source: str,
    view: str,
    run_id: str,
    accepted: Mapping[str, Sequence[str]],
    run_ts: datetime,
    sample_rows: int,
    seed: int,
) -> ValidationReport:
    """The contract suite of ``source`` on the rows of run ``run_id`` (or a repeatable sample of them)."""
    from data_contracts.suites import build_suite

    contract = load_contract(source)
    suite = build_suite(contract, accepted=accepted, max_ts=run_ts, table_name=view, lineage_columns=list(LINEAGE))
    # run_id matched the run id pattern and sample_rows/seed are ints: literals are safe here.
    rows = f"select * from \"{source}\" where _run_id = '{run_id}'"
    if sample_rows > 0:
        rows = f"select * from ({rows}) using sample reservoir({int(sample_rows)} rows) repeatable ({int(seed)})"
    return validate_view(con, view, rows, suite)


def input_findings(
    con: duckdb.DuckDBPyConnection,
    source: str,
    run_id: str,
    accepted: Mapping[str, Sequence[str]],
    run_ts: datetime,
    *,
    sample_rows: int = 0,
    seed: int = 42,
) -> InputFindings:
    """Check what run ``run_id`` loaded into ``source`` once more, without redoing ingestion's work.

    Ingestion already applied every row rule to every row; here the accounting is verified and the GX
    suite runs on the run's rows, or on a repeatable reservoir sample of ``sample_rows`` of them when that
    is > 0 (the suite then guards against a rule that ingestion stopped enforcing, at bounded cost).
    Earlier runs' rows passed when they were loaded. A run that loaded no row of ``source`` (no new file)
    has nothing for the suite to check: it is not run, and Great Expectations is not even imported (several
    seconds per process).
    """
    if not _RUN_ID.match(run_id):
        raise ValueError(f"unexpected run id {run_id!r}")
    view = f"_check_{source}"
    new_rows = con.execute(f'select count(*) from "{source}" where _run_id = $r', {"r": run_id}).fetchall()[0][0]
    if new_rows == 0:
        report = ValidationReport.from_outcomes(view, [], row_count=0, suite_name="not run: no rows of this run")
    else:
        report = _run_input_suite(con, source, view, run_id, accepted, run_ts, sample_rows, seed)
    total = con.execute(f'select count(*) from "{source}"').fetchall()[0][0]
    read, quarantined = con.execute(
        "select coalesce(sum(rows_read), 0), coalesce(sum(rows_quarantined), 0) from ingest_log "
        "where source = $s and run_id = $r",
        {"s": source, "r": run_id},
    ).fetchall()[0]
    return InputFindings(report, accounting_outcome(con, source, run_id), int(total), int(read), int(quarantined))


def snapshot_contract_report(con: duckdb.DuckDBPyConnection, name: str, as_of: date) -> ValidationReport:
    """Validate one snapshot of output table ``name`` against its output contract's suite."""
    from data_contracts.suites import build_suite
    from features.customer_features import feature_params

    contract = load_output_contract(name, feature_params(con, as_of).window_names())
    view = f"_check_{name}"
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    # The date literal comes from a ``date`` object, never from user text.
    sql = f"select {cols} from \"{name}\" where snapshot_date = date '{as_of.isoformat()}'"
    return validate_view(con, view, sql, build_suite(contract, table_name=view, lineage_columns=()))


def previous_date(con: duckdb.DuckDBPyConnection, table: str, as_of: date) -> date | None:
    """The latest snapshot of ``table`` strictly before ``as_of``."""
    if not table_exists(con, table):
        return None
    return con.execute(f'select max(snapshot_date) from "{table}" where snapshot_date < $d', {"d": as_of}).fetchall()[
        0
    ][0]


def customer_segments_findings(
    con: duckdb.DuckDBPyConnection, as_of: date, min_buyers: int
) -> dict[str, list[ExpectationOutcome]]:
    """Blocking checks of ``SEGMENT_CHECKS`` plus the ``enough_buyers`` soft signal, by check name."""
    frame = con.sql(
        f"select {', '.join(_SEGMENT_COLUMNS)} from customer_segments where snapshot_date = $d", params={"d": as_of}
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
    unknown = sorted(set(frame["cluster_id"].drop_nulls().to_list()) - profile_ids)
    cluster = [q.cluster_ids_in_range(frame, max(profile_ids, default=0) + 1)]
    if unknown:
        cluster.append(
            ExpectationOutcome(
                expectation_type="expect_column_values_to_be_in_set",
                columns=("cluster_id",),
                success=False,
                severity="blocking",
                unexpected_count=len(unknown),
                examples=tuple(unknown[:5]),
                check="cluster_ids_in_profiles",
            )
        )
    return {
        "one_row_per_customer": [q.one_row_per_customer(frame)],
        "customers_out_equal_in": [q.customers_out_equal_in(frame, int(customers_in))],
        "scores_in_range": [q.scores_in_range(frame)],
        "grades_valid": [q.grades_in_set(frame)],
        "buyers_have_segment_and_stage": [q.buyers_have(frame)],
        "cluster_ids_valid": cluster,
        "enough_buyers": [q.min_buyers(int(frame["is_buyer"].sum()), min_buyers)],
    }


def unassigned_buyer_shares(con: duckdb.DuckDBPyConnection, as_of: date, registry: Registry) -> dict[str, float]:
    """Per drift-watched segmentation: the share of buyers it leaves without a value (null) at ``as_of``."""
    segs = registry.where("drift")
    if not segs:
        return {}
    cols = ", ".join(f'count(*) filter (where "{s.column}" is null) as "{s.name}"' for s in segs)
    row = con.execute(
        f"select count(*), {cols} from customer_segments where snapshot_date = $d and is_buyer", {"d": as_of}
    ).fetchall()[0]
    buyers = row[0]
    return {s.name: (n / buyers if buyers else 0.0) for s, n in zip(segs, row[1:], strict=True)}


def segment_summary_findings(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    registry: Registry,
    *,
    max_share_change: float,
    max_unassigned_increase: float,
) -> dict[str, list[ExpectationOutcome]]:
    """``shares_sum_to_one`` (blocking), ``segment_share_drift`` and ``unassigned_share_growth`` (warn).

    Drift is checked for every segmentation the registry marks ``drift``; each outcome's examples name
    the segmentation, the segment and how far its share moved. Unassigned growth measures buyers left
    without a value (prospects are expected to have no RFM segment and are not counted).
    """
    curr = read_snapshot(con, "segment_summary", as_of)
    prev_date = previous_date(con, "segment_summary", as_of)
    prev = read_snapshot(con, "segment_summary", prev_date) if prev_date else None
    sums = [q.shares_sum_to_one(part) for _, part in curr.group_by("segmentation", maintain_order=True)] or [
        ExpectationOutcome(
            expectation_type="expect_table_row_count_to_be_between",
            columns=(),
            success=False,
            severity="blocking",
            check="summary_not_empty",
        )
    ]
    drift: list[ExpectationOutcome] = []
    for seg in registry.where("drift"):

        def part(frame: Any, name: str = seg.name) -> Any:
            return None if frame is None else frame.filter(frame["segmentation"] == name).rename({"segment": name})

        outcome = q.share_drift(part(prev), part(curr), max_share_change, key=seg.name)
        drift.append(_named(outcome, seg.name))
    now = unassigned_buyer_shares(con, as_of, registry)
    before = unassigned_buyer_shares(con, prev_date, registry) if prev_date else None
    growth = [
        _named(
            q.unassigned_share_growth(
                None if before is None else {UNASSIGNED: before[name]},
                {UNASSIGNED: share},
                label=UNASSIGNED,
                max_increase=max_unassigned_increase,
                key=name,
            ),
            name,
        )
        for name, share in now.items()
    ]
    return {"shares_sum_to_one": sums, "segment_share_drift": drift, "unassigned_share_growth": growth}


def _named(outcome: ExpectationOutcome, segmentation: str) -> ExpectationOutcome:
    """The outcome with its check and examples prefixed by the segmentation they are about."""
    from dataclasses import replace

    return replace(
        outcome,
        check=f"{segmentation}.{outcome.check}",
        examples=tuple(f"{segmentation} · {e}" for e in outcome.examples),
    )


def cut_points(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, float]:
    """``metric:score`` -> lower edge of the score at ``as_of``."""
    rows = con.execute(
        "select metric, score, min_value from rfm_cut_points where snapshot_date = $d "
        "and min_value is not null order by metric, score",
        {"d": as_of},
    ).fetchall()
    return {f"{m}:{s}": float(v) for m, s, v in rows}


def cut_point_findings(con: duckdb.DuckDBPyConnection, as_of: date, max_rel_change: float) -> ExpectationOutcome:
    """RFM cut points that moved more than ``max_rel_change`` since the previous snapshot (warn)."""
    prev_date = previous_date(con, "rfm_cut_points", as_of)
    curr = cut_points(con, as_of)
    prev = cut_points(con, prev_date) if prev_date else None
    return q.cut_point_drift(prev, curr, max_rel_change)


def freshness_findings(con: duckdb.DuckDBPyConnection, as_of: date, max_age_days: int) -> ExpectationOutcome:
    """Stale data (warn): the newest order on or before D is more than ``max_age_days`` days older than D."""
    newest = con.execute("select max(order_date) from orders where order_date <= $d", {"d": as_of}).fetchall()[0][0]
    age = None if newest is None else (as_of - newest).days
    stale = age is None or age > max_age_days
    example = (
        f"no order on or before {as_of}"
        if newest is None
        else f"newest order {newest} is {age} days before the snapshot date {as_of} (limit {max_age_days})"
    )
    return ExpectationOutcome(
        expectation_type="expect_data_age_to_be_at_most",
        columns=("order_date",),
        success=not stale,
        severity="warn",
        unexpected_count=int(stale),
        element_count=1,
        examples=(example,) if stale else (),
        check="data_freshness",
        observed={"newest_order_date": None if newest is None else newest.isoformat(), "age_days": age},
    )


def rule_findings(con: duckdb.DuckDBPyConnection, as_of: date, rules: Mapping[str, Any]) -> ExpectationOutcome:
    """Tags matching nobody or everybody, and classification defaults swallowing more than the configured
    share, on snapshot ``as_of`` (warn; ``models.rule_lint.lint_snapshot`` does the counting)."""
    from features.customer_features import feature_params
    from models.rule_lint import lint_snapshot
    from models.settings import load_segmentation_settings

    settings = load_segmentation_settings(rules, windows=feature_params(con, as_of).window_names())
    findings = lint_snapshot(con, as_of, settings)
    return ExpectationOutcome(
        expectation_type="expect_rules_to_split_customers",
        columns=(),
        success=not findings,
        severity="warn",
        unexpected_count=len(findings),
        element_count=len(findings),
        examples=tuple(f"{f.where}: {f.message}" for f in findings[:5]),
        check="rule_lint",
        observed=[{"code": f.code, "where": f.where, "message": f.message} for f in findings],
    )


def calibration_findings(con: duckdb.DuckDBPyConnection, as_of: date, max_error: float) -> ExpectationOutcome:
    """The purchase model's holdout error above ``max_error`` (warn); passes when the model was not fitted."""
    from models.clv_calibration import calibration_finding

    table = read_snapshot(con, "model_calibration", as_of)
    message = None if table.is_empty() else calibration_finding(table, max_error)
    return ExpectationOutcome(
        expectation_type="expect_holdout_error_to_be_at_most",
        columns=(),
        success=message is None,
        severity="warn",
        unexpected_count=int(message is not None),
        element_count=table.height,
        examples=(message,) if message else (),
        check="calibration_error",
        observed="not fitted" if table.is_empty() else None,
    )
