"""``catalog.duckdb``: one DuckDB file of views over the published Parquet tables, for BI tools.

Opened by every DuckDB reader in use: the file is written in the v1.0.0 storage format, which DuckDB
1.0 and later read (DuckDB 2.0 writes v2.0.0 by default, which no 1.x reader opens). It holds only
views, never data, so it stays small and is rebuilt after every publish.

Paths in the views (config key ``catalog_paths``):

- ``relative`` (default): ``current/<table>.parquet`` and ``<table>/snapshot_date=*/*.parquet``. The
  folder can move or be mounted elsewhere (a Docker container) and the catalog keeps working, but
  DuckDB resolves a relative path against the reader's working directory, not the catalog's folder:
  a reader runs from the published folder or first runs ``SET file_search_path = '<folder>'``
  (``connect_catalog`` and ``segments sql`` do that).
- ``absolute``: the full path of the published folder; works from any working directory with no
  setup statement, and breaks when the folder moves until the next run rebuilds the catalog.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TextIO

import duckdb

from data_contracts.contracts import Contract
from publishing.atomic import (
    CURRENT_DIR,
    current_path,
    fsync_dir,
    publish_lock,
    published_snapshots,
    remove_stale,
    temp_path,
)
from publishing.prepare import PARTITION_KEY, PublishError, check_table_name

CATALOG_NAME = "catalog.duckdb"
# The oldest storage format DuckDB 2.x still writes; DuckDB 1.0 and later read it.
STORAGE_VERSION = "v1.0.0"
CatalogPaths = Literal["relative", "absolute"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _history_columns(contract: Contract) -> str:
    """The history view's columns: the contract's order, ``snapshot_date`` (from the folder) where it belongs."""
    names = contract.column_names if PARTITION_KEY in contract.column_names else [*contract.column_names, PARTITION_KEY]
    return ", ".join(_ident(n) for n in names)


def catalog_statements(published_dir: Path, contracts: Mapping[str, Contract], root: str) -> list[str]:
    """DDL for the catalog: views over the files that exist, with comments from the contracts.

    ``root`` prefixes every path: ``"."`` for relative paths or the folder's absolute path.
    """
    root = root.rstrip("/") or "/"
    statements: list[str] = []
    names: set[str] = set()
    for table in sorted(contracts):
        check_table_name(table)
        contract = contracts[table]
        about = " ".join(s for s in (contract.description, f"Grain: {contract.grain}.") if s)
        views: list[tuple[str, str, str]] = []
        if current_path(published_dir, table).is_file():
            src = f"select * from read_parquet({_literal(f'{root}/{CURRENT_DIR}/{table}.parquet')})"
            views.append((table, src, about))
        if published_snapshots(published_dir, table):
            glob = f"{root}/{table}/{PARTITION_KEY}=*/*.parquet"
            src = (
                f"select {_history_columns(contract)} from read_parquet({_literal(glob)}, hive_partitioning = true, "
                f"union_by_name = true, hive_types = {{{_literal(PARTITION_KEY)}: 'DATE'}})"
            )
            views.append((f"{table}_history", src, f"All snapshots of {table}. {about}"))
        for view, src, comment in views:
            if view in names:
                raise PublishError(f"catalog view {view!r} is defined twice; rename one of the tables")
            names.add(view)
            statements.append(f"create view {_ident(view)} as {src}")
            statements.append(f"comment on view {_ident(view)} is {_literal(comment)}")
            for col in contract.columns:
                statements.append(f"comment on column {_ident(view)}.{_ident(col.name)} is {_literal(col.description)}")
            if view.endswith("_history") and PARTITION_KEY not in contract.column_names:
                statements.append(
                    f"comment on column {_ident(view)}.{_ident(PARTITION_KEY)} is "
                    f"{_literal('Snapshot date (from the snapshot_date= folder).')}"
                )
    return statements


def build_catalog(published_dir: Path, contracts: Mapping[str, Contract], *, paths: CatalogPaths = "relative") -> Path:
    """Rebuild ``catalog.duckdb`` in ``published_dir``: one view per published table and history.

    ``<table>`` reads ``current/<table>.parquet``; ``<table>_history`` reads every snapshot with
    ``snapshot_date`` from the folder names. Only tables with a contract get views; view and column
    comments come from the contracts. ``paths`` is explained in the module docstring.

    Built in a temp file and renamed over the old one, so readers holding the old catalog open keep
    working and never block the rebuild (open it read-only).
    """
    if paths not in ("relative", "absolute"):
        raise PublishError(f"catalog paths must be 'relative' or 'absolute', got {paths!r} (config key catalog_paths)")
    published_dir = Path(published_dir).resolve()
    root = "." if paths == "relative" else str(published_dir)
    final = published_dir / CATALOG_NAME
    with publish_lock(published_dir):
        remove_stale(published_dir)
        statements = catalog_statements(published_dir, contracts, root)
        tmp = temp_path(final)
        wal = tmp.with_name(tmp.name + ".wal")
        try:
            con = duckdb.connect()
            try:
                # views are bound when created: let relative paths resolve against the folder
                con.execute(f"set file_search_path = {_literal(str(published_dir))}")
                con.execute(f"attach {_literal(str(tmp))} as catalog (storage_version {_literal(STORAGE_VERSION)})")
                con.execute("use catalog")
                for sql in statements:
                    con.execute(sql)
                con.execute("use memory")
                con.execute("detach catalog")  # checkpoints: the file is complete, no WAL
            finally:
                con.close()
            if wal.exists():  # pragma: no cover - detach checkpoints; never rename half a database
                raise PublishError(f"{tmp}: DuckDB left a WAL after detach; catalog not replaced")
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            fsync_dir(published_dir)
        finally:
            tmp.unlink(missing_ok=True)
            wal.unlink(missing_ok=True)
    return final


def connect_catalog(catalog: Path) -> duckdb.DuckDBPyConnection:
    """Open ``catalog`` read-only with relative view paths resolving against its folder."""
    catalog = Path(catalog).resolve()
    if not catalog.is_file():
        raise FileNotFoundError(f"{catalog} does not exist: run `segments run` first (it builds the catalog)")
    con = duckdb.connect(str(catalog), read_only=True)
    con.execute(f"set file_search_path = {_literal(str(catalog.parent))}")
    return con


def storage_version(catalog: Path) -> int:
    """The storage version number in a DuckDB file's header (64 = the v1.0.0 format DuckDB 1.x reads)."""
    with open(catalog, "rb") as fh:
        header = fh.read(20)
    if header[8:12] != b"DUCK":
        raise PublishError(f"{catalog} is not a DuckDB database file")
    return int.from_bytes(header[12:20], "little")


def sql_shell(
    catalog: Path, *, command: str | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    """A small SQL shell on ``catalog`` (read-only): run ``command``, or read statements ending in ``;``.

    Needs only the ``duckdb`` Python module, so it works wherever the pipeline does. ``.tables`` lists
    the views; an empty line or end of input quits. Returns 1 if a statement failed, else 0.
    """
    con = connect_catalog(catalog)
    status = 0

    def run(sql: str) -> None:
        nonlocal status
        if sql.strip() in (".tables", ".tables;"):
            sql = "select view_name, comment from duckdb_views() where not internal order by 1"
        try:
            rel = con.sql(sql)
            print(rel if rel is not None else "ok", file=stdout)
        except duckdb.Error as exc:
            status = 1
            print(f"error: {exc}", file=stdout)

    try:
        if command is not None:
            run(command)
            return status
        interactive = stdin.isatty()
        buffer: list[str] = []
        while True:
            if interactive:
                print("segments> " if not buffer else "     ...> ", end="", file=stdout, flush=True)
            line = stdin.readline()
            if not line or (not buffer and not line.strip()):
                return status
            buffer.append(line.rstrip("\n"))
            text = "\n".join(buffer).strip()
            if text.endswith(";") or text == ".tables":
                run(text)
                buffer = []
    finally:
        con.close()
