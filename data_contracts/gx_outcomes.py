"""Outcomes the GX runner computes without GX: column types from DuckDB's catalog, row counts,
uniqueness grouped in DuckDB, missing columns, and 'file:line' locations of null rows.

Each builder returns the same ``ExpectationOutcome`` shape GX results are turned into, so a suite's
report reads alike whoever computed an expectation. The SQL helpers (``quote_identifier``, ``_rows``)
live here because these builders query DuckDB; ``gx_runner`` re-exports ``quote_identifier``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_contracts.outcomes import (
    _IDENT,
    LINEAGE_COLUMNS,
    MAX_EXAMPLES,
    ExpectationOutcome,
    _expectation_columns,
    check_name,
    jsonable,
    severity_of,
)

if TYPE_CHECKING:
    import duckdb
    from great_expectations.expectations import Expectation


def quote_identifier(identifier: str) -> str:
    """``identifier`` double-quoted for DuckDB, after checking it is a plain name (never a value)."""
    if not _IDENT.match(identifier):
        raise ValueError(
            f"{identifier!r} is not a plain SQL identifier; table and column names come from the "
            "contracts and must match [A-Za-z_][A-Za-z0-9_]*"
        )
    return f'"{identifier}"'


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """All rows of ``sql``: DuckDB 2.0 refuses new work on a connection with an unfinished result."""
    return con.execute(sql, list(params or [])).fetchall()


def _percent(part: int, whole: int | None) -> float | None:
    """Share of ``whole`` in percent (6 decimals, as GX reports it); None when there is nothing to count."""
    return round(100.0 * part / whole, 6) if whole else None


def _schema_outcome(exp: Expectation, index: int, res: Any, actual: list[str]) -> ExpectationOutcome:
    """GX's verdict on the column set; the count is the number of missing plus unexpected columns."""
    info = res.exception_info or {}
    error = str(info.get("exception_message")) if info.get("raised_exception") else None
    expected = list(getattr(exp, "column_set", None) or getattr(exp, "column_list", None) or [])
    column = getattr(exp, "column", None)
    if column:
        expected = [column]
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected] if getattr(exp, "exact_match", True) and len(expected) > 1 else []
    mismatched = [f"missing {c}" for c in missing] + [f"unexpected {c}" for c in extra]
    return ExpectationOutcome(
        expectation_type=exp.expectation_type,
        columns=(column,) if column else (),
        success=error is None and bool(res.success),
        severity=severity_of(exp),
        unexpected_count=len(mismatched),
        element_count=len(expected),
        examples=tuple(mismatched[:MAX_EXAMPLES]),
        check=check_name(exp, index),
        observed=actual,
        error=error,
    )


def _type_outcome(exp: Expectation, index: int, catalog: Mapping[str, str]) -> ExpectationOutcome:
    """A column's storage type checked against DuckDB's catalog (pandas dtypes lose DECIMAL and DATE)."""
    column = exp.column  # type: ignore[attr-defined]
    expected = _norm_type(str(exp.type_))  # type: ignore[attr-defined]
    actual = catalog.get(column)
    ok = actual is not None and _norm_type(actual) == expected
    return ExpectationOutcome(
        expectation_type=exp.expectation_type,
        columns=(column,),
        success=ok,
        severity=severity_of(exp),
        unexpected_count=0 if ok else 1,
        element_count=1,
        examples=() if ok else (actual,),
        check=check_name(exp, index),
        observed=actual,
        error=None if actual is not None else f"column {column} is missing",
    )


def _norm_type(sql_type: str) -> str:
    """SQL type name compared case- and space-insensitively (``decimal(18, 2)`` = ``DECIMAL(18,2)``)."""
    return re.sub(r"\s+", "", sql_type.upper())


def _row_count_outcome(exp: Expectation, index: int, row_count: int) -> ExpectationOutcome:
    """A row-count expectation judged on the count DuckDB returned (equal, or between the bounds)."""
    low = getattr(exp, "min_value", None)
    high = getattr(exp, "max_value", None)
    exact = getattr(exp, "value", None)
    if exp.expectation_type == "expect_table_row_count_to_equal":
        ok = row_count == exact
    else:
        ok = (low is None or row_count >= low) and (high is None or row_count <= high)
    return ExpectationOutcome(
        expectation_type=exp.expectation_type,
        columns=(),
        success=ok,
        severity=severity_of(exp),
        element_count=row_count,
        check=check_name(exp, index),
        observed=row_count,
    )


def _missing_columns_outcome(exp: Expectation, index: int, missing: list[str], table: str) -> ExpectationOutcome:
    """A failed outcome naming the columns the table lacks (the chunk query could not select them)."""
    return ExpectationOutcome(
        expectation_type=exp.expectation_type,
        columns=_expectation_columns(exp),
        success=False,
        severity=severity_of(exp),
        check=check_name(exp, index),
        error=f"table {table} has no column(s) {missing}",
    )


def _unique_outcome(
    con: duckdb.DuckDBPyConnection,
    table: str,
    exp: Expectation,
    index: int,
    catalog: Mapping[str, str],
    bucket_rows: int,
    max_examples: int,
) -> ExpectationOutcome:
    """GX uniqueness semantics computed by DuckDB: rows whose key occurs more than once.

    Like GX, single columns ignore nulls and compound keys ignore rows whose key columns are all null.
    The GROUP BY runs in ``ceil(rows / bucket_rows)`` hash buckets to bound its hash table.
    """
    columns = list(_expectation_columns(exp))
    missing = sorted(set(columns) - catalog.keys())
    if missing:
        return _missing_columns_outcome(exp, index, missing, table)
    keys = ", ".join(quote_identifier(c) for c in columns)
    where = "not (" + " and ".join(f"{quote_identifier(c)} is null" for c in columns) + ")"
    tbl = quote_identifier(table)
    considered = int(_rows(con, f"select count(*) from {tbl} where {where}")[0][0])
    buckets = max(1, math.ceil(considered / bucket_rows))
    dup_rows = 0
    found: list[tuple[int, tuple[Any, ...]]] = []
    for bucket in range(buckets):
        # Bucket numbers are our own ints, inlined: a bound parameter here stops DuckDB pushing the
        # filter into the scan and makes each pass 3-4x slower.
        bucket_filter = f" and hash({keys}) % {int(buckets)} = {int(bucket)}" if buckets > 1 else ""
        dups = (
            f"select {keys}, count(*) as dup_n__ from {tbl} where {where}{bucket_filter} "
            "group by all having count(*) > 1"
        )
        n_rows, n_keys = _rows(con, f"select coalesce(sum(dup_n__), 0), count(*) from ({dups})")[0]
        dup_rows += int(n_rows)
        if n_keys:
            rows = _rows(con, f"select * from ({dups}) order by dup_n__ desc, {keys} limit ?", [max_examples])
            found.extend((int(r[-1]), tuple(r[:-1])) for r in rows)
    found.sort(key=lambda item: (-item[0], [str(v) for v in item[1]]))
    examples = tuple(jsonable(key[0]) if len(columns) == 1 else jsonable(list(key)) for _, key in found[:max_examples])
    mostly = float(getattr(exp, "mostly", 1.0) or 1.0)
    ok = dup_rows == 0 if mostly >= 1.0 else (considered == 0 or 1 - dup_rows / considered >= mostly)
    return ExpectationOutcome(
        expectation_type=exp.expectation_type,
        columns=tuple(columns),
        success=ok,
        severity=severity_of(exp),
        unexpected_count=dup_rows,
        element_count=considered,
        unexpected_percent=_percent(dup_rows, considered),
        examples=examples,
        check=check_name(exp, index),
    )


def _null_locations(
    con: duckdb.DuckDBPyConnection,
    table: str,
    exp: Expectation,
    catalog: Mapping[str, str],
    max_examples: int = MAX_EXAMPLES,
) -> tuple[str, ...]:
    """'file:line' of up to ``max_examples`` rows breaking a not-null expectation (GX only has None to show)."""
    if not all(c in catalog for c in LINEAGE_COLUMNS):
        return ()
    condition = _condition_sql(exp.configuration.kwargs.get("row_condition"))
    if condition is None:
        return ()
    where = f"{quote_identifier(exp.column)} is null" + (f" and {condition}" if condition else "")  # type: ignore[attr-defined]
    rows = con.execute(
        f'select "_file", "_line" from {quote_identifier(table)} where {where} order by "_file", "_line" limit ?',
        [max_examples],
    ).fetchall()
    return tuple(f"{f}:{line}" for f, line in rows)


def _condition_sql(condition: Any) -> str | None:
    """SQL for a GX nullity/and row condition ('' for none); None when it cannot be translated."""
    if condition is None:
        return ""
    if isinstance(condition, Mapping):
        kind = condition.get("type")
        if kind == "nullity":
            name = quote_identifier(str(condition["column"]["name"]))
            return f"{name} is {'' if condition.get('is_null') else 'not '}null"
        if kind == "and":
            parts = [_condition_sql(c) for c in condition.get("conditions", [])]
            if any(p is None or p == "" for p in parts):
                return None
            return "(" + " and ".join(p for p in parts if p) + ")"
    return None
