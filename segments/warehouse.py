"""The DuckDB warehouse file: one writer at a time, waiting politely for the other one.

DuckDB lets a single process hold a database file for writing; a second process gets a lock error.
Instead of failing a run that merely overlaps another (a nightly run and a UI backfill), we retry for a
bounded time and then fail with a message that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

DEFAULT_LOCK_TIMEOUT_S = 600.0


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse file for longer than we are willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "lock" in msg and ("conflicting" in msg or "could not set lock" in msg)


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, poll_s: float = 0.25
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
        yield con
    finally:
        con.close()
