"""Check a table against its output contract and give it canonical storage types (pure, writes nothing).

Runs for every table of a publish before the first byte is written, so a refused table leaves the
published folder untouched.
"""

from __future__ import annotations

import re
from datetime import date

import pyarrow as pa

from data_contracts.contracts import INPUT_SOURCES, Contract, load_contract

PARTITION_KEY = "snapshot_date"

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# Canonical Arrow storage type of each logical contract type: every snapshot of a table gets the
# same Parquet schema, so history views never see int32 in one partition and int64 in another.
_CANONICAL: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(18, 2),
    "double": pa.float64(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    "string_list": pa.list_(pa.string()),
}


class PublishError(ValueError):
    """A table cannot be published; the message names the table, column and what to do."""


# --------------------------------------------------------------------------------------------------
# validation (pure, runs before anything is written)


def _pii_names() -> frozenset[str]:
    """Column names marked PII in the input contracts: refused even if an output contract forgets."""
    return frozenset(n for source in INPUT_SOURCES for n in load_contract(source).pii_columns)


def check_table_name(table: str) -> None:
    if not _TABLE_NAME.match(table):
        raise PublishError(
            f"table name {table!r} must be lower_snake_case (it becomes a file and view name under published_dir)"
        )


def _arrow_type_ok(logical: str, actual: pa.DataType) -> bool:
    """Whether ``actual`` may be stored as the contract's ``logical`` type (cast losslessly later)."""
    t = pa.types
    if t.is_null(actual):
        return True
    if t.is_dictionary(actual):  # e.g. polars Categorical/Enum: stored as plain strings
        return logical == "string" and _arrow_type_ok("string", actual.value_type)
    return {
        "string": t.is_string(actual) or t.is_large_string(actual) or t.is_string_view(actual),
        "integer": t.is_integer(actual),
        "decimal": t.is_decimal(actual),
        "double": t.is_floating(actual),
        "timestamp": t.is_timestamp(actual),
        "date": t.is_date(actual),
        "boolean": t.is_boolean(actual),
        "string_list": (t.is_list(actual) or t.is_large_list(actual)) and _arrow_type_ok("string", actual.value_type),
    }[logical]


def _storage_type(logical: str, actual: pa.DataType) -> pa.DataType:
    if logical == "timestamp":
        tz = actual.tz if pa.types.is_timestamp(actual) else None
        return pa.timestamp("us", tz=tz)
    return _CANONICAL[logical]


def prepare_table(table_name: str, table: pa.Table, contract: Contract, snapshot_date: date | None) -> pa.Table:
    """Check ``table`` against ``contract`` and return it with canonical types and descriptions.

    Raises ``PublishError`` for PII columns, columns that differ from the contract (names and order),
    incompatible types, lossy casts, or a ``snapshot_date`` column that disagrees with the partition.
    """
    check_table_name(table_name)
    if contract.name != table_name:
        raise PublishError(f"table {table_name!r} was given the contract named {contract.name!r}")
    where = f"table {table_name!r} (contract {contract.name!r})"
    pii = sorted(set(contract.pii_columns) | (set(table.column_names) & _pii_names()))
    if pii:
        raise PublishError(
            f"{where}: columns {pii} are PII and never reach published tables (PRODUCT.md §7); "
            "drop them from the table and the output contract, or rename a non-PII column"
        )
    expected, got = contract.column_names, table.column_names
    if got != expected:
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same names, other order"
        raise PublishError(
            f"{where}: columns do not match the contract ({detail}); expected {expected}, got {got}. "
            "Select the contract's columns in contract order, or update the output contract"
        )
    arrays: list[pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for col, array in zip(contract.columns, table.columns, strict=True):
        if not _arrow_type_ok(col.type, array.type):
            raise PublishError(
                f"{where}: column {col.name!r} has type {array.type}, expected {col.type} "
                f"({col.sql_type}); cast it where the table is built, or fix the contract"
            )
        target = _storage_type(col.type, array.type)
        if array.type != target:
            try:
                array = array.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise PublishError(
                    f"{where}: column {col.name!r} ({array.type}) cannot be stored as {target} "
                    f"without losing values: {exc}"
                ) from exc
        arrays.append(array)
        fields.append(
            pa.field(
                col.name,
                target,
                nullable=True,
                metadata={"description": col.description, "logical_type": col.type},
            )
        )
    if snapshot_date is not None and PARTITION_KEY in got and contract.column(PARTITION_KEY).type == "date":
        values = table.column(PARTITION_KEY).cast(pa.date32()).unique().drop_null().to_pylist()
        wrong = [v for v in values if v != snapshot_date]
        if wrong:
            raise PublishError(
                f"{where}: column {PARTITION_KEY!r} holds {wrong[:5]} but the table is published as "
                f"snapshot {snapshot_date.isoformat()}; the folder and the column must agree"
            )
    schema_meta = {
        "table": table_name,
        "description": contract.description,
        "grain": contract.grain,
        "primary_key": ",".join(contract.primary_key),
    }
    if snapshot_date is not None and PARTITION_KEY in got:
        # Only a dated table is of one snapshot; the run tables (data_quality, quarantine: all history) are not,
        # so an unchanged one is the same bytes in the next set (publishing.atomic links it instead of writing).
        schema_meta[PARTITION_KEY] = snapshot_date.isoformat()
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_meta))


def history_table(table: pa.Table) -> pa.Table:
    """``table`` as stored in a history partition: without its ``snapshot_date`` column.

    The folder name (``snapshot_date=YYYY-MM-DD``) carries the date. A file column of the same name
    clashes with the folder's value in hive readers (pandas/pyarrow infer the folder as text and refuse
    to merge it with a date column), so history files leave it out and every reader gets it from the
    folder; the schema metadata still records it for a single file read on its own.
    """
    if PARTITION_KEY not in table.column_names:
        return table
    return table.drop_columns([PARTITION_KEY])
