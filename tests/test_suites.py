"""Contract suites, the chunked DuckDB runner and the output quality helpers on tiny hand-made tables.

Every check runs on a clean fixture (passes) and on a planted defect (fails with the expected
expectation type, count and examples).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from data_contracts import quality
from data_contracts.contracts import Contract, ContractError, load_contract
from data_contracts.gx_runner import validate
from data_contracts.outcomes import ExpectationOutcome, ValidationReport, severity_of
from data_contracts.suites import build_suite

RUN = datetime(2025, 6, 1, 2, 0)
ACCEPTED = {"currencies": ["CNY", "HKD"]}
LINEAGE = [("_file", "VARCHAR"), ("_line", "BIGINT")]


# --------------------------------------------------------------------------------------------------
# Fixtures: real DuckDB files under tmp_path with the contract's storage columns plus lineage
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def make_table(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    rows: list[dict[str, Any]],
    *,
    types: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    """Create table ``contract.name`` and insert ``rows`` (absent keys are NULL; _line numbers rows)."""
    columns = [(n, (types or {}).get(n, t)) for n, t in contract.storage_columns() + LINEAGE if n not in drop]
    columns += list(extra)
    con.execute(f"create table {contract.name} (" + ", ".join(f'"{n}" {t}' for n, t in columns) + ")")
    if rows:
        values = [
            [
                row.get(n, f"{contract.name}.csv" if n == "_file" else i + 2 if n == "_line" else None)
                for n, _ in columns
            ]
            for i, row in enumerate(rows)
        ]
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"insert into {contract.name} values ({marks})", values)


def order(**overrides: Any) -> dict[str, Any]:
    row = {
        "order_id": "O1",
        "line_id": 1,
        "customer_id": "C1",
        "order_ts": datetime(2025, 5, 1, 12, 0),
        "order_date": datetime(2025, 5, 1).date(),
        "amount": Decimal("10.50"),
        "quantity": 1,
        "unit_price": Decimal("10.50"),
        "status": "completed",
        "channel": "online",
        "currency": "CNY",
    }
    row.update(overrides)
    return row


def clean_orders() -> list[dict[str, Any]]:
    return [
        order(),
        order(line_id=2, amount=Decimal("0.00"), quantity=0),
        order(order_id="O2", customer_id="C2", status="refunded", channel="app", currency="HKD"),
        order(order_id="O3", customer_id="C3", status="cancelled", channel=None, quantity=None, unit_price=None),
    ]


def event(i: int, **overrides: Any) -> dict[str, Any]:
    ts = datetime(2025, 5, 1) + timedelta(minutes=i)
    row = {
        "customer_id": f"C{i % 3}" if i % 4 else None,
        "session_id": f"S{i // 3}",
        "event_ts": ts,
        "event_date": ts.date(),
        "event_type": "page_view",
        "duration_s": 30,
        "_line": i + 2,
    }
    row.update(overrides)
    return row


def outcome(report: ValidationReport, check: str) -> ExpectationOutcome:
    return report.outcome(check)


def failed_checks(report: ValidationReport) -> list[str]:
    return [r.check for r in report.results if not r.success]


# --------------------------------------------------------------------------------------------------
# build_suite
# --------------------------------------------------------------------------------------------------


def test_orders_suite_states_each_contract_rule_as_one_named_expectation() -> None:
    suite = build_suite(load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)
    kinds = {e.meta["check"]: e.expectation_type for e in suite.expectations}

    assert suite.name == "orders.contract"
    assert kinds["columns"] == "expect_table_columns_to_match_set"
    assert kinds["amount.type"] == "expect_column_values_to_be_of_type"
    assert kinds["order_date.type"] == "expect_column_values_to_be_of_type"
    assert kinds["customer_id.not_null"] == "expect_column_values_to_not_be_null"
    assert kinds["order_date.not_null"] == "expect_column_values_to_not_be_null"  # local date of a required ts
    assert kinds["line_id.not_null"] == "expect_column_values_to_not_be_null"  # key with a default
    assert kinds["amount.between"] == "expect_column_values_to_be_between"
    assert kinds["status.in_set"] == "expect_column_values_to_be_in_set"
    assert kinds["order_ts.not_after_run"] == "expect_column_values_to_be_between"
    assert kinds["primary_key.unique"] == "expect_compound_columns_to_be_unique"
    assert "store_id.not_null" not in kinds  # optional column
    columns = next(e for e in suite.expectations if e.meta["check"] == "columns")
    assert set(columns.column_set) == {n for n, _ in load_contract("orders").storage_columns()} | {"_file", "_line"}
    currency = next(e for e in suite.expectations if e.meta["check"] == "currency.in_set")
    assert list(currency.value_set) == ["CNY", "HKD"]


def test_every_contract_rule_blocks_and_an_empty_table_only_warns() -> None:
    suite = build_suite(load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)
    severities = {e.meta["check"]: severity_of(e) for e in suite.expectations}
    assert severities.pop("has_rows") == "warn"
    assert set(severities.values()) == {"blocking"}


def test_not_after_run_needs_a_run_time_and_aware_times_become_naive_utc() -> None:
    contract = load_contract("orders")
    without = build_suite(contract, accepted=ACCEPTED)
    assert "order_ts.not_after_run" not in {e.meta["check"] for e in without.expectations}

    aware = datetime(2025, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    suite = build_suite(contract, accepted=ACCEPTED, max_ts=aware)
    bound = next(e for e in suite.expectations if e.meta["check"] == "order_ts.not_after_run").max_value
    assert bound == datetime(2025, 6, 1, 2, 0)


def test_accepted_values_from_a_setting_must_be_given() -> None:
    with pytest.raises(ContractError, match="currencies"):
        build_suite(load_contract("orders"))


def test_single_and_compound_keys_and_require_any() -> None:
    kinds = {e.meta["check"]: e for e in build_suite(load_contract("feedback"), max_ts=RUN).expectations}
    assert kinds["primary_key.unique"].expectation_type == "expect_column_values_to_be_unique"
    require_any = kinds["require_any"]
    assert require_any.expectation_type == "expect_column_values_to_not_be_null"
    assert require_any.column == "comment"
    assert "rating IS NULL" in str(require_any.row_condition)


# --------------------------------------------------------------------------------------------------
# validate on DuckDB: clean and planted defects
# --------------------------------------------------------------------------------------------------


def test_clean_orders_pass_every_check(con: duckdb.DuckDBPyConnection) -> None:
    make_table(con, load_contract("orders"), clean_orders())

    report = validate(con, "orders", load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)

    assert failed_checks(report) == []
    assert report.success and report.row_count == 4 and report.chunks == 1
    meta = json.loads(json.dumps(report.to_metadata()))
    assert meta["success"] is True and meta["blocking_failures"] == 0 and meta["failed"] == []
    assert "primary_key.unique" in meta["passed"]


DEFECTS: list[tuple[str, Callable[[list[dict[str, Any]]], None], str, str, int, list[Any]]] = [
    (
        "null required column",
        lambda rows: rows[1].update(customer_id=None),
        "customer_id.not_null",
        "expect_column_values_to_not_be_null",
        1,
        ["orders.csv:3"],
    ),
    (
        "amount below min",
        lambda rows: rows[2].update(amount=Decimal("-5.00")),
        "amount.between",
        "expect_column_values_to_be_between",
        1,
        [-5.0],
    ),
    (
        "quantity above max",
        lambda rows: rows[0].update(quantity=100001),
        "quantity.between",
        "expect_column_values_to_be_between",
        1,
        [100001],
    ),
    (
        "status not accepted",
        lambda rows: [r.update(status="lost") for r in rows[:2]],
        "status.in_set",
        "expect_column_values_to_be_in_set",
        2,
        ["lost"],
    ),
    (
        "currency not in settings",
        lambda rows: rows[3].update(currency="USD"),
        "currency.in_set",
        "expect_column_values_to_be_in_set",
        1,
        ["USD"],
    ),
    (
        "timestamp after the run",
        lambda rows: rows[0].update(order_ts=RUN + timedelta(seconds=1)),
        "order_ts.not_after_run",
        "expect_column_values_to_be_between",
        1,
        ["2025-06-01T02:00:01"],
    ),
    (
        "duplicate compound key",
        lambda rows: rows[1].update(line_id=1),
        "primary_key.unique",
        "expect_compound_columns_to_be_unique",
        2,
        [["O1", 1]],
    ),
]


@pytest.mark.parametrize(
    ("plant", "check", "expectation_type", "count", "examples"),
    [d[1:] for d in DEFECTS],
    ids=[d[0] for d in DEFECTS],
)
def test_planted_defect_fails_only_its_check(
    con: duckdb.DuckDBPyConnection,
    plant: Callable[[list[dict[str, Any]]], None],
    check: str,
    expectation_type: str,
    count: int,
    examples: list[Any],
) -> None:
    rows = clean_orders()
    plant(rows)
    make_table(con, load_contract("orders"), rows)

    report = validate(con, "orders", load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)

    assert failed_checks(report) == [check]
    found = outcome(report, check)
    assert (found.expectation_type, found.unexpected_count, list(found.examples)) == (
        expectation_type,
        count,
        examples,
    )
    assert found.severity == "blocking" and not report.success
    assert report.failures == [found]
    assert json.loads(json.dumps(report.to_metadata()))["failed"][0]["check"] == check


def test_storage_type_is_read_from_the_catalog(con: duckdb.DuckDBPyConnection) -> None:
    make_table(con, load_contract("orders"), clean_orders(), types={"amount": "DOUBLE"})

    report = validate(con, "orders", load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)

    assert failed_checks(report) == ["amount.type"]
    found = outcome(report, "amount.type")
    assert (found.expectation_type, found.observed, found.examples) == (
        "expect_column_values_to_be_of_type",
        "DOUBLE",
        ("DOUBLE",),
    )


def test_missing_and_extra_columns_fail_the_schema(con: duckdb.DuckDBPyConnection) -> None:
    make_table(con, load_contract("orders"), clean_orders(), drop=("channel",), extra=(("note", "VARCHAR"),))

    report = validate(con, "orders", load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)

    assert set(failed_checks(report)) == {"columns", "channel.type", "channel.in_set"}
    columns = outcome(report, "columns")
    assert columns.expectation_type == "expect_table_columns_to_match_set"
    assert (columns.unexpected_count, columns.examples) == (2, ("missing channel", "unexpected note"))
    assert "channel" in (outcome(report, "channel.in_set").error or "")


def test_empty_table_warns_without_blocking(con: duckdb.DuckDBPyConnection) -> None:
    make_table(con, load_contract("orders"), [])

    report = validate(con, "orders", load_contract("orders"), accepted=ACCEPTED, max_ts=RUN)

    assert report.success
    assert failed_checks(report) == ["has_rows"]
    assert [w.check for w in report.warnings] == ["has_rows"] and report.warnings[0].severity == "warn"
    assert outcome(report, "customer_id.not_null").element_count == 0


def test_feedback_require_any_and_single_column_key(con: duckdb.DuckDBPyConnection) -> None:
    def fb(fid: str, **kw: Any) -> dict[str, Any]:
        ts = datetime(2025, 5, 2, 9, 0)
        row = {"feedback_id": fid, "customer_id": "C1", "submitted_ts": ts, "submitted_date": ts.date()}
        return {**row, "kind": "review", **kw}

    rows = [fb("F1", rating=5), fb("F2", nps=9), fb("F3", comment="ok"), fb("F3", rating=4), fb("F4")]
    make_table(con, load_contract("feedback"), rows)

    report = validate(con, "feedback", load_contract("feedback"), max_ts=RUN)

    assert set(failed_checks(report)) == {"require_any", "primary_key.unique"}
    require_any = outcome(report, "require_any")
    assert (require_any.unexpected_count, require_any.examples) == (1, ("feedback.csv:6",))
    key = outcome(report, "primary_key.unique")
    assert (key.expectation_type, key.unexpected_count, key.examples) == (
        "expect_column_values_to_be_unique",
        2,
        ("F3",),
    )


def test_chunk_counts_and_examples_merge_across_chunk_boundaries(con: duckdb.DuckDBPyConnection) -> None:
    rows = [event(i) for i in range(10)]
    for i in (2, 3, 4, 9):  # rows 2 | 3 4 | ... 9 straddle the 3-row chunks
        rows[i]["event_type"] = f"bad_{i}"
    rows[3]["duration_s"] = -1
    rows[6]["duration_s"] = 90000
    rows[5]["session_id"] = None
    make_table(con, load_contract("browsing"), rows)

    chunked = validate(con, "browsing", load_contract("browsing"), max_ts=RUN, chunk_rows=3, max_examples=3)
    whole = validate(con, "browsing", load_contract("browsing"), max_ts=RUN)

    assert (chunked.chunks, whole.chunks) == (4, 1)
    assert set(failed_checks(chunked)) == {"event_type.in_set", "duration_s.between", "session_id.not_null"}
    event_type = outcome(chunked, "event_type.in_set")
    assert (event_type.unexpected_count, event_type.element_count) == (4, 10)
    assert event_type.examples == ("bad_2", "bad_3", "bad_4")  # capped at max_examples, scan order
    assert outcome(chunked, "duration_s.between").unexpected_count == 2
    assert outcome(chunked, "session_id.not_null").examples == ("browsing.csv:7",)
    for a, b in zip(chunked.results, whole.results, strict=True):
        assert (a.check, a.unexpected_count, a.element_count, a.success) == (
            b.check,
            b.unexpected_count,
            b.element_count,
            b.success,
        )


def test_uniqueness_in_hash_buckets_matches_one_pass(con: duckdb.DuckDBPyConnection) -> None:
    ids = [f"C{i:03d}" for i in range(40)] + ["C001", "C002", "C002", "C017"]
    make_table(con, load_contract("customers"), [{"customer_id": c} for c in ids])

    one = validate(con, "customers", load_contract("customers"), max_ts=RUN)
    bucketed = validate(con, "customers", load_contract("customers"), max_ts=RUN, unique_bucket_rows=7)

    for report in (one, bucketed):
        key = outcome(report, "primary_key.unique")
        assert (key.unexpected_count, key.element_count) == (7, 44)
        assert key.examples == ("C002", "C001", "C017")  # most repeated first, then by key
        assert failed_checks(report) == ["primary_key.unique"]


def test_runner_rejects_expectations_it_cannot_chunk(con: duckdb.DuckDBPyConnection) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    make_table(con, load_contract("orders"), clean_orders())
    suite = gx.ExpectationSuite(name="means")
    suite.add_expectation(gxe.ExpectColumnMeanToBeBetween(column="quantity", min_value=0, max_value=9))

    with pytest.raises(ValueError, match="expect_column_mean_to_be_between"):
        validate(con, "orders", suite)
    with pytest.raises(ValueError, match="plain SQL identifier"):
        validate(con, 'orders"; drop table orders; --', load_contract("orders"), accepted=ACCEPTED)


def test_validation_writes_nothing_to_the_working_directory(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    make_table(con, load_contract("browsing"), [event(i) for i in range(3)])

    assert validate(con, "browsing", load_contract("browsing"), max_ts=RUN).success
    assert list(work.iterdir()) == []
    assert not (Path(__file__).resolve().parents[1] / "gx").exists()


# --------------------------------------------------------------------------------------------------
# Output quality helpers
# --------------------------------------------------------------------------------------------------


def segments(**changes: list[Any]) -> pl.DataFrame:
    frame = {
        "customer_id": ["C1", "C2", "C3", "C4"],
        "r_score": [5, 3, 1, None],
        "f_score": [4, 2, 1, None],
        "m_score": [5, 1, 2, None],
        "rfm_segment": ["Champions", "Other", "At Risk", None],
        "monetary_grade": ["A", "B", "C", None],
        "frequency_grade": ["A", "C", "C", None],
        "engagement_grade": ["A", "B", "C", "C"],
        "overall_grade": ["A", "B", "C", None],
        "lifecycle_stage": ["active", "new", "lapsed", None],
        "value_tier": ["high", "mid", "low", None],
        "cluster_id": [0, 2, 1, None],
        "is_buyer": [True, True, True, False],
    }
    frame.update(changes)
    return pl.DataFrame(frame, schema_overrides={"r_score": pl.Int8, "cluster_id": pl.Int32})


SUMMARY = pl.DataFrame({"rfm_segment": ["Champions", "Other", "At Risk"], "share": [0.5, 0.25, 0.25]})


def test_clean_segments_pass_every_output_check() -> None:
    report = quality.segments_report(segments(), customers_in=4, k=3, summary=SUMMARY)

    assert report.success and [r.check for r in report.results if not r.success] == []
    assert report.row_count == 4
    assert {r.check for r in report.results} == {
        "one_row_per_customer",
        "customers_out_equal_in",
        "scores_in_range",
        "grades_in_set",
        "buyers_have_segment_and_stage",
        "cluster_ids_in_range",
        "segment_shares_sum_to_one",
    }


OUTPUT_DEFECTS: list[tuple[str, Callable[[], ExpectationOutcome], str, int, tuple[Any, ...]]] = [
    (
        "duplicate customer",
        lambda: quality.one_row_per_customer(segments(customer_id=["C1", "C2", "C2", "C4"])),
        "expect_column_values_to_be_unique",
        2,
        ("C2",),
    ),
    (
        "null customer",
        lambda: quality.one_row_per_customer(segments(customer_id=["C1", None, "C3", "C4"])),
        "expect_column_values_to_be_unique",
        1,
        (),
    ),
    (
        "score out of range",
        lambda: quality.scores_in_range(segments(r_score=[6, 3, 0, None])),
        "expect_column_values_to_be_between",
        2,
        ("r_score=6", "r_score=0"),
    ),
    (
        "grade not A-C",
        lambda: quality.grades_in_set(segments(overall_grade=["A", "D", "C", None])),
        "expect_column_values_to_be_in_set",
        1,
        ("overall_grade=D",),
    ),
    (
        "buyer without segment",
        lambda: quality.buyers_have(segments(rfm_segment=["Champions", None, "At Risk", None])),
        "expect_column_values_to_not_be_null",
        1,
        ("C2",),
    ),
    (
        "cluster id not below k",
        lambda: quality.cluster_ids_in_range(segments(), 2),
        "expect_column_values_to_be_between",
        1,
        (2,),
    ),
    (
        "customers lost",
        lambda: quality.customers_out_equal_in(segments(), 5),
        "expect_table_row_count_to_equal_other_table",
        1,
        (),
    ),
    (
        "shares do not sum to one",
        lambda: quality.shares_sum_to_one(SUMMARY.with_columns(pl.col("share") * 0.9)),
        "expect_column_sum_to_be_between",
        1,
        ("sum=0.9",),
    ),
]


@pytest.mark.parametrize(
    ("run", "expectation_type", "count", "examples"),
    [d[1:] for d in OUTPUT_DEFECTS],
    ids=[d[0] for d in OUTPUT_DEFECTS],
)
def test_output_defect_is_found(
    run: Callable[[], ExpectationOutcome], expectation_type: str, count: int, examples: tuple[Any, ...]
) -> None:
    found = run()

    assert not found.success and found.severity == "blocking"
    assert (found.expectation_type, found.unexpected_count, found.examples) == (expectation_type, count, examples)
    json.dumps(found.to_dict())


def test_output_checks_read_duckdb_relations(con: duckdb.DuckDBPyConnection) -> None:
    frame = segments(r_score=[6, 3, 1, None])  # noqa: F841 - read by DuckDB's replacement scan
    relation = con.sql("select * from frame")

    assert quality.scores_in_range(relation).unexpected_count == 1
    assert quality.customers_out_equal_in(relation, 4).success
    assert quality.one_row_per_customer(relation).success


def test_missing_output_column_is_a_failure_not_a_crash() -> None:
    found = quality.grades_in_set(segments().drop("overall_grade"))
    assert not found.success and "overall_grade" in (found.error or "")


def test_share_drift_warns_on_large_moves_only() -> None:
    prev = {"Champions": 0.30, "Other": 0.20, "At Risk": 0.50}
    curr = {"Champions": 0.31, "Other": 0.35, "New": 0.04, "At Risk": 0.30}

    found = quality.share_drift(prev, curr, 0.05)

    assert (found.severity, found.success, found.unexpected_count, found.element_count) == ("warn", False, 2, 4)
    assert found.examples == ("At Risk: 0.5000 -> 0.3000 (-0.2000)", "Other: 0.2000 -> 0.3500 (+0.1500)")
    assert quality.share_drift(SUMMARY, SUMMARY, 0.01).success
    assert quality.share_drift(None, curr, 0.01).success


def test_unassigned_share_growth_warns() -> None:
    grew = quality.unassigned_share_growth({"Other": 0.10}, {"Other": 0.16}, max_increase=0.05)
    assert (grew.success, grew.severity, grew.unexpected_count) == (False, "warn", 1)
    assert quality.unassigned_share_growth(SUMMARY, SUMMARY).success


def test_cut_point_drift_warns_on_relative_moves_and_changed_edges() -> None:
    prev = {"recency": [0, 30, 90, 180], "monetary": [100.0, 500.0], "zero": 0.0}
    curr = {"recency": [1, 30, 99, 180, 365], "monetary": [100.0, 505.0], "zero": 1.0}

    found = quality.cut_point_drift(prev, curr, 0.05)

    # recency[0] 0 -> 1 is measured against recency's largest edge (365): 0.3 %, no drift. An edge that is 0
    # in a metric whose edges are all 0 or 1 ("zero") moves by its whole scale: 100 %.
    assert (found.severity, found.unexpected_count, found.element_count) == ("warn", 3, 8)
    assert found.examples == ("recency[4]: None -> 365.0", "zero: 0 -> 1 (+100.0%)", "recency[2]: 90 -> 99 (+10.0%)")
    assert quality.cut_point_drift(prev, prev, 0.0).success


def test_cut_point_drift_from_zero_is_relative_to_the_metric_scale_not_infinite() -> None:
    prev = {"recency:5": 0.0, "recency:1": 200.0}
    curr = {"recency:5": 2.0, "recency:1": 200.0}
    found = quality.cut_point_drift(prev, curr, 0.05)
    assert found.success, found.examples  # 2 / 200 = 1 %
    assert not quality.cut_point_drift(prev, curr, 0.005).success


def test_min_buyers_warns_below_the_minimum() -> None:
    assert quality.min_buyers(120, 100).success
    few = quality.min_buyers(40, 100)
    assert (few.success, few.severity, few.unexpected_count, few.observed) == (False, "warn", 60, 40)


def test_report_metadata_is_json() -> None:
    report = quality.segments_report(segments(r_score=[9, 3, 1, None]), customers_in=4)
    meta = report.to_metadata()
    assert json.loads(json.dumps(meta))["failed"][0]["examples"] == ["r_score=9"]
    assert meta["success"] is False and meta["blocking_failures"] == 1


def test_report_outcome_lookup_names_known_checks() -> None:
    report = ValidationReport.from_outcomes("t", [quality.min_buyers(1, 2)])
    assert report.success  # warnings never block
    with pytest.raises(KeyError, match="min_buyers"):
        report.outcome("nope")
