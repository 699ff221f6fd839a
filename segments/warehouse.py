"""The DuckDB warehouse file: one writer at a time, waiting politely for the other one.

DuckDB lets a single process hold a database file for writing; a second process gets a lock error.
Instead of failing a run that merely overlaps another (a nightly run and a UI backfill), we retry for a
bounded time and then fail with a message that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

DEFAULT_LOCK_TIMEOUT_S = 600.0


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse file for longer than we are willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "lock" in msg and ("conflicting" in msg or "could not set lock" in msg)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``begin`` … ``commit``, or ``rollback`` on any exception (re-raised): the statements inside land together."""
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


@contextmanager
def connect(
    path: Path,
    *,
    read_only: bool = False,
    timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    poll_s: float = 0.25,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating its folder), waiting up to ``timeout_s`` for another writer."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"warehouse {path} is locked by another process for more than {timeout_s:.0f}s "
                    f"(another segments run or an open DuckDB client). Wait for it to finish or close it, "
                    f"then re-run; re-running is safe. DuckDB said: {exc}"
                ) from exc
            time.sleep(poll_s)
    try:
        con.execute("set TimeZone = 'UTC'")
        if memory_limit:
            con.execute(f"set memory_limit = '{memory_limit}'")  # validated by the config model
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists in the main schema."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = 'main' and table_name = $t",
            {"t": table},
        ).fetchall()[0][0]
    )


def replace_snapshot(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    snapshot_date: date,
    *,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int:
    """Delete-then-insert one snapshot of ``table`` in one transaction (idempotent re-runs and backfills).

    The table is created from the frame's schema when missing; columns new in the frame are added, so a
    newer code version can extend a table without losing older snapshots. ``also`` runs inside the same
    transaction (another table that must change with this one, or neither).
    """
    con.register("_snapshot_frame", frame.to_arrow())
    try:
        # Stage the frame in DuckDB first: inserting straight from the Arrow scan into a table created
        # in the same transaction left DuckDB 2.0's table statistics at 0 rows for this connection
        # (a later count(*) said 0, and filters on other columns still found the rows).
        con.execute("create or replace temp table _snapshot_stage as select * from _snapshot_frame")
        con.execute(f'create table if not exists "{table}" as select * from _snapshot_stage limit 0')
        have = {r[0] for r in con.execute(f'describe "{table}"').fetchall()}
        for name, dtype, *_ in con.execute("describe _snapshot_stage").fetchall():
            if name not in have:
                con.execute(f'alter table "{table}" add column "{name}" {dtype}')
        with transaction(con):
            con.execute(f'delete from "{table}" where snapshot_date = $d', {"d": snapshot_date})
            con.execute(f'insert into "{table}" by name select * from _snapshot_stage')
            if also is not None:
                also(con)
    finally:
        con.unregister("_snapshot_frame")
        con.execute("drop table if exists _snapshot_stage")
    return frame.height


def read_snapshot(con: duckdb.DuckDBPyConnection, table: str, snapshot_date: date) -> pl.DataFrame:
    """One snapshot of ``table`` as a polars frame (empty frame when the table is missing)."""
    if not table_exists(con, table):
        return pl.DataFrame()
    return con.sql(f'select * from "{table}" where snapshot_date = $d', params={"d": snapshot_date}).pl()


def first_business_date(path: Path) -> date | None:
    """The first local order date in the warehouse file, or None (no file, no orders, or it is busy)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:  # held by a writer right now: the caller falls back
        return None
    try:
        if not table_exists(con, "orders"):
            return None
        return con.execute("select min(order_date) from orders").fetchall()[0][0]
    finally:
        con.close()
