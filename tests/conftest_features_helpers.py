"""Helpers for feature tests: the warehouse source tables as ingestion leaves them, filled from plain rows.

Rows are dicts holding any subset of a table's columns; the rest are NULL. ``_file``/``_line`` are
filled in. Tables are created in a real DuckDB file (under the test's tmp_path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from data_contracts.contracts import load_contract

# The warehouse source tables exactly as ingestion creates them: from the contracts, not restated here.
SOURCE_SCHEMAS: dict[str, list[tuple[str, str]]] = {
    name: load_contract(name).storage_columns() for name in ("orders", "browsing", "feedback", "customers")
}
META = [("_file", "VARCHAR"), ("_line", "BIGINT")]
_ARROW = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "DECIMAL(18,2)": pa.decimal128(18, 2),
}


def create_sources(con: duckdb.DuckDBPyConnection, tables: Sequence[str] = tuple(SOURCE_SCHEMAS)) -> None:
    """Create the named source tables (empty) with the ingestion schema plus ``_file``/``_line``."""
    for name in tables:
        body = ", ".join(f"{col} {typ}" for col, typ in SOURCE_SCHEMAS[name] + META)
        con.execute(f"create table {name} ({body})")


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Append dict rows to ``table``; missing columns are NULL, ``_file``/``_line`` are numbered."""
    if not rows:
        return
    types = dict(SOURCE_SCHEMAS[table] + META)
    full = [{"_file": f"{table}/fixture.csv", "_line": i + 1, **row} for i, row in enumerate(rows)]
    cols = sorted({c for row in full for c in row})
    unknown = [c for c in cols if c not in types]
    if unknown:
        raise KeyError(f"{table}: unknown columns {unknown}")
    schema = pa.schema([(c, _ARROW[types[c]]) for c in cols])
    arrow_rows = pa.Table.from_pylist([{c: row.get(c) for c in cols} for row in full], schema=schema)
    con.register("_fixture_rows", arrow_rows)
    try:
        con.execute(f"insert into {table} by name select * from _fixture_rows")
    finally:
        con.unregister("_fixture_rows")


def make_warehouse(
    path: Path,
    orders: Sequence[dict[str, Any]] = (),
    browsing: Sequence[dict[str, Any]] = (),
    feedback: Sequence[dict[str, Any]] = (),
    customers: Sequence[dict[str, Any]] = (),
    tables: Sequence[str] = tuple(SOURCE_SCHEMAS),
) -> duckdb.DuckDBPyConnection:
    """A DuckDB file at ``path`` holding the given source rows; returns an open connection."""
    con = duckdb.connect(str(path))
    create_sources(con, tables)
    for name, rows in (("orders", orders), ("browsing", browsing), ("feedback", feedback), ("customers", customers)):
        if name in tables:
            insert_rows(con, name, rows)
    return con


def _ts(day: date, at: time | None) -> datetime:
    return datetime.combine(day, at or time(2, 0))


def order(
    order_id: str,
    customer_id: str | None,
    day: str,
    amount: str,
    status: str = "completed",
    channel: str | None = "online",
    category: str | None = None,
    line_id: int = 1,
    ts: str | None = None,
    store_id: str | None = None,
) -> dict[str, Any]:
    """One order line; ``day`` is the local order_date, ``ts`` (UTC) defaults to 02:00 that day."""
    d = date.fromisoformat(day)
    return {
        "order_id": order_id,
        "line_id": line_id,
        "customer_id": customer_id,
        "order_ts": datetime.fromisoformat(ts) if ts else _ts(d, None),
        "order_date": d,
        "amount": Decimal(amount),
        "quantity": 1,
        "unit_price": Decimal(amount),
        "status": status,
        "channel": channel,
        "category": category,
        "store_id": store_id,
        "currency": "CNY",
    }


def event(
    customer_id: str | None,
    session_id: str,
    day: str,
    event_type: str,
    category: str | None = None,
    duration_s: int | None = None,
) -> dict[str, Any]:
    """One browsing event on local date ``day``."""
    d = date.fromisoformat(day)
    return {
        "customer_id": customer_id,
        "session_id": session_id,
        "event_ts": _ts(d, None),
        "event_date": d,
        "event_type": event_type,
        "category": category,
        "duration_s": duration_s,
        "device": "mobile",
    }


def feedback_row(
    feedback_id: str,
    customer_id: str,
    day: str,
    kind: str,
    rating: int | None = None,
    nps: int | None = None,
    at: str = "09:00",
) -> dict[str, Any]:
    """One feedback item submitted on local date ``day`` at ``at`` (UTC clock time)."""
    d = date.fromisoformat(day)
    return {
        "feedback_id": feedback_id,
        "customer_id": customer_id,
        "submitted_ts": _ts(d, time.fromisoformat(at)),
        "submitted_date": d,
        "kind": kind,
        "rating": rating,
        "nps": nps,
        "comment": None,
    }


def customer(customer_id: str, signup: str | None, **attrs: Any) -> dict[str, Any]:
    """One customer record; PII columns get dummy values so tests can check they never leak."""
    d = date.fromisoformat(signup) if signup else None
    return {
        "customer_id": customer_id,
        "signup_ts": _ts(d, None) if d else None,
        "signup_date": d,
        "email": f"{customer_id}@example.com",
        "phone": "+86 138 0000 0000",
        "name": f"Name of {customer_id}",
        **attrs,
    }
