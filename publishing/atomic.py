"""Publish output tables as Parquet files that BI tools can read while the pipeline rewrites them.

Layout under ``published_dir`` (PRODUCT.md §4)::

    <table>/snapshot_date=YYYY-MM-DD/part-0.parquet   history, one hive partition per snapshot (the
                                                      folder carries snapshot_date, the file does not)
    snapshots/<date>-<hash>/<table>.parquet           complete sets: every table of one publish
    snapshots/<date>-<hash>/_manifest.json            date, rows and SHA-256 of every table of the set
    current -> snapshots/<date>-<hash>                symlink: the newest set; BI tools read
                                                      current/<table>.parquet
    catalog.duckdb                                    views over the files above (``publishing.catalog``)
    .publish.lock                                     serialises publishers (flock; readers never lock)

One ``publish`` call is one snapshot set (PRODUCT.md §7, "a published snapshot switches as one set"):
every table is validated against its output contract before anything is written; history files and
the new set's folder are written under hidden temp names (``.<name>.<pid>-<token>.tmp``, matched by
no reader glob), fsynced, renamed into place, and then ``current`` is switched to the new folder by
one ``os.replace`` of a temp symlink. A reader that resolves ``current`` sees the old set or the new
set, never a mix; a killed run leaves the previous set intact and the next call removes its temp
files. The set folder is named by its content, so re-running gives byte-identical files and the same
folder. After a switch every set but the new and the one just replaced is deleted (a reader that
still holds a file of an older set keeps reading it: POSIX keeps an open file until it is closed).
A backfill of an older date writes history only; ``current`` never moves backwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_contracts.contracts import Contract
from publishing.deferred import DeferredTable, prepare_any
from publishing.prepare import PARTITION_KEY, PublishError, check_table_name, history_table

try:  # POSIX only; without it concurrent publishers are not serialised.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CURRENT_DIR = "current"
SNAPSHOTS_DIR = "snapshots"
MANIFEST_NAME = "_manifest.json"
PART_NAME = "part-0.parquet"
LOCK_NAME = ".publish.lock"
COMPRESSION = "zstd"

_PARTITION = re.compile(rf"^{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})$")
_TEMP = re.compile(r"^\..+\.\d+-[0-9a-f]{12}\.tmp(\.wal)?$")
_SET_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-[0-9a-f]{12}$")


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
    """Result of one ``publish`` call, per table; ``snapshot_id`` names the set ``current`` points at."""

    published_dir: Path
    snapshot_date: date
    snapshot_id: str | None = None
    current_switched: bool = False
    tables: dict[str, PublishedTable] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # set tables hard-linked from the previous set (unchanged)


@dataclass(frozen=True)
class SnapshotSet:
    """The set ``current`` points at: its folder, date and per-table rows and SHA-256."""

    snapshot_id: str
    snapshot_date: date
    folder: Path
    tables: dict[str, dict[str, object]]


# --------------------------------------------------------------------------------------------------
# file system helpers


def fsync_dir(path: Path) -> None:
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
        fsync_dir(d.parent)


def temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")


def _write_parquet(table: pa.Table | DeferredTable, path: Path) -> None:
    """Write ``table`` to the new file ``path`` (zstd, no timestamps: same table, same bytes) and fsync it."""
    if isinstance(table, DeferredTable):
        _write_deferred(table, path)
        return
    with open(path, "xb") as fh:
        pq.write_table(table, fh, compression=COMPRESSION)
        fh.flush()
        os.fsync(fh.fileno())


def _write_deferred(table: DeferredTable, path: Path) -> None:
    """Let the table's writer (Spark's executors) write the new file ``path``, then fsync it from here."""
    table.write(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(data: bytes, path: Path) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _remove(path: Path) -> None:
    """Delete a file, symlink or folder tree (a symlink itself, never what it points at)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def publish_lock(published_dir: Path) -> Iterator[None]:
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


def remove_stale(published_dir: Path) -> list[Path]:
    """Delete temp files, temp set folders and empty partition folders of a killed run (under the lock)."""
    removed: list[Path] = []
    for path in sorted(published_dir.rglob(".*.tmp*")):
        if os.path.lexists(path) and _TEMP.match(path.name):
            _remove(path)
            removed.append(path)
    for part in sorted(published_dir.glob(f"*/{PARTITION_KEY}=*")):
        if part.is_dir() and not part.is_symlink() and not any(part.iterdir()):
            part.rmdir()
            removed.append(part)
    return removed


# --------------------------------------------------------------------------------------------------
# paths and the current set


def history_path(published_dir: Path, table: str, snapshot_date: date) -> Path:
    """Path of one snapshot of ``table``."""
    check_table_name(table)
    return published_dir / table / f"{PARTITION_KEY}={snapshot_date.isoformat()}" / PART_NAME


def current_path(published_dir: Path, table: str) -> Path:
    """Stable path of ``table``'s current version (what BI tools point at)."""
    check_table_name(table)
    return published_dir / CURRENT_DIR / f"{table}.parquet"


def published_snapshots(published_dir: Path, table: str) -> list[date]:
    """Snapshot dates of ``table`` whose history file exists, oldest first."""
    check_table_name(table)
    out: list[date] = []
    for part in (published_dir / table).glob(f"{PARTITION_KEY}=*"):
        m = _PARTITION.match(part.name)
        if m and (part / PART_NAME).is_file():
            out.append(date.fromisoformat(m.group(1)))
    return sorted(out)


def current_set(published_dir: Path) -> SnapshotSet | None:
    """The set ``current`` points at, resolved once (None before the first publish).

    Read several tables through ``folder`` rather than ``current/`` to be sure they come from one set
    even if a publish switches ``current`` in between.
    """
    link = Path(published_dir) / CURRENT_DIR
    if not link.is_symlink():
        return None  # nothing published yet, or a folder of the layout before sets (replaced on publish)
    target = os.readlink(link)
    folder = (link.parent / target).resolve()
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    return SnapshotSet(
        snapshot_id=folder.name,
        snapshot_date=date.fromisoformat(manifest["snapshot_date"]),
        folder=folder,
        tables=manifest["tables"],
    )


def read_current(published_dir: Path, table: str) -> pa.Table:
    """The current version of ``table`` as an Arrow table."""
    path = current_path(Path(published_dir), table)
    if not path.is_file():
        have = sorted(p.stem for p in (Path(published_dir) / CURRENT_DIR).glob("*.parquet"))
        raise FileNotFoundError(f"{path}: {table!r} has not been published (published tables: {have})")
    return pq.read_table(path)


def read_current_set(published_dir: Path) -> tuple[date, dict[str, pa.Table]]:
    """Every table of the current set, all from the same set (its date and name -> table)."""
    snap = current_set(published_dir)
    if snap is None:
        raise FileNotFoundError(f"{Path(published_dir) / CURRENT_DIR}: nothing has been published yet")
    return snap.snapshot_date, {name: pq.read_table(snap.folder / f"{name}.parquet") for name in sorted(snap.tables)}


def _switch_current(published_dir: Path, snapshot_id: str) -> None:
    """Point ``current`` at ``snapshots/<snapshot_id>`` with one atomic rename of a temp symlink."""
    link = published_dir / CURRENT_DIR
    tmp = temp_path(link)
    os.symlink(f"{SNAPSHOTS_DIR}/{snapshot_id}", tmp)  # relative: the folder can move
    legacy = link.is_dir() and not link.is_symlink()
    if legacy:  # a current/ folder of the earlier layout: one rename aside, once
        aside = temp_path(link)
        os.rename(link, aside)
    _replace(tmp, link)
    fsync_dir(published_dir)
    if legacy:
        shutil.rmtree(aside, ignore_errors=True)


def _prune_sets(published_dir: Path, keep: set[str]) -> list[Path]:
    """Delete the set folders not in ``keep`` (never the one ``current`` points at)."""
    snap = current_set(published_dir)
    keep = keep | ({snap.snapshot_id} if snap else set())
    removed = []
    for folder in sorted((published_dir / SNAPSHOTS_DIR).glob("*")):
        if _SET_ID.match(folder.name) and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# --------------------------------------------------------------------------------------------------
# publish


def _content_digest(table: pa.Table) -> str:
    """SHA-256 of the table's schema and values (its Arrow IPC stream): equal digests, equal tables."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _write_set(
    folder: Path,
    tables: Mapping[str, pa.Table | DeferredTable],
    snapshot_date: date,
    previous: SnapshotSet | None = None,
) -> tuple[str, bytes, list[str]]:
    """Write every table and the manifest into the new folder ``folder``; return the set id, manifest and the
    tables taken over from ``previous``.

    Publishing writes only what changed: a table without a snapshot date (the run tables, data_quality and
    quarantine, which cover all history) whose content equals the one in the previous set is hard-linked
    from it instead of being encoded again. Set folders are never modified, so sharing a file is safe, and
    the link has the same bytes, so the manifest and the set id are the same as if it had been written.
    """
    folder.mkdir()
    entries: dict[str, dict[str, object]] = {}
    reused: list[str] = []
    for name in sorted(tables):
        path = folder / f"{name}.parquet"
        table = tables[name]  # a deferred table (written by Spark) is never held here to digest: always written
        content = (
            None if isinstance(table, DeferredTable) or PARTITION_KEY in table.column_names else _content_digest(table)
        )
        before = previous.tables.get(name, {}) if previous else {}
        source = previous.folder / f"{name}.parquet" if previous else None
        if content is not None and before.get("content") == content and source is not None and source.is_file():
            os.link(source, path)
            entries[name] = dict(before)
            reused.append(name)
            continue
        _write_parquet(tables[name], path)
        entries[name] = {"rows": tables[name].num_rows, "bytes": path.stat().st_size, "sha256": _sha256(path)}
        if content is not None:
            entries[name]["content"] = content
    manifest = json.dumps(
        {"format": 1, "snapshot_date": snapshot_date.isoformat(), "tables": entries}, indent=2, sort_keys=True
    ).encode()
    _write_bytes(manifest + b"\n", folder / MANIFEST_NAME)
    fsync_dir(folder)
    return f"{snapshot_date.isoformat()}-{hashlib.sha256(manifest).hexdigest()[:12]}", manifest + b"\n", reused


def _place_set(published_dir: Path, tmp_folder: Path, snapshot_id: str, manifest: bytes) -> Path:
    """Rename the written set folder to ``snapshots/<id>``; an existing one of that id has the same content."""
    final = published_dir / SNAPSHOTS_DIR / snapshot_id
    if final.is_dir():
        if (final / MANIFEST_NAME).read_bytes() != manifest:  # pragma: no cover - a hash collision or tampering
            raise PublishError(f"{final} exists with other content; remove it by hand (current does not use it)")
        shutil.rmtree(tmp_folder)
        return final
    _replace(tmp_folder, final)
    fsync_dir(final.parent)
    return final


def publish(
    published_dir: Path,
    tables: Mapping[str, pa.Table | DeferredTable],
    *,
    snapshot_date: date,
    contracts: Mapping[str, Contract],
    update_current: bool = True,
    history: Collection[str] | None = None,
) -> PublishReport:
    """Atomically publish ``tables`` (name -> Arrow table, already sorted by the caller, or a
    ``publishing.deferred.DeferredTable`` its writer writes in order) as one set.

    Tables named in ``history`` (default: all) get their history partition. The whole mapping becomes
    the new ``current`` set when ``update_current`` and the date is >= the current set's date and every
    history date of these tables, so a backfill never moves current backwards. Everything is
    validated before the first byte is written (``PublishError``).
    """
    if isinstance(snapshot_date, datetime) or not isinstance(snapshot_date, date):
        raise PublishError(f"snapshot_date must be a datetime.date, got {snapshot_date!r}")
    if not tables:
        raise PublishError("no tables given: a snapshot set needs at least one table")
    with_history = sorted(tables) if history is None else sorted(history)
    unknown = [n for n in with_history if n not in tables]
    if unknown:
        raise PublishError(f"history= names tables {unknown} that are not being published ({sorted(tables)})")
    prepared: dict[str, pa.Table | DeferredTable] = {}
    for name, table in tables.items():
        check_table_name(name)
        if name not in contracts:
            raise PublishError(
                f"table {name!r} has no output contract (known: {sorted(contracts)}); add "
                f"data_contracts/outputs/{name}.yaml"
            )
        prepared[name] = prepare_any(name, table, contracts[name], snapshot_date)

    published_dir = Path(published_dir).resolve()
    with publish_lock(published_dir):
        remove_stale(published_dir)
        before = current_set(published_dir)
        dates = [d for n in with_history for d in published_snapshots(published_dir, n)]
        newest = max([*dates, *([before.snapshot_date] if before else [])], default=None)
        switch = update_current and (newest is None or snapshot_date >= newest)
        pending: list[tuple[Path, Path]] = []  # (temp, final) history files
        tmp_set: Path | None = None
        reused: list[str] = []
        try:
            for name in with_history:
                final = history_path(published_dir, name, snapshot_date)
                _make_dirs(final.parent)
                tmp = temp_path(final)
                pending.append((tmp, final))
                _write_parquet(history_table(prepared[name]), tmp)
            if switch:
                _make_dirs(published_dir / SNAPSHOTS_DIR)
                tmp_set = temp_path(published_dir / SNAPSHOTS_DIR / snapshot_date.isoformat())
                snapshot_id, manifest, reused = _write_set(tmp_set, prepared, snapshot_date, before)
        except BaseException:
            remove_stale(published_dir)  # under the lock every temp file is ours or stale
            raise
        for tmp, final in pending:
            _replace(tmp, final)
        for folder in sorted({final.parent for _, final in pending}):
            fsync_dir(folder)
        set_id, switched = (before.snapshot_id if before else None), False
        if switch and tmp_set is not None:
            _place_set(published_dir, tmp_set, snapshot_id, manifest)
            switched = set_id != snapshot_id  # the same content as current: nothing to switch
            if switched:
                _switch_current(published_dir, snapshot_id)
                _prune_sets(published_dir, keep={snapshot_id, *([set_id] if set_id else [])})
            set_id = snapshot_id
        report = PublishReport(published_dir, snapshot_date, set_id, switched, reused=reused)
        history_files = {final.parent.parent.name: final for _, final in pending}
        for name, table in prepared.items():
            written = history_files.get(name) or published_dir / SNAPSHOTS_DIR / str(set_id) / f"{name}.parquet"
            report.tables[name] = PublishedTable(
                table=name,
                rows=table.num_rows,
                bytes=written.stat().st_size if written.exists() else 0,
                history_path=history_files.get(name),
                current_path=current_path(published_dir, name) if switch else None,
            )
    return report


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a small text file (a report) via temp file + rename, so readers never see half of it."""
    path = Path(path)
    _make_dirs(path.parent)
    tmp = temp_path(path)
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def publish_page(published_dir: Path, snapshot_date: date, name: str, text: str, *, table: str) -> Path:
    """Publish a page of ``snapshot_date`` (the report) as ``reports/<name>_<date>.html``, and as
    ``current/<name>.html`` when that date is the newest published snapshot of ``table``.

    Under the publish lock: another run publishing at the same time would otherwise delete this temp
    file as stale, or switch ``current`` between the date check and the write.
    """
    published_dir = Path(published_dir).resolve()
    with publish_lock(published_dir):
        path = write_text_atomic(published_dir / "reports" / f"{name}_{snapshot_date.isoformat()}.html", text)
        if snapshot_date >= max(published_snapshots(published_dir, table), default=snapshot_date):
            write_text_atomic(published_dir / CURRENT_DIR / f"{name}.html", text)
    return path
