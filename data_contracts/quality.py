"""Output quality checks on customer segments: pure functions returning ``ExpectationOutcome``.

Blocking checks (a failure stops publishing) use GX where the property is a GX expectation: the
frame's needed columns only are handed to GX as pandas (1M customers x 4 columns is ~60-120 MB).
Cross-table and snapshot-to-snapshot checks are plain code. Soft signals (``share_drift``,
``unassigned_share_growth``, ``cut_point_drift``, ``min_buyers``) return severity ``warn``.

Frames may be polars DataFrames/LazyFrames or DuckDB relations (``con.table("customer_segments")``).
Every function takes its column names as parameters, with the pipeline's names as defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from data_contracts.contracts import load_output_contract
from data_contracts.gx_outcomes import _percent
from data_contracts.gx_runner import quote_identifier, run_expectations
from data_contracts.outcomes import MAX_EXAMPLES, ExpectationOutcome, Severity, ValidationReport, jsonable

if TYPE_CHECKING:
    import pandas as pd

Frame = pl.DataFrame | pl.LazyFrame | duckdb.DuckDBPyRelation
Shares = pl.DataFrame | Mapping[str, float]
Cuts = Mapping[str, float | Sequence[float]]

KEY = "customer_id"
SCORE_COLUMNS: tuple[str, ...] = ("r_score", "f_score", "m_score")
GRADE_COLUMNS: tuple[str, ...] = ("monetary_grade", "frequency_grade", "engagement_grade", "overall_grade")
BUYER_COLUMN = "is_buyer"
BUYER_REQUIRED: tuple[str, ...] = ("rfm_segment", "lifecycle_stage")
SEGMENT_COLUMN = "rfm_segment"
SHARE_COLUMN = "share"
CLUSTER_COLUMN = "cluster_id"
UNASSIGNED = "Other"


# --------------------------------------------------------------------------------------------------
# Blocking checks
# --------------------------------------------------------------------------------------------------


def one_row_per_customer(frame: Frame, *, key: str = KEY) -> ExpectationOutcome:
    """The grain: ``key`` is never null and never repeated. Counts duplicated plus null-key rows."""
    import great_expectations.expectations as gxe

    df, missing = _pandas(frame, [key])
    if missing:
        return _missing("one_row_per_customer", "expect_column_values_to_be_unique", missing)
    outcomes = run_expectations(
        df, [gxe.ExpectColumnValuesToBeUnique(column=key), gxe.ExpectColumnValuesToNotBeNull(column=key)]
    )
    return _combine("one_row_per_customer", "expect_column_values_to_be_unique", outcomes, element_count=len(df))


def contract_score_range(column: str = "r_score") -> tuple[int, int]:
    """The score range the ``customer_segments`` output contract states (min/max of ``column``)."""
    col = load_output_contract("customer_segments").column(column)
    if col.min is None or col.max is None:
        raise ValueError(f"output contract customer_segments: {column} needs min and max")
    return int(col.min), int(col.max)


def contract_grades(column: str = "overall_grade") -> tuple[str, ...]:
    """The grades the ``customer_segments`` output contract accepts (accepted values of ``column``)."""
    values = load_output_contract("customer_segments").column(column).accepted_values
    if not values:
        raise ValueError(f"output contract customer_segments: {column} needs accepted_values")
    return tuple(values)


def scores_in_range(
    frame: Frame, *, columns: Sequence[str] = SCORE_COLUMNS, low: int | None = None, high: int | None = None
) -> ExpectationOutcome:
    """Every non-null score lies in [low, high] (default: the output contract's range); examples read 'column=value'."""
    import great_expectations.expectations as gxe

    if low is None or high is None:
        low, high = contract_score_range(columns[0])
    df, missing = _pandas(frame, columns)
    if missing:
        return _missing("scores_in_range", "expect_column_values_to_be_between", missing)
    exps = [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=low, max_value=high) for c in columns]
    return _combine("scores_in_range", "expect_column_values_to_be_between", run_expectations(df, exps))


def grades_in_set(
    frame: Frame, *, columns: Sequence[str] = GRADE_COLUMNS, allowed: Sequence[str] | None = None
) -> ExpectationOutcome:
    """Every non-null grade is one of ``allowed`` (default: the output contract's grades; null where a grade
    does not apply)."""
    import great_expectations.expectations as gxe

    allowed = contract_grades(columns[-1]) if allowed is None else allowed
    df, missing = _pandas(frame, columns)
    if missing:
        return _missing("grades_in_set", "expect_column_values_to_be_in_set", missing)
    exps = [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=list(allowed)) for c in columns]
    return _combine("grades_in_set", "expect_column_values_to_be_in_set", run_expectations(df, exps))


def buyers_have(
    frame: Frame,
    *,
    columns: Sequence[str] = BUYER_REQUIRED,
    buyer_column: str = BUYER_COLUMN,
    key: str = KEY,
) -> ExpectationOutcome:
    """Every buyer (``buyer_column`` true) has a value in each of ``columns``; examples are customer ids."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column as GxColumn

    df, missing = _pandas(frame, [key, buyer_column, *columns])
    if missing:
        return _missing("buyers_have_segment_and_stage", "expect_column_values_to_not_be_null", missing)
    is_buyer = GxColumn(buyer_column) == True  # noqa: E712 - builds a GX condition, not a comparison
    exps = [gxe.ExpectColumnValuesToNotBeNull(column=c, row_condition=is_buyer) for c in columns]
    outcome = _combine(
        "buyers_have_segment_and_stage", "expect_column_values_to_not_be_null", run_expectations(df, exps)
    )
    if outcome.success:
        return outcome
    buyers = df[buyer_column].eq(True).fillna(False).astype(bool)
    offending = df.loc[buyers & df[list(columns)].isna().any(axis=1), key]
    return _with_examples(outcome, offending.head(MAX_EXAMPLES).tolist())


def customers_out_equal_in(frame: Frame, customers_in: int, *, key: str = KEY) -> ExpectationOutcome:
    """Distinct customers out equal ``customers_in`` (distinct customers of the inputs)."""
    n_out = _distinct(frame, key)
    if n_out is None:
        return _missing("customers_out_equal_in", "expect_table_row_count_to_equal_other_table", [key])
    return ExpectationOutcome(
        expectation_type="expect_table_row_count_to_equal_other_table",
        columns=(key,),
        success=n_out == customers_in,
        severity="blocking",
        unexpected_count=abs(n_out - customers_in),
        element_count=customers_in,
        unexpected_percent=_percent(abs(n_out - customers_in), customers_in),
        check="customers_out_equal_in",
        observed={"customers_out": n_out, "customers_in": customers_in},
    )


def shares_sum_to_one(
    summary: pl.DataFrame | duckdb.DuckDBPyRelation,
    *,
    share_column: str = SHARE_COLUMN,
    tolerance: float = 1e-9,
) -> ExpectationOutcome:
    """The ``share_column`` of a segment summary sums to 1 within ``tolerance``."""
    import great_expectations.expectations as gxe

    df, missing = _pandas(summary, [share_column])
    if missing:
        return _missing("segment_shares_sum_to_one", "expect_column_sum_to_be_between", missing)
    exp = gxe.ExpectColumnSumToBeBetween(column=share_column, min_value=1 - tolerance, max_value=1 + tolerance)
    (outcome,) = run_expectations(df, [exp])
    total = jsonable(outcome.observed)
    return ExpectationOutcome(
        expectation_type=outcome.expectation_type,
        columns=(share_column,),
        success=outcome.success,
        severity="blocking",
        unexpected_count=0 if outcome.success else 1,
        element_count=len(df),
        examples=() if outcome.success else (f"sum={total}",),
        check="segment_shares_sum_to_one",
        observed=total,
        error=outcome.error,
    )


def cluster_ids_in_range(frame: Frame, k: int, *, column: str = CLUSTER_COLUMN) -> ExpectationOutcome:
    """Every non-null cluster id lies in [0, k)."""
    import great_expectations.expectations as gxe

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    df, missing = _pandas(frame, [column])
    if missing:
        return _missing("cluster_ids_in_range", "expect_column_values_to_be_between", missing)
    exp = gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=k - 1)
    return _combine("cluster_ids_in_range", "expect_column_values_to_be_between", run_expectations(df, [exp]))


def segments_report(
    frame: Frame,
    *,
    customers_in: int,
    k: int | None = None,
    summary: pl.DataFrame | duckdb.DuckDBPyRelation | None = None,
    key: str = KEY,
    score_columns: Sequence[str] = SCORE_COLUMNS,
    grade_columns: Sequence[str] = GRADE_COLUMNS,
    buyer_column: str = BUYER_COLUMN,
    buyer_required: Sequence[str] = BUYER_REQUIRED,
    cluster_column: str = CLUSTER_COLUMN,
    share_column: str = SHARE_COLUMN,
    table: str = "customer_segments",
) -> ValidationReport:
    """All blocking output checks in one report (cluster and share checks only when k / summary given)."""
    results = [
        one_row_per_customer(frame, key=key),
        customers_out_equal_in(frame, customers_in, key=key),
        scores_in_range(frame, columns=score_columns),
        grades_in_set(frame, columns=grade_columns),
        buyers_have(frame, columns=buyer_required, buyer_column=buyer_column, key=key),
    ]
    if k is not None:
        results.append(cluster_ids_in_range(frame, k, column=cluster_column))
    if summary is not None:
        results.append(shares_sum_to_one(summary, share_column=share_column))
    return ValidationReport.from_outcomes(table, results, row_count=_height(frame))


# --------------------------------------------------------------------------------------------------
# Warnings: soft signals between snapshots
# --------------------------------------------------------------------------------------------------


def share_drift(
    prev_summary: Shares | None,
    curr_summary: Shares,
    max_abs_change: float,
    *,
    key: str = SEGMENT_COLUMN,
    share_column: str = SHARE_COLUMN,
) -> ExpectationOutcome:
    """Segments whose share moved more than ``max_abs_change`` (absolute) since the previous snapshot.

    A segment present in only one snapshot counts with share 0 in the other. No previous snapshot passes.
    """
    if prev_summary is None:
        return _first_snapshot("segment_share_drift", "expect_segment_share_change_to_be_at_most", (key,))
    prev, curr = _shares(prev_summary, key, share_column), _shares(curr_summary, key, share_column)
    segments = sorted(set(prev) | set(curr))
    change = {s: curr.get(s, 0.0) - prev.get(s, 0.0) for s in segments}
    drifting = sorted((s for s in segments if abs(change[s]) > max_abs_change), key=lambda s: (-abs(change[s]), s))
    return _warn(
        "segment_share_drift",
        "expect_segment_share_change_to_be_at_most",
        (key,),
        unexpected=len(drifting),
        elements=len(segments),
        examples=[f"{s}: {prev.get(s, 0.0):.4f} -> {curr.get(s, 0.0):.4f} ({change[s]:+.4f})" for s in drifting],
        observed={s: round(change[s], 12) for s in segments},
    )


def unassigned_share_growth(
    prev_summary: Shares | None,
    curr_summary: Shares,
    *,
    label: str = UNASSIGNED,
    max_increase: float = 0.0,
    key: str = SEGMENT_COLUMN,
    share_column: str = SHARE_COLUMN,
) -> ExpectationOutcome:
    """The share of the catch-all segment ``label`` grew by more than ``max_increase``."""
    if prev_summary is None:
        return _first_snapshot("unassigned_share_growth", "expect_unassigned_share_increase_to_be_at_most", (key,))
    before = _shares(prev_summary, key, share_column).get(label, 0.0)
    after = _shares(curr_summary, key, share_column).get(label, 0.0)
    grew = after - before > max_increase
    return _warn(
        "unassigned_share_growth",
        "expect_unassigned_share_increase_to_be_at_most",
        (key,),
        unexpected=int(grew),
        elements=1,
        examples=[f"{label}: {before:.4f} -> {after:.4f} ({after - before:+.4f})"] if grew else [],
        observed={"before": before, "after": after},
    )


def cut_point_drift(prev_cuts: Cuts | None, curr_cuts: Cuts, max_rel_change: float) -> ExpectationOutcome:
    """Cut points (quantile edges, grade cut-offs) that moved more than ``max_rel_change`` relatively.

    ``cuts`` map a name to one value or a list of edges; names ``metric:score`` group edges by metric. An
    edge present on one side only counts as drift. The change is relative to the previous edge; an edge
    that was 0 (e.g. recency 0 days) is measured against the largest edge of its metric instead, so
    0 -> 1 day is a small move, not an infinite one.
    """
    if prev_cuts is None:
        return _first_snapshot("cut_point_drift", "expect_cut_point_change_to_be_at_most", ())
    prev, curr = _flatten(prev_cuts), _flatten(curr_cuts)
    names = sorted(set(prev) | set(curr))
    scale: dict[str, float] = {}
    for name, value in (*prev.items(), *curr.items()):
        metric = _metric(name)
        scale[metric] = max(scale.get(metric, 0.0), abs(value))
    drifting: list[tuple[float, str, str]] = []
    for name in names:
        before, after = prev.get(name), curr.get(name)
        if before is None or after is None:
            drifting.append((math.inf, name, f"{name}: {before} -> {after}"))
            continue
        base = abs(before) or scale[_metric(name)]
        rel = abs(after - before) / base if base else 0.0
        if rel > max_rel_change:
            drifting.append((rel, name, f"{name}: {before:g} -> {after:g} ({rel:+.1%})"))
    drifting.sort(key=lambda item: (-item[0], item[1]))
    return _warn(
        "cut_point_drift",
        "expect_cut_point_change_to_be_at_most",
        (),
        unexpected=len(drifting),
        elements=len(names),
        examples=[text for _, _, text in drifting],
    )


def min_buyers(n_buyers: int, minimum: int) -> ExpectationOutcome:
    """Enough buyers for the scores and clusters to mean something."""
    return _warn(
        "min_buyers",
        "expect_buyer_count_to_be_at_least",
        (),
        unexpected=max(0, minimum - n_buyers),
        elements=minimum,
        examples=[f"{n_buyers} buyers < {minimum}"] if n_buyers < minimum else [],
        observed=n_buyers,
    )


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _pandas(frame: Frame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """``columns`` of ``frame`` as pandas with GX-friendly dtypes, and the names it lacks."""
    cols = list(dict.fromkeys(columns))
    if isinstance(frame, pl.LazyFrame):
        available = frame.collect_schema().names()
    elif isinstance(frame, pl.DataFrame | duckdb.DuckDBPyRelation):
        available = frame.columns
    else:
        raise TypeError(f"expected a polars DataFrame/LazyFrame or a DuckDB relation, got {type(frame).__name__}")
    missing = [c for c in cols if c not in available]
    if missing:
        import pandas as pd

        return pd.DataFrame(), missing
    if isinstance(frame, pl.LazyFrame):
        df = frame.select(cols).collect().to_pandas()
    elif isinstance(frame, pl.DataFrame):
        df = frame.select(cols).to_pandas()
    else:
        df = frame.project(", ".join(quote_identifier(c) for c in cols)).df()
    for name in df.columns:  # GX compares only int64/float64 vectorised; int8 scores would loop in Python
        series = df[name]
        kind = series.dtype.kind
        if kind in "iu" and series.dtype != "int64":
            df[name] = series.astype("float64" if series.hasnans else "int64")
        elif kind == "f" and series.dtype != "float64":
            df[name] = series.astype("float64")
    return df, []


def _distinct(frame: Frame, key: str) -> int | None:
    if isinstance(frame, pl.LazyFrame):
        if key not in frame.collect_schema().names():
            return None
        return int(frame.select(pl.col(key).drop_nulls().n_unique()).collect().item())
    if isinstance(frame, pl.DataFrame):
        return int(frame[key].drop_nulls().n_unique()) if key in frame.columns else None
    if key not in frame.columns:
        return None
    return int(frame.aggregate(f"count(distinct {quote_identifier(key)})").fetchall()[0][0])


def _height(frame: Frame) -> int:
    if isinstance(frame, pl.LazyFrame):
        return int(frame.select(pl.len()).collect().item())
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.aggregate("count(*)").fetchall()[0][0])


def _shares(summary: Shares, key: str, share_column: str) -> dict[str, float]:
    if isinstance(summary, pl.DataFrame):
        missing = [c for c in (key, share_column) if c not in summary.columns]
        if missing:
            raise KeyError(f"segment summary lacks column(s) {missing}; it has {summary.columns}")
        return {str(k): float(v) for k, v in zip(summary[key].to_list(), summary[share_column].to_list(), strict=True)}
    return {str(k): float(v) for k, v in summary.items()}


def _metric(name: str) -> str:
    """``recency:2`` and ``recency[1]`` -> ``recency``."""
    return name.split(":", 1)[0].split("[", 1)[0]


def _flatten(cuts: Cuts) -> dict[str, float]:
    flat: dict[str, float] = {}
    for name, value in cuts.items():
        if isinstance(value, int | float):
            flat[name] = float(value)
        else:
            for i, edge in enumerate(value):
                flat[f"{name}[{i}]"] = float(edge)
    return flat


def _combine(
    check: str,
    expectation_type: str,
    outcomes: Sequence[ExpectationOutcome],
    *,
    element_count: int | None = None,
) -> ExpectationOutcome:
    """One outcome from several GX outcomes of one property: counts summed, examples capped."""
    columns = tuple(dict.fromkeys(c for o in outcomes for c in o.columns))
    label = len(columns) > 1
    examples: list[Any] = []
    for o in outcomes:
        for value in o.examples:
            shown = f"{o.column}={value}" if label and o.column else value
            if len(examples) < MAX_EXAMPLES and shown not in examples:
                examples.append(shown)
    unexpected = sum(o.unexpected_count or 0 for o in outcomes)
    elements = element_count if element_count is not None else sum(o.element_count or 0 for o in outcomes)
    errors = [o.error for o in outcomes if o.error]
    return ExpectationOutcome(
        expectation_type=expectation_type,
        columns=columns,
        success=all(o.success for o in outcomes),
        severity="blocking",
        unexpected_count=unexpected,
        element_count=elements,
        unexpected_percent=_percent(unexpected, elements),
        examples=tuple(examples),
        check=check,
        error="; ".join(errors) if errors else None,
    )


def _with_examples(outcome: ExpectationOutcome, values: Sequence[Any]) -> ExpectationOutcome:
    from dataclasses import replace

    return replace(outcome, examples=tuple(jsonable(v) for v in values[:MAX_EXAMPLES]))


def _missing(check: str, expectation_type: str, missing: Sequence[str]) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type=expectation_type,
        columns=tuple(missing),
        success=False,
        severity="blocking",
        check=check,
        error=f"the segments frame has no column(s) {list(missing)}",
    )


def _warn(
    check: str,
    expectation_type: str,
    columns: tuple[str, ...],
    *,
    unexpected: int,
    elements: int,
    examples: Sequence[Any],
    observed: Any = None,
    severity: Severity = "warn",
) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type=expectation_type,
        columns=columns,
        success=unexpected == 0,
        severity=severity,
        unexpected_count=unexpected,
        element_count=elements,
        unexpected_percent=_percent(unexpected, elements),
        examples=tuple(examples[:MAX_EXAMPLES]),
        check=check,
        observed=jsonable(observed),
    )


def _first_snapshot(check: str, expectation_type: str, columns: tuple[str, ...]) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type=expectation_type,
        columns=columns,
        success=True,
        severity="warn",
        unexpected_count=0,
        element_count=0,
        check=check,
        observed="no previous snapshot",
    )
