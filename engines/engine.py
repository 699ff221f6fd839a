"""The few operations the SQL stages need from an engine, for DuckDB here and for Spark in ``engines/spark.py``.

A stage registers small Python-made tables (centroids, for instance) as views, materializes a rendered
statement as a named view, and fetches a result as Arrow. Everything else is the statement's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from engines.sql import Engine, Statement

# Warehouse column types (data_contracts SQL_TYPES and the feature columns) as Arrow types.
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "DECIMAL(18,2)": pa.decimal128(18, 2),
}


def arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    """(name, DuckDB type) pairs as an Arrow schema; an unknown type is an error naming the column."""
    fields = []
    for name, typ in columns:
        key = typ.replace(" ", "").upper()
        if key not in ARROW_TYPES:
            raise ValueError(f"column {name}: type {typ} has no Arrow mapping (known: {sorted(ARROW_TYPES)})")
        fields.append(pa.field(name, ARROW_TYPES[key]))
    return pa.schema(fields)


class SqlEngine(Protocol):
    """What the SQL stages call; implemented for DuckDB (:class:`DuckDBEngine`) and Spark."""

    name: Engine

    def register(self, view: str, table: pa.Table) -> None:
        """Make a small Arrow table queryable as ``view``."""

    def register_parquet(self, view: str, path: Path) -> None:
        """Make a Parquet file or folder queryable as ``view`` (read where it lies, not via Python)."""

    def create(
        self, view: str, statement: Statement, values: Mapping[str, object], columns: Sequence[str] = ()
    ) -> None:
        """Materialize ``statement`` with bound ``values`` as ``view`` (replacing it); ``columns`` renames
        the result's columns by position."""

    def fetch(self, statement: Statement, values: Mapping[str, object]) -> pa.Table:
        """Run ``statement`` with bound ``values`` and return its rows."""

    def fetch_view(self, view: str) -> pa.Table:
        """All rows of ``view``."""


class DuckDBEngine:
    """A DuckDB connection (normally a private in-memory one; session time zone UTC)."""

    name: Engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else duckdb.connect()
        self.con.execute("set TimeZone = 'UTC'")

    def register(self, view: str, table: pa.Table) -> None:
        self.con.register(f"_{view}_arrow", table)
        self.con.execute(f'create or replace temp table "{view}" as select * from "_{view}_arrow"')
        self.con.unregister(f"_{view}_arrow")

    def register_parquet(self, view: str, path: Path) -> None:
        self.con.read_parquet(str(path)).create_view(view, replace=True)

    def create(
        self, view: str, statement: Statement, values: Mapping[str, object], columns: Sequence[str] = ()
    ) -> None:
        body = statement.text
        if columns:  # names come from code (output_columns), quoted
            names = ", ".join(f'"{c}"' for c in columns)
            body = f"select * from ({body}) as renamed({names})"
        self.con.execute(f'create or replace temp table "{view}" as {body}', statement.bind(values))

    def fetch(self, statement: Statement, values: Mapping[str, object]) -> pa.Table:
        return self.con.sql(statement.text, params=statement.bind(values)).to_arrow_table()

    def fetch_view(self, view: str) -> pa.Table:
        return self.con.table(view).to_arrow_table()
