"""Contract-checked ingestion of landing files into the DuckDB warehouse: the flow, file by file.

discover (``discovery``) -> read as a relation of records and ``_rej`` (``readers``) -> stage, type and check
every row in one SQL pass into ``_stg`` (``rules``) -> quarantine, set aside duplicates and key conflicts
(``quarantine``) -> insert, record (``manifest``) -> summarize (``report``). Every record of every file
ends in exactly one place: the source table, ``quarantine`` (file, line, column, masked value, reason)
or the duplicate count, so per file
``rows_read = rows_loaded + rows_quarantined + duplicates_dropped``; for CSV every physical line is a
record's, a blank line or a quarantined line. Nothing about one file fails the run: whatever goes wrong
reading it rejects that file, named, with the reason, and the next file goes on. Each file is loaded
in one transaction, so a crash never leaves half a file loaded.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import duckdb

from data_contracts.contracts import load_contract
from ingestion.discovery import Discovery, detect_format, discover, discover_files
from ingestion.landing import Landing, LandingPath, LocalLanding
from ingestion.lines import FileScan, gzipped
from ingestion.manifest import (
    MANIFEST_COLUMNS,
    META_COLUMNS,
    config_fingerprint,
    ensure_schema,
    forget,
    loaded_twin,
    mark_stale,
    previous,
    write_manifest,
)
from ingestion.quarantine import (
    QUARANTINE_COLUMNS,
    Target,
    bind,
    dedup,
    quarantine_rejects,
    quarantine_rule_breaks,
    raw_text_allowed,
)
from ingestion.readers import (
    FileRejected,
    Mapping,
    Raw,
    csv_header,
    describe_parquet,
    empty_rejects,
    map_columns,
    q,
    read_csv,
    read_jsonl,
    read_parquet,
)
from ingestion.report import FileResult, IngestReport, summarize
from ingestion.rules import Stage
from segments.config import Settings

__all__ = [
    "MANIFEST_COLUMNS",
    "META_COLUMNS",
    "QUARANTINE_COLUMNS",
    "FileRejected",
    "FileResult",
    "IngestReport",
    "Ingestor",
    "detect_format",
    "discover",
    "discover_files",
    "ensure_schema",
    "ingest_source",
    "reingest",
]

_TEMP_TABLES = ("_raw", "_raw_text", "_rej", "_rej_lines", "_stg", "_skip", "_cross", "_conflicting", "_incons")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|(Input|Line|line|value|Value):.*$")


def safe_error(exc: BaseException) -> str:
    """First line of a reader's error with quoted text cut out: messages may quote the data (PII)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return _QUOTED.sub("…", first)[:300]


class StagerUnavailable(RuntimeError):
    """The stager itself failed (its engine did not start or went away), not the file: the run fails and is
    retried, instead of the file being recorded as rejected (which would keep it out until it changes)."""


@dataclass(frozen=True)
class StageInput:
    """One file for a stager: its records as DuckDB would read them (``raw``; for CSV ``raw.params`` give the
    delimiter and the number of columns, the stager reads the lines itself) and the staging statement's inputs."""

    path: LandingPath
    fmt: str
    raw: Raw
    positions: dict[str, str]
    raw_types: dict[str, str]
    key: tuple[str, ...]
    floats: dict[str, str] = field(default_factory=dict)  # contract column -> DOUBLE | FLOAT of a Parquet file


class Stager(Protocol):
    """Stages files' rows elsewhere (``engines.spark_ingest.SparkStager``), for the formats it names."""

    formats: frozenset[str]

    def prestage(self, con: duckdb.DuckDBPyConnection, stage: Stage, items: list[StageInput]) -> None:
        """Before a run's first file loads: stage the files the run will load, together where it can."""

    def stage(self, con: duckdb.DuckDBPyConnection, stage: Stage, item: StageInput) -> str | None:
        """Create ``_stg`` as ``Stage.stage_sql`` would: None when staged, or, having created nothing, why it
        leaves the file to DuckDB. Raises ``StagerUnavailable`` when it cannot run at all."""

    def finish(self) -> None:
        """After the run's last file: drop what ``prestage`` kept."""


# ``_read``'s relation for a file whose rows a stager already staged into ``_stg``.
_STAGED = Raw("_stg")


class Ingestor:
    """Loads one source's landing files into the warehouse, file by file, each in one transaction.

    With a ``stager`` (``engine: spark``) the row rules of the files it takes run there; everything else
    (duplicates, conflicts, the insert, quarantine, the manifest) runs here, where the warehouse is.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        settings: Settings,
        source: str,
        *,
        run_id: str,
        run_ts: datetime,
        stager: Stager | None = None,
        landing: Landing | None = None,
    ) -> None:
        self.con = con
        self.stager = stager
        self.landing = landing or LocalLanding(settings)
        self._scans: dict[LandingPath, FileScan] = {}  # files hashed by ``_prestage``, for their own pass
        self.settings = settings
        self.source = source
        self.src = settings.sources[source]
        self.contract = load_contract(source)
        self.run_id = run_id
        # Stored timestamps are naive UTC; an aware run time is converted, not just stripped of its zone.
        self.run_ts = run_ts.astimezone(UTC).replace(tzinfo=None) if run_ts.tzinfo else run_ts
        self.stage = Stage(self.contract, settings, source, self.run_ts)
        self.fingerprint = config_fingerprint(settings, source)
        ensure_schema(con, [source])

    # ---- public
    def run(self, found: Discovery | None = None) -> IngestReport:
        """Ingest every new or changed file of the landing (or of ``found``, a discovery already made and
        narrowed); return accounting, status and reasons."""
        found = self.landing.discover(self.source) if found is None else found
        files = found.files
        try:
            self.landing.prepare(files)
            if self.stager is not None:
                self._prestage(files)
            results = [self.ingest_file(p) for p in files]
        finally:
            if self.stager is not None:
                self.stager.finish()
            self.landing.release()
        n = self.con.execute(f"select count(*) from {q(self.source)}").fetchall()[0][0]
        status, reasons = summarize(self.con, self.source)
        return IngestReport(self.source, results, int(n), found.problems, status, reasons)

    def ingest_file(self, path: LandingPath) -> FileResult:
        """Ingest one file (idempotent by path, content hash and config fingerprint); never raises for the file."""
        rel = self.landing.rel(path)
        try:
            return self._ingest(path, rel)
        except (KeyboardInterrupt, SystemExit, StagerUnavailable):
            raise
        except Exception as exc:  # no property of one file may fail the run
            return self._reject(FileResult(self.source, rel, "", 0, "unknown", "rejected"), exc)
        finally:
            self.con.execute("".join(f"drop table if exists {t};" for t in _TEMP_TABLES))

    # ---- steps
    def _prestage(self, files: list[LandingPath]) -> None:
        """Hand the stager every file of this run it will stage, before the first loads (one engine job per
        statement, not per file). Each file is hashed once: its own pass reuses the scan. Anything that goes
        wrong here is met again, and reported, by the file's own pass."""
        assert self.stager is not None
        items = []
        for path in files:
            try:
                scan = self._scans[path] = self.landing.scan(path)
                rel = self.landing.rel(path)
                if previous(self.con, self.source, rel) == (scan.sha256, self.fingerprint):
                    continue  # unchanged
                fmt = detect_format(path, self.src.format)
                if (
                    self._takes(fmt)
                    and self.landing.size(path)
                    and not loaded_twin(self.con, self.source, scan.sha256, self.fingerprint, rel)
                ):
                    item = self._stage_input(path, fmt, scan)
                    if item is not None:
                        items.append(item)
            except Exception:
                continue
        self.con.execute("drop table if exists _rej")
        if items:
            self.stager.prestage(self.con, self.stage, items)

    def _stage_input(self, path: LandingPath, fmt: str, scan: FileScan) -> StageInput | None:
        """What a stager needs for ``path`` (None: the file is DuckDB's), without reading its rows."""
        key = tuple(self.contract.primary_key)
        if fmt == "csv":
            if gzipped(path.name) or (scan.counts is not None and scan.counts.has_blank):
                return None  # compressed, or blank lines: DuckDB's reader numbers and accounts for them
            header = csv_header(self.landing.head(path), self.src.delimiter)
            mapping = map_columns(header, self.contract, self.src, self.src.delimiter)
            raw = Raw("_landing", {"delimiter": self.src.delimiter, "columns": len(header)})
            types = {"_line": "BIGINT", **{f"c{i}": "VARCHAR" for i in range(len(header))}}
            return StageInput(path, fmt, raw, mapping.positions, types, key)
        footer = self.landing.footer(path)
        described = describe_parquet(self.con, footer)
        mapping = map_columns(list(described), self.contract, self.src, None)
        raw = read_parquet(self.con, footer, self.contract, mapping, described)
        return StageInput(path, fmt, raw, mapping.positions, self._raw_types(raw), key, _floats(mapping, described))

    def _ingest(self, path: LandingPath, rel: str) -> FileResult:
        # FileNotFoundError when the file vanished since listing: rejected by the caller
        scan = self._scans.pop(path, None) or self.landing.scan(path)
        digest, size = scan.sha256, self.landing.size(path)
        prev_hash, prev_fp = previous(self.con, self.source, rel)
        unchanged = prev_hash == digest and prev_fp == self.fingerprint
        try:
            fmt = detect_format(path, self.src.format)
        except FileRejected as exc:
            if unchanged:
                return FileResult(self.source, rel, digest, size, "unknown", "unchanged")
            return self._record(FileResult(self.source, rel, digest, size, "unknown", "rejected", error=str(exc)))
        if unchanged:
            return FileResult(self.source, rel, digest, size, fmt, "unchanged")
        twin = loaded_twin(self.con, self.source, digest, self.fingerprint, rel)
        if twin:
            res = FileResult(
                self.source,
                rel,
                digest,
                size,
                fmt,
                "duplicate_file",
                rows_read=twin[1],
                duplicates_dropped=twin[1],
                warnings=[f"same content as {twin[0]}, already loaded: every row dropped"],
            )
            return self._record(res)
        res = FileResult(self.source, rel, digest, size, fmt, "loaded")
        try:
            # Read into temp tables before the transaction: row ids then count from 0 in file order (a
            # stager, which may hand the file back to DuckDB's reader, stages before it too).
            mapping, raw = self._read(path, fmt, res, scan)
            self.con.execute("begin transaction")
            try:
                forget(self.con, self.source, rel)
                self._load(rel, mapping, raw, res)
                write_manifest(self.con, res, self.run_id, self.run_ts, self.fingerprint)
                self.con.execute("commit")
            except BaseException:  # never leave the connection inside a half-done file
                self._rollback()
                raise
        except StagerUnavailable:  # not the file's fault: the run fails (and is retried), the file stays unseen
            raise
        except Exception as exc:  # rejected whole, named, and the run goes on
            return self._reject(FileResult(self.source, rel, digest, size, fmt, "rejected", warnings=res.warnings), exc)
        return res

    def _reject(self, res: FileResult, exc: BaseException) -> FileResult:
        """Record a file rejected by ``exc``; a file that vanished keeps what it loaded before."""
        self._rollback()
        res.error = self._message(exc)
        if isinstance(exc, FileNotFoundError):
            write_manifest(self.con, res, self.run_id, self.run_ts, self.fingerprint, log_only=True)
            return res
        return self._record(res)

    def _message(self, exc: BaseException) -> str:
        if isinstance(exc, FileRejected):
            return str(exc)
        if isinstance(exc, FileNotFoundError):
            return "the file disappeared between listing and reading; it is read again on the next run"
        if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
            return f"cannot read the file: corrupt or truncated gzip compression ({safe_error(exc)})"
        return f"cannot read the file: {safe_error(exc)}"

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction was open
            self.con.execute("rollback")

    def _record(self, res: FileResult) -> FileResult:
        """Record a file that loads nothing (rejected / duplicate) and drop rows it loaded before."""
        self.con.execute("begin transaction")
        forget(self.con, self.source, res.path)
        write_manifest(self.con, res, self.run_id, self.run_ts, self.fingerprint)
        self.con.execute("commit")
        return res

    def _read(self, path: LandingPath, fmt: str, res: FileResult, scan: FileScan) -> tuple[Mapping, Raw]:
        """Read the file's bad lines into ``_rej``; return the column mapping and the records as a relation.
        The whole file is fetched (``Landing.local``) only when DuckDB reads its rows."""
        con, contract, land = self.con, self.contract, self.landing
        if land.size(path) == 0:
            raise FileRejected("file is empty (0 bytes)")
        if fmt == "csv":
            header = csv_header(land.head(path), self.src.delimiter)
            mapping = map_columns(header, contract, self.src, self.src.delimiter)
            res.warnings.extend(mapping.warnings)
            item = self._stage_input(path, fmt, scan) if self._takes(fmt) else None
            if item is not None and self._stage_elsewhere(item):
                empty_rejects(con)
                return mapping, _STAGED
            raw, warns = read_csv(con, land.local(path), self.src.delimiter, header, scan.counts)
            res.warnings.extend(warns)
        elif fmt == "parquet":
            footer = land.footer(path)
            described = describe_parquet(con, footer)
            mapping = map_columns(list(described), contract, self.src, None)
            res.warnings.extend(mapping.warnings)
            raw = read_parquet(con, footer, contract, mapping, described)
            key = tuple(contract.primary_key)
            floats = _floats(mapping, described)
            if self._takes(fmt) and self._stage_elsewhere(
                StageInput(path, fmt, raw, mapping.positions, self._raw_types(raw), key, floats)
            ):
                return mapping, _STAGED
            if (local := land.local(path)) != footer:  # a footer alone: read the rows from the whole file
                raw = read_parquet(con, local, contract, mapping, described)
        else:
            mapping, raw, warns = read_jsonl(con, land.local(path), contract, self.src)
            res.warnings.extend(warns)
        return mapping, raw

    def _takes(self, fmt: str) -> bool:
        return self.stager is not None and fmt in self.stager.formats

    def _stage_elsewhere(self, item: StageInput) -> bool:
        """Whether the stager staged the file. A file it leaves to DuckDB loads exactly as on DuckDB, warnings
        included (the stager keeps why, for the run's metadata): where the rules ran never changes the result."""
        assert self.stager is not None
        return self.stager.stage(self.con, self.stage, item) is None

    def _raw_types(self, raw: Raw) -> dict[str, str]:
        rows = self.con.execute(f"describe select * from {raw.sql}", raw.params).fetchall()
        return {r[0]: str(r[1]).upper() for r in rows}

    def _load(self, rel: str, mapping: Mapping, raw: Raw, res: FileResult) -> None:
        """Stage, quarantine, set aside duplicates and conflicts, insert (inside the file's transaction)."""
        con = self.con
        if raw is not _STAGED:
            sql = self.stage.stage_sql(
                raw.sql, mapping.positions, self._raw_types(raw), tuple(self.contract.primary_key)
            )
            con.execute(sql, bind(sql, {**self.stage.params(), **raw.params}))
        good_rows = int(con.execute("select count(*) from _stg").fetchall()[0][0])
        extra = None if res.format == "jsonl" else mapping.extra  # a line that is not JSON may hold any key
        target = Target(
            self.source, rel, self.run_id, self.run_ts, self.contract, raw_text_allowed(self.contract, extra)
        )
        rejects = quarantine_rejects(con, target)
        res.rows_read = good_rows + rejects
        if res.rows_read == 0:
            res.warnings.append("header only: no data rows")
        quarantined = rejects + quarantine_rule_breaks(con, target)
        dropped, conflicts = dedup(con, target)
        res.rows_quarantined = quarantined + conflicts
        res.duplicates_dropped = dropped
        res.rows_loaded = self._insert(rel)
        if not res.balanced:  # pragma: no cover - an invariant, not an expected path
            raise RuntimeError(f"row accounting does not add up for {rel}: {res}")

    def _insert(self, rel: str) -> int:
        """Insert the rows to load, unsorted: ``_file`` and ``_line`` carry the order wherever it matters."""
        select = []
        for c in self.contract.columns:
            select.append(q(c.name))
            if c.local_date:
                select.append(self.stage.local_date_sql(c))
        names = [n for n, _ in self.contract.storage_columns()]
        skip = int(self.con.execute("select count(*) from _skip").fetchall()[0][0])
        where = "_rule is null" + (" and _line not in (select _line from _skip)" if skip else "")
        sql = (
            f"insert into {q(self.source)} ({', '.join(q(n) for n in names)}, _file, _line, _run_id) "
            f"select {', '.join(select)}, $f, _line, $run from _stg where {where}"
        )
        params = {**self.stage.params(), "f": rel, "run": self.run_id}
        return int(self.con.execute(sql, bind(sql, params)).fetchall()[0][0])


def _floats(mapping: Mapping, described: dict[str, str]) -> dict[str, str]:
    """Contract columns read from a Parquet file's DOUBLE or FLOAT column, with that type."""
    names = list(described)
    types = {target: described[names[int(pos[1:])]] for target, pos in mapping.positions.items()}
    return {target: t for target, t in types.items() if t in ("DOUBLE", "FLOAT")}


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    source: str,
    *,
    run_id: str,
    run_ts: datetime,
    stager: Stager | None = None,
    landing: Landing | None = None,
) -> IngestReport:
    """Ingest every new or changed landing file of ``source`` (row rules on ``stager`` where it takes the file;
    files from ``landing``, by default ``landing_dir``)."""
    return Ingestor(con, settings, source, run_id=run_id, run_ts=run_ts, stager=stager, landing=landing).run()


def reingest(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    source: str | None = None,
    file_glob: str | None = None,
    *,
    run_id: str | None = None,
    run_ts: datetime | None = None,
    stager: Callable[[str], Stager | None] = lambda source: None,
    landing: Callable[[str], Landing | None] = lambda source: None,
) -> list[IngestReport]:
    """Reload files now, even unchanged ones: every enabled source (or ``source``), every file (or ``file_glob``).

    ``file_glob`` matches paths relative to the landing root (``orders/2026-11-*.csv``) or file names. Each
    matching file replaces its rows and quarantine; files that no longer exist keep their rows. ``stager`` and
    ``landing`` give each source's stager and landing (``engine: spark``; by default DuckDB and ``landing_dir``).
    """
    run_ts = run_ts or datetime.now(UTC)  # the ingest run's own time, as for a scheduled run
    run_id = run_id or f"reingest-{run_ts:%Y%m%dT%H%M%S}"
    if source is not None and source not in settings.sources:
        raise ValueError(f"unknown source {source!r}; configured: {', '.join(sorted(settings.sources))}")
    names = [source] if source else [s for s, cfg in settings.sources.items() if cfg.enabled]
    reports = []
    ensure_schema(con)
    for name in names:
        land = landing(name) or LocalLanding(settings)
        found = land.discover(name)
        if file_glob:
            found.files = [
                p for p in found.files if fnmatch.fnmatch(land.rel(p), file_glob) or fnmatch.fnmatch(p.name, file_glob)
            ]
        mark_stale(con, name, [land.rel(p) for p in found.files])
        ingestor = Ingestor(con, settings, name, run_id=run_id, run_ts=run_ts, stager=stager(name), landing=land)
        reports.append(ingestor.run(found))
    return reports
