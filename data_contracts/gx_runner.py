"""The GX adapter: runs suites built by ``suites.build_suite`` against DuckDB tables with bounded memory.

``validate`` runs a suite against a loaded DuckDB table without ever holding the table in memory:

* row rules (not null, in set, between, row conditions) run in GX on pandas chunks of ``chunk_rows`` rows
  streamed from DuckDB through Arrow; per-chunk counts are summed and examples capped;
* uniqueness cannot be chunked: DuckDB groups the key (in hash buckets of ``unique_bucket_rows`` keys so
  the hash table stays bounded) and the result is reported as the same expectation's outcome;
* the column set is checked by GX on a zero-row frame of the table; storage types are read from DuckDB's
  catalog, because pandas dtypes cannot tell DECIMAL(18,2) from DOUBLE or DATE from TIMESTAMP;
* row counts come from DuckDB.

The outcomes computed without GX (types, row counts, uniqueness, missing columns, null locations) are
built in ``gx_outcomes``; this module holds the GX plumbing, the chunk tallies and ``validate``.

Why chunks: GX 1.24's SQL path does not work on DuckDB 2.0 through duckdb-engine 0.17 (reflection
queries pg_collation, bundled metric queries come back empty: GX issue #11579), and pre-aggregated
frames lose per-row counts. Measured on 2 cores (50M rows, defaults): browsing 7.8 s, orders
(11 checked columns + compound key) 39 s, peak RSS 0.74 / 1.27 GB including ~0.3 GB of imports and
DuckDB's buffer cache, which its ``memory_limit`` bounds.

GX is imported lazily: it takes several seconds to import and most callers (the Dagster code location
loading its definitions) never validate anything.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from data_contracts.contracts import Contract

if TYPE_CHECKING:
    import duckdb
    import great_expectations as gx
    import pandas as pd
    import pyarrow as pa
    from great_expectations.expectations import Expectation

from data_contracts.gx_outcomes import (
    _missing_columns_outcome,
    _null_locations,
    _percent,
    _row_count_outcome,
    _rows,
    _schema_outcome,
    _type_outcome,
    _unique_outcome,
    quote_identifier,
)
from data_contracts.outcomes import (
    _GX_LOCK,
    _ORDER_DEPENDENT,
    _ROW_COUNT_TYPES,
    _SCHEMA_TYPES,
    _TS_CEIL,
    _TS_FLOOR,
    _TYPE_TYPES,
    _UNIQUE_TYPES,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_UNIQUE_BUCKET_ROWS,
    MAX_EXAMPLES,
    ExpectationOutcome,
    ValidationReport,
    _expectation_columns,
    check_name,
    jsonable,
    severity_of,
)
from data_contracts.suites import build_suite

__all__ = ["quote_identifier", "run_expectations", "validate"]

# --------------------------------------------------------------------------------------------------
# GX plumbing
# --------------------------------------------------------------------------------------------------


@functools.cache
def _context() -> Any:
    """The process's in-memory GX context: no gx/ folder, no analytics, no progress bars.

    GX 1.x needs an active context even to add an expectation to a suite.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@functools.cache
def _batch_definition() -> Any:
    """A whole-dataframe batch definition on a pandas data source of the process's context."""
    asset = _context().data_sources.add_pandas("segments_frames").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


@contextlib.contextmanager
def _no_fingerprint() -> Iterator[None]:
    """Skip the md5 fingerprint GX 1.24 takes of every pandas batch under 1 GB.

    It is only batch metadata, yet hashing string columns costs ~3/4 of a chunk's validation time
    (10M order lines: 13.1 s with it, 3.4 s without). The module constant is restored afterwards.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    saved = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = saved


def _gx_results(frame: pd.DataFrame, expectations: Sequence[Expectation], max_examples: int) -> list[Any]:
    """GX results for ``expectations`` on ``frame``, in the order given."""
    import great_expectations as gx

    _context()
    suite = gx.ExpectationSuite(name="chunk")
    for i, exp in enumerate(expectations):
        suite.add_expectation(exp.copy(update={"meta": {**(exp.meta or {}), "_idx": i}}))
    with _GX_LOCK, _no_fingerprint():  # validate() loads the batch a second time, so it goes inside too
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite, result_format={"result_format": "BASIC", "partial_unexpected_count": max_examples}
        )
    ordered: list[Any] = [None] * len(expectations)
    for r in result.results:  # GX does not keep the suite's order
        ordered[r.expectation_config.meta["_idx"]] = r
    return ordered


def run_expectations(
    frame: pd.DataFrame, expectations: Sequence[Expectation], *, max_examples: int = MAX_EXAMPLES
) -> list[ExpectationOutcome]:
    """Validate in-memory ``frame`` (keep it to ~1M rows x a few columns) and return one outcome each."""
    tallies = [_Tally(exp, i) for i, exp in enumerate(expectations)]
    for tally, res in zip(tallies, _gx_results(frame, expectations, max_examples), strict=True):
        tally.add(res, max_examples)
    return [t.outcome() for t in tallies]


@dataclass
class _Tally:
    """Running sums of one map expectation over chunks."""

    expectation: Expectation
    index: int
    element_count: int = 0
    unexpected_count: int = 0
    missing_count: int = 0
    has_missing: bool = False
    examples: list[Any] = field(default_factory=list)
    observed: Any = None
    error: str | None = None
    gx_success: bool = True

    def add(self, res: Any, max_examples: int) -> None:
        info = res.exception_info or {}
        if info.get("raised_exception"):
            self.error = self.error or str(info.get("exception_message"))
            return
        result = res.result or {}
        self.gx_success = self.gx_success and bool(res.success)
        if "observed_value" in result:
            self.observed = result["observed_value"]
        self.element_count += int(result.get("element_count") or 0)
        self.unexpected_count += int(result.get("unexpected_count") or 0)
        if "missing_count" in result:
            self.has_missing = True
            self.missing_count += int(result.get("missing_count") or 0)
        for value in result.get("partial_unexpected_list") or []:
            value = jsonable(value)
            if isinstance(value, float) and value.is_integer():  # integers with nulls arrive as float64
                value = int(value)
            if len(self.examples) >= max_examples:
                break
            if value is not None and value not in self.examples:
                self.examples.append(value)

    def outcome(self) -> ExpectationOutcome:
        exp = self.expectation
        is_map = _is_map(exp)
        if not is_map:  # aggregate expectations: GX's verdict on the whole frame
            return ExpectationOutcome(
                expectation_type=exp.expectation_type,
                columns=_expectation_columns(exp),
                success=self.error is None and self.gx_success,
                severity=severity_of(exp),
                check=check_name(exp, self.index),
                observed=jsonable(self.observed),
                error=self.error,
            )
        nonmissing = self.element_count - self.missing_count
        mostly = float(getattr(exp, "mostly", 1.0) or 1.0)
        if nonmissing == 0:
            ok = True
        elif mostly >= 1.0:
            ok = self.unexpected_count == 0
        else:
            ok = 1 - self.unexpected_count / nonmissing >= mostly
        return ExpectationOutcome(
            expectation_type=exp.expectation_type,
            columns=_expectation_columns(exp),
            success=self.error is None and ok,
            severity=severity_of(exp),
            unexpected_count=self.unexpected_count,
            element_count=self.element_count,
            unexpected_percent=_percent(self.unexpected_count, nonmissing),
            examples=tuple(self.examples),
            check=check_name(exp, self.index),
            error=self.error,
        )


def _is_map(exp: Expectation) -> bool:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return isinstance(exp, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation)


def _condition_columns(exp: Expectation) -> set[str]:
    """Columns a row condition reads (structured GX 1.x conditions only)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in ("column", "other_column") and isinstance(value, Mapping) and "name" in value:
                    found.add(str(value["name"]))
                else:
                    walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(exp.configuration.kwargs.get("row_condition"))
    return found


# --------------------------------------------------------------------------------------------------
# The DuckDB runner
# --------------------------------------------------------------------------------------------------


def validate(
    con: duckdb.DuckDBPyConnection,
    table: str,
    suite_or_contract: gx.ExpectationSuite | Contract,
    *,
    accepted: Mapping[str, Sequence[str]] | None = None,
    max_ts: datetime | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    unique_bucket_rows: int = DEFAULT_UNIQUE_BUCKET_ROWS,
    max_examples: int = MAX_EXAMPLES,
) -> ValidationReport:
    """Validate DuckDB table or view ``table`` against a suite (or the suite built from a contract).

    Memory stays bounded by ``chunk_rows`` (rows of the checked columns held as pandas at once) and
    ``unique_bucket_rows`` (keys per uniqueness hash bucket), whatever the table size. Rows are read
    through a cursor of ``con``, which does not see TEMP views: use a plain view for a subset.
    """
    started = time.perf_counter()
    if isinstance(suite_or_contract, Contract):
        suite = build_suite(suite_or_contract, accepted=accepted, max_ts=max_ts, table_name=table)
    else:
        suite = suite_or_contract
    if chunk_rows < 1 or unique_bucket_rows < 1:
        raise ValueError("chunk_rows and unique_bucket_rows must be positive")
    tbl = quote_identifier(table)
    expectations = list(suite.expectations)
    _reject_unsupported(expectations, suite.name)

    catalog = _catalog(con, table)
    row_count = int(_rows(con, f"select count(*) from {tbl}")[0][0])
    outcomes: dict[int, ExpectationOutcome] = {}

    schema_exps = [(i, e) for i, e in enumerate(expectations) if e.expectation_type in _SCHEMA_TYPES]
    if schema_exps:
        empty = con.sql(f"select * from {tbl} limit 0").df()
        results = _gx_results(empty, [e for _, e in schema_exps], max_examples)
        for (i, e), res in zip(schema_exps, results, strict=True):
            outcomes[i] = _schema_outcome(e, i, res, list(empty.columns))

    chunked: list[tuple[int, Expectation]] = []
    for i, exp in enumerate(expectations):
        kind = exp.expectation_type
        if kind in _SCHEMA_TYPES:
            continue
        if kind in _TYPE_TYPES:
            outcomes[i] = _type_outcome(exp, i, catalog)
        elif kind in _ROW_COUNT_TYPES:
            outcomes[i] = _row_count_outcome(exp, i, row_count)
        elif kind in _UNIQUE_TYPES:
            outcomes[i] = _unique_outcome(con, table, exp, i, catalog, unique_bucket_rows, max_examples)
        else:
            missing = sorted((set(_expectation_columns(exp)) | _condition_columns(exp)) - catalog.keys())
            if missing:
                outcomes[i] = _missing_columns_outcome(exp, i, missing, table)
            else:
                chunked.append((i, exp))

    chunks = 0
    if chunked:
        tallies = [_Tally(exp, i) for i, exp in chunked]
        needed = sorted({c for _, e in chunked for c in (*_expectation_columns(e), *_condition_columns(e))})
        for frame in _chunks(con, table, needed, catalog, chunk_rows):
            chunks += 1
            results = _gx_results(frame, [e for _, e in chunked], max_examples)
            for tally, res in zip(tallies, results, strict=True):
                tally.add(res, max_examples)
            del frame, results
        for tally in tallies:
            outcome = tally.outcome()
            if not outcome.success and outcome.expectation_type == "expect_column_values_to_not_be_null":
                outcome = replace(
                    outcome, examples=_null_locations(con, table, tally.expectation, catalog, max_examples)
                )
            outcomes[tally.index] = outcome

    ordered = [outcomes[i] for i in range(len(expectations))]
    return ValidationReport.from_outcomes(
        table,
        ordered,
        row_count=row_count,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        suite_name=suite.name,
    )


def _reject_unsupported(expectations: Iterable[Expectation], suite_name: str) -> None:
    bad = sorted(
        {
            e.expectation_type
            for e in expectations
            if e.expectation_type in _ORDER_DEPENDENT
            or not (e.expectation_type in _SCHEMA_TYPES | _UNIQUE_TYPES | _ROW_COUNT_TYPES | _TYPE_TYPES or _is_map(e))
        }
    )
    if bad:
        raise ValueError(
            f"suite {suite_name}: {bad} cannot be validated chunk by chunk on a DuckDB table; "
            "use row-level (map) expectations, or validate an aggregated frame with run_expectations"
        )


def _catalog(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_name = ? and table_schema = current_schema() order by ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise ValueError(f"table {table!r} does not exist in the DuckDB database (or has no columns)")
    return {str(name): str(kind).upper() for name, kind in rows}


def _chunks(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    catalog: Mapping[str, str],
    chunk_rows: int,
) -> Iterator[pd.DataFrame]:
    """The table's ``columns`` as pandas frames of exactly ``chunk_rows`` rows (the last one shorter).

    One streaming scan on a cursor of its own. DECIMAL is read as DOUBLE (GX compares numbers
    vectorised; pandas would hold Decimal objects) and TIMESTAMP is clamped into the datetime64[ns]
    range (outside it GX falls back to a Python loop per value); types are checked from the catalog.
    """
    import pyarrow as pa

    select = ", ".join(_select_expr(c, catalog[c]) for c in columns)
    cursor = con.cursor()
    try:
        reader = cursor.sql(f"select {select} from {quote_identifier(table)}").to_arrow_reader(min(chunk_rows, 1 << 17))
        pending: pa.Table | None = None
        produced = False
        for batch in reader:
            part = pa.Table.from_batches([batch])
            pending = part if pending is None else pa.concat_tables([pending, part])
            while pending.num_rows >= chunk_rows:
                yield _to_pandas(pending.slice(0, chunk_rows), catalog)
                produced = True
                pending = pending.slice(chunk_rows)
        if pending is not None and (pending.num_rows or not produced):
            yield _to_pandas(pending, catalog)
        elif not produced:
            yield _to_pandas(reader.schema.empty_table(), catalog)
    finally:
        cursor.close()


def _select_expr(column: str, sql_type: str) -> str:
    q = quote_identifier(column)
    if sql_type.startswith("DECIMAL"):
        return f"cast({q} as double) as {q}"
    if sql_type in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
        return f"least(greatest(cast({q} as timestamp), {_TS_FLOOR}), {_TS_CEIL}) as {q}"
    return q


def _to_pandas(table: pa.Table, catalog: Mapping[str, str]) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in frame.columns:
        if catalog.get(name, "").startswith("TIMESTAMP") and "TIME ZONE" not in catalog[name]:
            frame[name] = frame[name].astype("datetime64[ns]")
    return frame
