"""Publish output tables as Parquet files that BI tools can read while the pipeline rewrites them.

Layout under ``published_dir`` (PRODUCT.md §4)::

    <table>/snapshot_date=YYYY-MM-DD/part-0.parquet   history, one hive partition per snapshot
    current/<table>.parquet                           stable path BI tools point at: newest snapshot
    catalog.duckdb                                    views over the files above (``build_catalog``)
    .publish.lock                                     serialises publishers (flock; readers never lock)

A call with a ``snapshot_date`` writes every table's history partition and, unless it is a backfill,
its current copy. A call with ``snapshot_date=None`` writes only ``current/`` (per-run tables such as
``data_quality`` and ``quarantine``; publish them with a date instead to keep their history too).

Atomicity (PRODUCT.md §7): every table is validated against its output contract before anything is
written; every file is written to a hidden temp name in its final folder (``.<name>.<pid>-<token>.tmp``,
matched by no reader glob and skipped by pyarrow datasets), fsynced, and only when all temp files of
the call exist are they renamed over the old ones (``os.replace``) and the folders fsynced. A reader
sees the old or the new file, never half of one; a killed run leaves the previous files intact and
its temp files are removed by the next call. Re-running gives byte-identical files (zstd Parquet,
no timestamps in the metadata).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from data_contracts.contracts import INPUT_SOURCES, Contract, load_contract

try:  # POSIX only; without it concurrent publishers are not serialised.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CURRENT_DIR = "current"
CATALOG_NAME = "catalog.duckdb"
PART_NAME = "part-0.parquet"
PARTITION_KEY = "snapshot_date"
LOCK_NAME = ".publish.lock"
COMPRESSION = "zstd"

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARTITION = re.compile(rf"^{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})$")
_TEMP = re.compile(r"^\..+\.\d+-[0-9a-f]{12}\.tmp(\.wal)?$")

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


@dataclass(frozen=True)
class PublishedTable:
    """What one table's publish wrote. ``current_path`` is None when current was left alone."""

    table: str
    rows: int
    bytes: int
    history_path: Path | None
    current_path: Path | None


@dataclass(frozen=True)
class PublishReport:
    """Result of one ``publish`` call, per table."""

    published_dir: Path
    snapshot_date: date | None
    tables: dict[str, PublishedTable] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# validation (pure, runs before anything is written)


def _pii_names() -> frozenset[str]:
    """Column names marked PII in the input contracts: refused even if an output contract forgets."""
    return frozenset(n for source in INPUT_SOURCES for n in load_contract(source).pii_columns)


def _check_table_name(table: str) -> None:
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
    _check_table_name(table_name)
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
    if snapshot_date is not None:
        schema_meta[PARTITION_KEY] = snapshot_date.isoformat()
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_meta))


# --------------------------------------------------------------------------------------------------
# file system helpers


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each parent that gained an entry."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        _fsync_dir(d.parent)


def _temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to the new file ``path`` (zstd) and fsync it."""
    with open(path, "xb") as fh:
        pq.write_table(table, fh, compression=COMPRESSION)
        fh.flush()
        os.fsync(fh.fileno())


def _copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to the new file ``dst`` and fsync it."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)
        fout.flush()
        os.fsync(fout.fileno())


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


@contextlib.contextmanager
def _publish_lock(published_dir: Path) -> Iterator[None]:
    """Exclusive lock held by one publisher at a time; the OS drops it when the process dies."""
    _make_dirs(published_dir)
    with open(published_dir / LOCK_NAME, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_stale(published_dir: Path) -> list[Path]:
    """Delete temp files and empty partition folders left by a killed run (call under the lock)."""
    removed: list[Path] = []
    for path in sorted(published_dir.rglob(".*.tmp*")):
        if path.is_file() and _TEMP.match(path.name):
            path.unlink()
            removed.append(path)
    for part in sorted(published_dir.glob(f"*/{PARTITION_KEY}=*")):
        if part.is_dir() and not any(part.iterdir()):
            part.rmdir()
            removed.append(part)
    return removed


# --------------------------------------------------------------------------------------------------
# public API


def history_path(published_dir: Path, table: str, snapshot_date: date) -> Path:
    """Path of one snapshot of ``table``."""
    _check_table_name(table)
    return published_dir / table / f"{PARTITION_KEY}={snapshot_date.isoformat()}" / PART_NAME


def current_path(published_dir: Path, table: str) -> Path:
    """Stable path of ``table``'s current version (what BI tools point at)."""
    _check_table_name(table)
    return published_dir / CURRENT_DIR / f"{table}.parquet"


def published_snapshots(published_dir: Path, table: str) -> list[date]:
    """Snapshot dates of ``table`` whose history file exists, oldest first."""
    _check_table_name(table)
    out: list[date] = []
    for part in (published_dir / table).glob(f"{PARTITION_KEY}=*"):
        m = _PARTITION.match(part.name)
        if m and (part / PART_NAME).is_file():
            out.append(date.fromisoformat(m.group(1)))
    return sorted(out)


def publish(
    published_dir: Path,
    tables: Mapping[str, pa.Table],
    *,
    snapshot_date: date | None,
    contracts: Mapping[str, Contract],
    update_current: bool = True,
) -> PublishReport:
    """Atomically publish ``tables`` (name -> Arrow table, already sorted by the caller).

    With a ``snapshot_date`` each table gets its history partition; ``current/<table>.parquet`` is
    replaced only when ``update_current`` and the date is >= the table's newest published snapshot,
    so a backfill of an older date never moves current backwards. Without a date only current is
    written. Everything is validated before the first byte is written (``PublishError``).
    """
    if isinstance(snapshot_date, datetime) or not (snapshot_date is None or isinstance(snapshot_date, date)):
        raise PublishError(f"snapshot_date must be a datetime.date or None, got {snapshot_date!r}")
    if snapshot_date is None and not update_current:
        raise PublishError("snapshot_date=None with update_current=False would publish nothing")
    prepared: dict[str, pa.Table] = {}
    for name, table in tables.items():
        _check_table_name(name)
        if name not in contracts:
            raise PublishError(
                f"table {name!r} has no output contract (known: {sorted(contracts)}); add "
                f"data_contracts/outputs/{name}.yaml"
            )
        prepared[name] = prepare_table(name, table, contracts[name], snapshot_date)

    published_dir = Path(published_dir).resolve()
    report = PublishReport(published_dir=published_dir, snapshot_date=snapshot_date)
    with _publish_lock(published_dir):
        _remove_stale(published_dir)
        # (temp, final) pairs in rename order; per table: history first, then current.
        pending: list[tuple[Path, Path]] = []
        plan: dict[str, tuple[Path | None, Path | None]] = {}
        try:
            for name, table in prepared.items():
                hist = cur = None
                if snapshot_date is not None:
                    hist = history_path(published_dir, name, snapshot_date)
                    newest = max(published_snapshots(published_dir, name), default=None)
                    replace_current = update_current and (newest is None or snapshot_date >= newest)
                else:
                    replace_current = True
                if replace_current:
                    cur = current_path(published_dir, name)
                first = hist or cur
                assert first is not None
                _make_dirs(first.parent)
                tmp = _temp_path(first)
                pending.append((tmp, first))
                _write_parquet(table, tmp)
                if hist is not None and cur is not None:
                    _make_dirs(cur.parent)
                    tmp_cur = _temp_path(cur)
                    pending.append((tmp_cur, cur))
                    _copy_file(tmp, tmp_cur)
                plan[name] = (hist, cur)
        except BaseException:
            _remove_stale(published_dir)  # under the lock every temp file is ours or stale
            raise
        for tmp, final in pending:
            _replace(tmp, final)
        for folder in sorted({final.parent for _, final in pending}):
            _fsync_dir(folder)
        for name, (hist, cur) in plan.items():
            written = hist or cur
            assert written is not None
            report.tables[name] = PublishedTable(
                table=name,
                rows=prepared[name].num_rows,
                bytes=written.stat().st_size,
                history_path=hist,
                current_path=cur,
            )
    return report


def read_current(published_dir: Path, table: str) -> pa.Table:
    """The current version of ``table`` as an Arrow table."""
    path = current_path(Path(published_dir), table)
    if not path.is_file():
        have = sorted(p.stem for p in (Path(published_dir) / CURRENT_DIR).glob("*.parquet"))
        raise FileNotFoundError(f"{path}: {table!r} has not been published (published tables: {have})")
    return pq.read_table(path)


# --------------------------------------------------------------------------------------------------
# DuckDB catalog


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _catalog_statements(published_dir: Path, contracts: Mapping[str, Contract], view_root: str) -> list[str]:
    """DDL for the catalog: views over existing files, with comments from the contracts."""
    root = view_root.rstrip("/") or "/"  # "." or an absolute folder
    statements: list[str] = []
    names: set[str] = set()
    for table in sorted(contracts):
        _check_table_name(table)
        contract = contracts[table]
        about = " ".join(s for s in (contract.description, f"Grain: {contract.grain}.") if s)
        views: list[tuple[str, str, str]] = []
        if current_path(published_dir, table).is_file():
            src = f"read_parquet({_literal(f'{root}/{CURRENT_DIR}/{table}.parquet')})"
            views.append((table, src, about))
        if published_snapshots(published_dir, table):
            glob = f"{root}/{table}/{PARTITION_KEY}=*/*.parquet"
            src = (
                f"read_parquet({_literal(glob)}, hive_partitioning = true, union_by_name = true, "
                f"hive_types = {{{_literal(PARTITION_KEY)}: 'DATE'}})"
            )
            views.append((f"{table}_history", src, f"All snapshots of {table}. {about}"))
        for view, src, comment in views:
            if view in names:
                raise PublishError(f"catalog view {view!r} is defined twice; rename one of the tables")
            names.add(view)
            statements.append(f"create view {_ident(view)} as select * from {src}")
            statements.append(f"comment on view {_ident(view)} is {_literal(comment)}")
            for col in contract.columns:
                statements.append(f"comment on column {_ident(view)}.{_ident(col.name)} is {_literal(col.description)}")
            if view.endswith("_history") and PARTITION_KEY not in contract.column_names:
                statements.append(
                    f"comment on column {_ident(view)}.{_ident(PARTITION_KEY)} is "
                    f"{_literal('Snapshot date (from the snapshot_date= folder).')}"
                )
    return statements


def build_catalog(published_dir: Path, contracts: Mapping[str, Contract], *, relative_paths: bool = False) -> Path:
    """Rebuild ``catalog.duckdb`` in ``published_dir``: one view per published table.

    ``<table>`` reads ``current/<table>.parquet``; ``<table>_history`` reads every snapshot with
    ``snapshot_date`` from the folder names. Only tables with a contract get views; view and column
    comments come from the contracts.

    Paths: DuckDB resolves a relative path in a view against the *reader's* working directory, so by
    default views hold absolute paths of ``published_dir``; the catalog is rebuilt on every run (and
    after a move, by calling this again). With ``relative_paths=True`` views hold paths relative to
    the folder, which keep working wherever it is mounted provided the reader first runs
    ``SET file_search_path = '<folder>'``.

    Built in a temp file and renamed over the old one, so readers holding the old catalog open keep
    working and never block the rebuild (open it with ``read_only=True``).
    """
    published_dir = Path(published_dir).resolve()
    root = "." if relative_paths else str(published_dir)
    final = published_dir / CATALOG_NAME
    with _publish_lock(published_dir):
        _remove_stale(published_dir)
        statements = _catalog_statements(published_dir, contracts, root)
        tmp = _temp_path(final)
        wal = tmp.with_name(tmp.name + ".wal")
        try:
            con = duckdb.connect(str(tmp))
            try:
                # views are bound when created: let relative paths resolve against the folder
                con.execute(f"set file_search_path = {_literal(str(published_dir))}")
                for sql in statements:
                    con.execute(sql)
                con.execute("checkpoint")
            finally:
                con.close()
            if wal.exists():  # pragma: no cover - close() checkpoints; never rename half a database
                raise PublishError(f"{tmp}: DuckDB left a WAL after close; catalog not replaced")
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            _replace(tmp, final)
            _fsync_dir(published_dir)
        finally:
            tmp.unlink(missing_ok=True)
            wal.unlink(missing_ok=True)
    return final


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a small text file (a report) via temp file + rename, so readers never see half of it."""
    path = Path(path)
    _make_dirs(path.parent)
    tmp = _temp_path(path)
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path
