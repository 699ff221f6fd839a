"""Contract-checked ingestion of landing files into the DuckDB warehouse.

Every row of every file ends in exactly one place: the source table (loaded), the ``quarantine`` table
(with file, line, column, value and reason), or the duplicate count. Per file,
``rows_read = rows_loaded + rows_quarantined + duplicates_dropped``, recorded in ``ingest_manifest``
(latest state per file) and ``ingest_log`` (every attempt). A file that cannot be read or lacks a
required column is rejected whole with an error naming the file and the problem; the rest goes on.

Each file is processed in one transaction, so a crash never leaves half a file loaded. The manifest
keys files by path and content hash: the same file twice changes nothing, a re-delivered (changed)
file replaces the rows it loaded before. Row rules run as SQL inside DuckDB, streaming, never in pandas.
Identifiers come only from contracts; user values (formats, time zones, accepted values) are bound.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa

from data_contracts.contracts import Column, Contract, load_contract
from segments.config import Settings, SourceConfig

MANIFEST_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR"),
    ("path", "VARCHAR"),
    ("content_hash", "VARCHAR"),
    ("size_bytes", "BIGINT"),
    ("format", "VARCHAR"),
    ("status", "VARCHAR"),
    ("rows_read", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("duplicates_dropped", "BIGINT"),
    ("error", "VARCHAR"),
    ("warnings", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("ingested_at", "TIMESTAMP"),
]
QUARANTINE_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR"),
    ("file", "VARCHAR"),
    ("line", "BIGINT"),
    ("column_name", "VARCHAR"),
    ("value", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("quarantined_at", "TIMESTAMP"),
]
META_COLUMNS: list[tuple[str, str]] = [("_file", "VARCHAR"), ("_line", "BIGINT"), ("_run_id", "VARCHAR")]

_SKIP_NAME = re.compile(r"^[._~]|\.(tmp|part|partial|crdownload)$", re.IGNORECASE)
_TZ_SUFFIX = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$"
_MAX_VALUE_CHARS = 200
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
_INTEGER_TYPES = _NUMERIC_TYPES[:10]


class FileRejected(Exception):
    """A file that is rejected whole; the message is shown to the user as is."""


@dataclass
class FileResult:
    """Row accounting and outcome of one landing file."""

    source: str
    path: str
    content_hash: str
    size_bytes: int
    format: str
    status: str  # loaded | rejected | unchanged | duplicate_file
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """rows_read == loaded + quarantined + dropped."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.duplicates_dropped


@dataclass
class IngestReport:
    """Outcome of ingesting one source: one result per landing file seen."""

    source: str
    files: list[FileResult]
    table_rows: int = 0

    def total(self, attr: str) -> int:
        """Sum of a count over the files processed in this run (unchanged files excluded)."""
        return sum(getattr(f, attr) for f in self.files if f.status != "unchanged")

    def count(self, status: str) -> int:
        """Number of files with ``status``."""
        return sum(f.status == status for f in self.files)

    def as_rows(self) -> list[dict[str, Any]]:
        """Plain dicts, one per file, for metadata tables."""
        return [{**asdict(f), "warnings": "; ".join(f.warnings)} for f in self.files]


# ----------------------------------------------------------------------------------------------- schema
def _create(con: duckdb.DuckDBPyConnection, table: str, cols: list[tuple[str, str]]) -> None:
    body = ", ".join(f'"{n}" {t}' for n, t in cols)
    con.execute(f'create table if not exists "{table}" ({body})')


def ensure_schema(con: duckdb.DuckDBPyConnection, sources: list[str] | None = None) -> None:
    """Create the source tables, quarantine and manifest if missing (idempotent)."""
    for name in sources or ["orders", "browsing", "feedback", "customers"]:
        _create(con, name, load_contract(name).storage_columns() + META_COLUMNS)
    _create(con, "quarantine", QUARANTINE_COLUMNS)
    _create(con, "ingest_log", MANIFEST_COLUMNS)
    _create(con, "ingest_manifest", MANIFEST_COLUMNS)


# ------------------------------------------------------------------------------------------- discovery
def discover_files(settings: Settings, source: str) -> list[Path]:
    """Landing files of ``source`` in sorted order; hidden and in-flight temp files are skipped."""
    src = settings.sources[source]
    root = settings.landing_dir.resolve()
    files = []
    for p in sorted(root.glob(src.glob)):
        if not p.is_file() or _SKIP_NAME.search(p.name):
            continue
        if not p.resolve().is_relative_to(root):  # a symlink pointing outside the landing root
            continue
        files.append(p)
    return files


def detect_format(path: Path, configured: str) -> str:
    """csv | parquet | jsonl from the config, or from the file extension when ``auto``."""
    if configured != "auto":
        return configured
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in (
        (".csv", "csv"),
        (".tsv", "csv"),
        (".txt", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
    ):
        if name.endswith(ext):
            return fmt
    raise FileRejected(
        f"cannot tell the format of {path.name} from its extension; name it .csv/.csv.gz/.parquet/.jsonl "
        f"or set sources.<source>.format in the config"
    )


def _open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzipped."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


@dataclass(frozen=True)
class FileScan:
    """What one streamed pass over a file's bytes tells: its hash and, unless compressed, its lines."""

    sha256: str
    physical_lines: int | None  # None for .gz: the lines are in the decompressed stream


def scan_file(path: Path) -> FileScan:
    """Content hash and physical line count in one pass (the line count feeds CSV line numbering)."""
    h = hashlib.sha256()
    newlines, last = 0, b"\n"
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    compressed = path.name.lower().endswith(".gz")
    return FileScan(h.hexdigest(), None if compressed else newlines + (last != b"\n"))


# ----------------------------------------------------------------------------------------------- readers
def _csv_header(path: Path, delimiter: str) -> list[str]:
    """Column names from the first line, BOM stripped; reject unreadable or empty files."""
    try:
        with _open_bytes(path) as fh:
            first = fh.readline(1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"cannot read the file (corrupt or truncated compression?): {exc}") from exc
    if not first.strip():
        raise FileRejected("file is empty: no header line")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"line 1 (header) is not valid UTF-8 at byte {exc.start}; re-export the file as UTF-8"
        ) from exc
    names = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    return [n.strip() for n in names]


def _map_columns(
    file_cols: list[str], contract: Contract, src: SourceConfig, delimiter: str | None
) -> tuple[dict[str, str], list[str]]:
    """contract column -> file column, plus warnings; rejects missing required or ambiguous columns."""
    seen: dict[str, str] = {}
    for col in file_cols:
        target = src.rename.get(col, col).strip().lower()
        if target in seen:
            raise FileRejected(f"columns {seen[target]!r} and {col!r} both map to contract column {target!r}")
        seen[target] = col
    contract_cols = set(contract.column_names)
    missing = [c for c in contract.required_columns if c not in seen]
    if missing:
        hint = ""
        if delimiter and len(file_cols) == 1:
            for other in (";", "\t", "|", ","):
                if other != delimiter and other in file_cols[0]:
                    hint = (
                        f" The header looks {other!r}-delimited while the config says {delimiter!r}: "
                        f"set sources.{contract.name}.delimiter."
                    )
                    break
        found = ", ".join(file_cols[:20])
        raise FileRejected(
            f"missing required column(s) {', '.join(missing)} (found: {found}).{hint} "
            f"Map your column names with sources.{contract.name}.rename in the config."
        )
    warnings = []
    extra = [orig for tgt, orig in seen.items() if tgt not in contract_cols]
    if extra:
        warnings.append(f"ignored column(s) not in the {contract.name} contract: {', '.join(extra)}")
    return {tgt: orig for tgt, orig in seen.items() if tgt in contract_cols}, warnings


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, src: SourceConfig, header: list[str], physical_lines: int | None
) -> int:
    """Load the file as text into temp table ``_raw`` with physical line numbers; bad lines to ``_rejects``."""
    con.execute("drop table if exists _csv_rejects; drop table if exists _csv_scans")
    # Positional column names (c0, c1, ...) keep user-supplied header text out of SQL entirely.
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    con.execute(
        f"""
        create or replace temp table _raw_text as
        select * from read_csv($path, header = true, delim = $delim, quote = '"', escape = '"',
                               auto_detect = false, columns = {cols}, store_rejects = true,
                               rejects_table = '_csv_rejects', rejects_scan = '_csv_scans')
        """,
        {"path": str(path), "delim": src.delimiter},
    )
    # Physical line of each good row: rows keep file order (insertion order is preserved); rejected
    # lines are skipped by the reader, so shift each row by the number of rejected lines before it.
    # ``good_before`` = good rows before a rejected line; ``shift`` = rejected lines up to and including it.
    con.execute(
        """
        create or replace temp table _rej as
        select line, column_name, error_type, error_message, csv_line,
               line - 2 - (row_number() over (order by line) - 1) as good_before,
               row_number() over (order by line) as shift
        from (select distinct on (line) line, column_name, error_type, error_message, csv_line
              from _csv_rejects order by line)
        """
    )
    # An as-of join (last rejected line with good_before <= row id) keeps this linear; a correlated
    # count per row took minutes on a 1M-row file with 1% bad lines.
    n_rej = int(con.execute("select count(*) from _rej").fetchall()[0][0])
    if n_rej == 0:  # the common case: line = row id + 2 (header is line 1)
        con.execute("create or replace temp table _raw as select t.rowid + 2 as _line, t.* from _raw_text t")
    else:
        con.execute(
            """
            create or replace temp table _raw as
            select t.rowid + 2 + coalesce(r.shift, 0) as _line, t.*
            from _raw_text t
            asof left join (select good_before, max(shift) as shift from _rej group by good_before) r
              on t.rowid >= r.good_before
            """
        )
    n_good = int(con.execute("select count(*) from _raw").fetchall()[0][0])
    if (physical_lines if physical_lines is not None else _physical_lines(path)) != 1 + n_good + n_rej:
        _renumber_physical_lines(con, path, src.delimiter)
    return n_rej


def _open_text(path: Path) -> IO[str]:
    return io.TextIOWrapper(_open_bytes(path), encoding="utf-8-sig", errors="replace", newline="")


def _physical_lines(path: Path) -> int:
    """Number of physical lines of the (decompressed) file; a last line without a newline counts."""
    n, last = 0, b"\n"
    with _open_bytes(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def _renumber_physical_lines(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str) -> None:
    """Give rows their physical start line when blank lines or quoted line breaks shift DuckDB's numbering.

    DuckDB numbers records (a blank line counts, a quoted value spanning lines does not), so only the
    rare files whose line count disagrees take this slower pass with Python's csv reader, which splits
    records the same way: each record's start line is the line after the previous record's end.
    """
    rejected = {int(r[0]) for r in con.execute("select line from _rej").fetchall()}
    good_lines: list[int] = []
    rej_map: list[tuple[int, int]] = []
    csv.field_size_limit(1 << 30)
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar='"', doublequote=True)
        next(reader, None)
        prev, record = reader.line_num, 1
        for row in reader:
            record += 1
            start, prev = prev + 1, reader.line_num
            if record in rejected:
                rej_map.append((record, start))
            elif row:
                good_lines.append(start)
    n_good = con.execute("select count(*) from _raw").fetchall()[0][0]
    if len(good_lines) != n_good:  # the readers disagree on record boundaries: keep DuckDB's numbers
        return
    con.register(
        "_good_lines",
        pa.table({"i": pa.array(range(len(good_lines)), pa.int64()), "line": pa.array(good_lines, pa.int64())}),
    )
    con.register(
        "_rej_lines",
        pa.table(
            {
                "record": pa.array([r for r, _ in rej_map], pa.int64()),
                "line": pa.array([ln for _, ln in rej_map], pa.int64()),
            }
        ),
    )
    try:
        con.execute(
            "create or replace temp table _raw as select g.line as _line, t.* exclude (_line) "
            "from (select row_number() over (order by _line) - 1 as _i, * from _raw) t "
            "join _good_lines g on g.i = t._i order by g.line"
        )
        con.execute("alter table _raw drop column _i")
        con.execute("update _rej set line = m.line from _rej_lines m where _rej.line = m.record")
    finally:
        con.unregister("_good_lines")
        con.unregister("_rej_lines")


def _read_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, mapping: dict[str, str], described: dict[str, str]
) -> None:
    """Load a Parquet file into ``_raw``; reject it whole when a column's type cannot hold the contract's."""
    problems = []
    for target, orig in mapping.items():
        ctype = contract.column(target).type
        dtype = str(described.get(orig, "")).upper()
        if ctype in ("integer",) and not dtype.startswith(_INTEGER_TYPES):
            problems.append(f"{orig} is {dtype}, expected an integer type")
        elif ctype in ("decimal", "double") and not dtype.startswith(_NUMERIC_TYPES):
            problems.append(f"{orig} is {dtype}, expected a numeric type")
        elif ctype in ("timestamp", "date") and not (dtype.startswith(("TIMESTAMP", "DATE")) or dtype == "VARCHAR"):
            problems.append(f"{orig} is {dtype}, expected a timestamp, date or text")
    if problems:
        raise FileRejected("Parquet column types do not match the contract: " + "; ".join(problems))
    sel = ", ".join(f"{_q(orig)} as c{i}" for i, orig in enumerate(described))
    con.execute(
        f"create or replace temp table _raw as select file_row_number + 1 as _line, {sel} "
        "from read_parquet($p, file_row_number = true)",
        {"p": str(path)},
    )


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Load a JSON Lines file into ``_raw`` as text; returns its keys.

    Every key is read as VARCHAR: with inferred types a key holding both numbers and strings becomes
    JSON, and its strings would keep their quotes ('"c1"').
    """
    names = [
        r[0]
        for r in con.execute(
            "describe select * from read_json($p, format = 'newline_delimited')", {"p": str(path)}
        ).fetchall()
    ]
    con.execute(
        "create or replace temp table _raw_text as "
        "select * from read_json($p, format = 'newline_delimited', columns = $cols)",
        {"p": str(path), "cols": dict.fromkeys(names, "VARCHAR")},
    )
    sel = ", ".join(f"{_q(n)} as c{i}" for i, n in enumerate(names))
    con.execute(f"create or replace temp table _raw as select rowid + 1 as _line, {sel} from _raw_text")
    return names


# ----------------------------------------------------------------------------------------- row rules
@dataclass(frozen=True)
class _Rule:
    column: str
    reason: str
    condition: str  # SQL over v_<col> (text) and t_<col> (typed)


def _typed_expr(col: Column, v: str) -> str:
    """SQL turning the text value into the storage type (NULL where it does not parse)."""
    if col.type == "timestamp":
        # Offsets in the value win; naive values are read in the source time zone; stored as UTC.
        return (
            f"case when {v} is null then null "
            f"when regexp_matches({v}, '{_TZ_SUFFIX}') then timezone('UTC', try_cast({v} as timestamptz)) "
            f"else timezone('UTC', timezone($src_tz, coalesce(try_strptime({v}, $ts_fmt), "
            f"try_cast({v} as timestamp)))) end"
        )
    if col.type == "double":
        return f"case when isfinite(try_cast({v} as double)) then try_cast({v} as double) end"
    if col.type == "integer":
        # A plain cast rounds '1.5' to 2; only whole numbers ('3', '-3', '3.0' from float exports) are integers.
        return f"case when regexp_full_match({v}, '[+-]?[0-9]+(\\.0*)?') then try_cast({v} as {col.sql_type}) end"
    return f"try_cast({v} as {col.sql_type})"


def _show_number(x: float) -> str:
    """10000000.0 -> '10000000' (not '1e+07'), 0.5 -> '0.5'."""
    return str(int(x)) if x.is_integer() else repr(x)


def _rules(contract: Contract, accepted: dict[str, list[str]], run_ts: datetime, ts_fmt: str | None) -> list[_Rule]:
    """Row rules in contract column order; the first rule a row breaks is its quarantine reason."""
    rules: list[_Rule] = []
    for c in contract.columns:
        v, t = f"v_{c.name}", f"t_{c.name}"
        if c.required:
            rules.append(_Rule(c.name, "missing required value", f"{v} is null"))
        expected = {
            "timestamp": f"a timestamp ({ts_fmt or 'ISO 8601'})",
            "date": "a date (YYYY-MM-DD)",
            "decimal": "a number with at most 16 digits before the point",
        }.get(c.type, f"an {c.type}" if c.type == "integer" else f"a {c.type}")
        rules.append(_Rule(c.name, f"not a valid {c.type}: expected {expected}", f"{v} is not null and {t} is null"))
        if c.min is not None:
            rules.append(_Rule(c.name, f"below the minimum {_show_number(c.min)}", f"{t} < {c.min!r}"))
        if c.max is not None:
            rules.append(_Rule(c.name, f"above the maximum {_show_number(c.max)}", f"{t} > {c.max!r}"))
        values = accepted.get(c.name)
        if values is not None:
            shown = ", ".join(values)
            rules.append(
                _Rule(
                    c.name,
                    f"not an accepted value (expected one of: {shown})",
                    f"{t} is not null and not list_contains($acc_{c.name}, {t})",
                )
            )
        if c.not_after_run:
            rules.append(
                _Rule(
                    c.name,
                    f"in the future: after the ingest run time {run_ts:%Y-%m-%d %H:%M:%S} UTC",
                    f"{t} > $run_ts",
                )
            )
    if contract.require_any:
        cond = " and ".join(f"t_{n} is null" for n in contract.require_any)
        rules.append(
            _Rule(
                ",".join(contract.require_any),
                f"none of {', '.join(contract.require_any)} is present (at least one is required)",
                cond,
            )
        )
    return rules


def _accepted_values(contract: Contract, settings: Settings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in contract.columns:
        if c.accepted_values is not None:
            out[c.name] = list(c.accepted_values)
        elif c.accepted_values_from is not None:
            out[c.name] = list(getattr(settings, c.accepted_values_from))
    return out


def _default_value(c: Column, settings: Settings, source: str) -> Any:
    if c.default_from == "currency":
        return settings.source_currency(source)
    if c.default_from is not None:
        return getattr(settings, c.default_from)
    return c.default


# -------------------------------------------------------------------------------------------- ingestion
class Ingestor:
    """Loads one source's landing files into the warehouse, file by file, each in one transaction."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        settings: Settings,
        source: str,
        *,
        run_id: str,
        run_ts: datetime,
    ) -> None:
        self.con = con
        self.settings = settings
        self.source = source
        self.src = settings.sources[source]
        self.contract = load_contract(source)
        self.run_id = run_id
        # Stored timestamps are naive UTC; an aware run time is converted, not just stripped of its zone.
        self.run_ts = run_ts.astimezone(UTC).replace(tzinfo=None) if run_ts.tzinfo else run_ts
        self.accepted = _accepted_values(self.contract, settings)
        self._header: list[str] = []
        self.rules = _rules(self.contract, self.accepted, self.run_ts, self.src.timestamp_format)
        ensure_schema(con, [source])

    # ---- public
    def run(self) -> IngestReport:
        """Ingest every new or changed file; return per-file accounting."""
        results = [self.ingest_file(p) for p in discover_files(self.settings, self.source)]
        n = self.con.execute(f"select count(*) from {_q(self.source)}").fetchall()[0][0]
        return IngestReport(self.source, results, table_rows=int(n))

    def ingest_file(self, path: Path) -> FileResult:
        """Ingest one file (idempotent by path + content hash)."""
        rel = path.resolve().relative_to(self.settings.landing_dir.resolve()).as_posix()
        scan = scan_file(path)
        digest = scan.sha256
        size = path.stat().st_size
        prev = self.con.execute(
            "select content_hash, status from ingest_manifest where source = $s and path = $p",
            {"s": self.source, "p": rel},
        ).fetchall()
        try:
            fmt = detect_format(path, self.src.format)
        except FileRejected as exc:
            fmt = "unknown"
            if prev and prev[0][0] == digest:
                return FileResult(self.source, rel, digest, size, fmt, "unchanged")
            return self._record(FileResult(self.source, rel, digest, size, fmt, "rejected", error=str(exc)), rel)
        if prev and prev[0][0] == digest:
            return FileResult(self.source, rel, digest, size, fmt, "unchanged")
        twin = self.con.execute(
            "select path, rows_read from ingest_manifest where source = $s and content_hash = $h "
            "and status = 'loaded' and path <> $p order by path limit 1",
            {"s": self.source, "h": digest, "p": rel},
        ).fetchall()
        if twin:
            res = FileResult(
                self.source,
                rel,
                digest,
                size,
                fmt,
                "duplicate_file",
                rows_read=int(twin[0][1]),
                duplicates_dropped=int(twin[0][1]),
                warnings=[f"same content as {twin[0][0]}, already loaded: every row dropped"],
            )
            return self._record(res, rel)
        res = FileResult(self.source, rel, digest, size, fmt, "loaded")
        try:
            # Read into temp tables before the transaction: row ids then count from 0 in file order.
            positions, parse_rejects = self._read(path, fmt, res, scan)
            self.con.execute("begin transaction")
            try:
                self._forget(rel)
                self._load(rel, positions, parse_rejects, res)
                self._write_manifest(res)
                self.con.execute("commit")
            except BaseException:  # never leave the connection inside a half-done file
                self.con.execute("rollback")
                raise
        except (FileRejected, duckdb.Error, OSError, EOFError, zlib.error) as exc:
            msg = str(exc) if isinstance(exc, FileRejected) else f"cannot read the file: {_first_line(exc)}"
            res = FileResult(self.source, rel, digest, size, fmt, "rejected", error=msg, warnings=res.warnings)
            self._record(res, rel)
        finally:
            self.con.execute(
                "drop table if exists _raw; drop table if exists _raw_text; drop table if exists _stg;"
                "drop table if exists _dedup; drop table if exists _rej; drop table if exists _cross; "
                "drop table if exists _conflicting"
            )
        return res

    # ---- steps
    def _record(self, res: FileResult, rel: str) -> FileResult:
        """Record a file that loads nothing (rejected / duplicate) and drop rows it loaded before."""
        self.con.execute("begin transaction")
        self._forget(rel)
        self._write_manifest(res)
        self.con.execute("commit")
        return res

    def _forget(self, rel: str) -> None:
        """Remove what an earlier version of this file loaded or quarantined."""
        self.con.execute(f"delete from {_q(self.source)} where _file = $p", {"p": rel})
        self.con.execute("delete from quarantine where source = $s and file = $p", {"s": self.source, "p": rel})

    def _write_manifest(self, res: FileResult) -> None:
        row = {
            **asdict(res),
            "warnings": "; ".join(res.warnings) or None,
            "run_id": self.run_id,
            "ingested_at": self.run_ts,
        }
        names = [n for n, _ in MANIFEST_COLUMNS]
        params = {n: row[n] for n in names}
        placeholders = ", ".join(f"${n}" for n in names)
        self.con.execute(
            "delete from ingest_manifest where source = $source and path = $path",
            {"source": res.source, "path": res.path},
        )
        self.con.execute(f"insert into ingest_manifest values ({placeholders})", params)
        self.con.execute(f"insert into ingest_log values ({placeholders})", params)

    def _read(self, path: Path, fmt: str, res: FileResult, scan: FileScan) -> tuple[dict[str, str], int]:
        """Read the file into ``_raw``; return contract column -> positional column, and unparseable lines."""
        con, contract = self.con, self.contract
        parse_rejects = 0
        if path.stat().st_size == 0:
            raise FileRejected("file is empty (0 bytes)")
        if fmt == "csv":
            header = _csv_header(path, self.src.delimiter)
            self._header = header
            mapping, warns = _map_columns(header, contract, self.src, self.src.delimiter)
            parse_rejects = _read_csv(con, path, self.src, header, scan.physical_lines)
            positions = {name: f"c{header.index(orig)}" for name, orig in mapping.items()}
        elif fmt == "parquet":
            described = {
                r[0]: r[1] for r in con.execute("describe select * from read_parquet($p)", {"p": str(path)}).fetchall()
            }
            names = list(described)
            mapping, warns = _map_columns(names, contract, self.src, None)
            _read_parquet(con, path, contract, mapping, described)
            positions = {name: f"c{names.index(orig)}" for name, orig in mapping.items()}
        else:
            names = _read_jsonl(con, path)
            mapping, warns = _map_columns(names, contract, self.src, None)
            positions = {name: f"c{names.index(orig)}" for name, orig in mapping.items()}
        res.warnings.extend(warns)
        return positions, parse_rejects

    def _load(self, rel: str, positions: dict[str, str], parse_rejects: int, res: FileResult) -> None:
        """Stage, quarantine, de-duplicate and insert (inside the file's transaction)."""
        con = self.con
        self._stage(positions)
        good_rows = con.execute("select count(*) from _raw").fetchall()[0][0]
        res.rows_read = int(good_rows) + parse_rejects
        if res.rows_read == 0:
            res.warnings.append("header only: no data rows")
        quarantined = self._quarantine_parse_rejects(rel, parse_rejects) + self._quarantine_rule_breaks(rel)
        dropped, conflicts = self._dedup(rel)
        res.rows_quarantined = quarantined + conflicts
        res.duplicates_dropped = dropped
        res.rows_loaded = self._insert(rel)
        if not res.balanced:  # pragma: no cover - an invariant, not an expected path
            raise RuntimeError(f"row accounting does not add up for {rel}: {res}")

    def _stage(self, positions: dict[str, str]) -> None:
        """Text values (trimmed, empty = NULL), typed values and the first broken rule of every row."""
        parts = ["_line"]
        params: dict[str, Any] = {}
        for c in self.contract.columns:
            default = _default_value(c, self.settings, self.source)
            text = f"nullif(trim(cast({positions[c.name]} as varchar)), '')" if c.name in positions else "null::varchar"
            if default is not None:
                params[f"def_{c.name}"] = str(default)
                text = f"coalesce({text}, $def_{c.name})"
            parts.append(f"{text} as v_{c.name}")
        # Native timestamps (Parquet, typed JSON) skip the text round trip: same value, a fraction of the cost.
        raw_types = {r[0]: str(r[1]).upper() for r in self.con.execute("describe _raw").fetchall()}
        typed = []
        for c in self.contract.columns:
            raw_type = raw_types.get(positions.get(c.name, ""), "VARCHAR")
            if c.type == "timestamp" and raw_type.startswith("TIMESTAMP"):
                parts.append(f"{positions[c.name]} as r_{c.name}")
                expr = (
                    f"timezone('UTC', r_{c.name})"
                    if raw_type == "TIMESTAMP WITH TIME ZONE"
                    else f"timezone('UTC', timezone($src_tz, cast(r_{c.name} as timestamp)))"
                )
            else:
                expr = _typed_expr(c, f"v_{c.name}")
            typed.append(f"{expr} as t_{c.name}")
        conds = " ".join(f"when {r.condition} then {i}" for i, r in enumerate(self.rules))
        params |= {
            "src_tz": self.settings.source_time_zone(self.source),
            "ts_fmt": self.src.timestamp_format or "%Y-%m-%dT%H:%M:%S",
            "run_ts": self.run_ts,
        }
        params |= {f"acc_{k}": v for k, v in self.accepted.items()}
        sql = f"""
            create or replace temp table _stg as
            with texts as (select {", ".join(parts)} from _raw),
                 typed as (select *, {", ".join(typed)} from texts)
            select *, case {conds} end as _rule from typed
        """
        self.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})

    def _quarantine_parse_rejects(self, rel: str, n_rejects: int) -> int:
        """Lines the CSV reader could not split (counted in ``_read_csv``) go to quarantine."""
        if not n_rejects:
            return 0
        self.con.execute(
            """
            insert into quarantine
            select $s, $f, line, coalesce(h.name, r.column_name), left(csv_line, $n),
                   'unparseable line (' || lower(replace(error_type, '_', ' ')) || '): ' || error_message,
                   $r, $ts
            from _rej r left join (select unnest($h) as name, unnest(range(len($h))) as i) h
                 on r.column_name = 'c' || cast(h.i as varchar)
            order by line
            """,
            {"s": self.source, "f": rel, "n": _MAX_VALUE_CHARS, "r": self.run_id, "ts": self.run_ts, "h": self._header},
        )
        return n_rejects

    def _quarantine_rule_breaks(self, rel: str) -> int:
        if not self.rules:
            return 0
        rules_values = ", ".join(f"({i}, ${'c'}{i}, ${'r'}{i})" for i in range(len(self.rules)))
        value_case = " ".join(
            f"when {i} then v_{r.column}" if "," not in r.column else f"when {i} then null"
            for i, r in enumerate(self.rules)
        )
        params: dict[str, Any] = {
            "s": self.source,
            "f": rel,
            "n": _MAX_VALUE_CHARS,
            "run": self.run_id,
            "ts": self.run_ts,
        }
        for i, r in enumerate(self.rules):
            params[f"c{i}"] = r.column
            params[f"r{i}"] = r.reason
        self.con.execute(
            f"""
            insert into quarantine
            with rules(rule_no, column_name, reason) as (values {rules_values})
            select $s, $f, s._line, r.column_name, left(case s._rule {value_case} end, $n), r.reason, $run, $ts
            from _stg s join rules r on s._rule = r.rule_no
            order by s._line
            """,
            params,
        )
        return int(self.con.execute("select count(*) from _stg where _rule is not null").fetchall()[0][0])

    def _dedup(self, rel: str) -> tuple[int, int]:
        """Drop exact duplicates (in file and against other files); quarantine key conflicts.

        Returns (duplicates dropped, rows quarantined for key conflicts).
        """
        con = self.con
        names = [_q(c.name) for c in self.contract.columns]
        con.execute(
            f"""
            create or replace temp table _dedup as
            select {", ".join(names)}, min(_line) as _line, count(*) as _n
            from (select _line, {", ".join(f"t_{c.name} as {_q(c.name)}" for c in self.contract.columns)}
                  from _stg where _rule is null)
            group by {", ".join(names)}
            """
        )
        valid, distinct = con.execute("select coalesce(sum(_n), 0), count(*) from _dedup").fetchall()[0]
        dropped = int(valid) - int(distinct)
        key = self.contract.primary_key
        if not key:
            return dropped, 0
        kcols = ", ".join(_q(k) for k in key)
        kjoin = " and ".join(f"d.{_q(k)} = o.{_q(k)}" for k in key)
        kshow = " || ', ' || ".join(f"coalesce(cast(d.{_q(k)} as varchar), 'NULL')" for k in key)
        label = f"({', '.join(key)}) = "
        common = {
            "s": self.source,
            "f": rel,
            "run": self.run_id,
            "ts": self.run_ts,
            "label": label,
            "kname": ",".join(key),
        }
        # Same key, different content inside this file: keep none of them (no way to know which is right).
        con.execute(
            f"""
            create or replace temp table _conflicting as
            select {kcols}, string_agg(cast(_line as varchar), ', ' order by _line) as lines
            from _dedup group by {kcols} having count(*) > 1
            """
        )
        conflicts = 0
        if con.execute("select count(*) from _conflicting").fetchall()[0][0]:
            con.execute(
                f"""
                insert into quarantine
                select $s, $f, d._line, $kname, {kshow},
                       'duplicate key ' || $label || '(' || {kshow} || ') with different content in the same '
                       || 'file (lines ' || c.lines || ')', $run, $ts
                from _dedup d join _conflicting c on {kjoin.replace("o.", "c.")}
                order by d._line
                """,
                common,
            )
            # Extra exact copies of a quarantined version stay counted as dropped (``_n - 1`` above).
            conflicts = len(
                con.execute(
                    f"delete from _dedup where ({kcols}) in (select {kcols} from _conflicting) returning _line"
                ).fetchall()
            )
        # Against rows other files loaded: identical rows are duplicates, different content is a conflict.
        same = " and ".join(f"d.{n} is not distinct from o.{n}" for n in names)
        con.execute(
            f"""
            create or replace temp table _cross as
            select d._line, d._n, {same} as identical, o._file as other_file, o._line as other_line,
                   {kshow} as key_text
            from _dedup d join {_q(self.source)} o on {kjoin}
            """
        )
        con.execute(
            """
            insert into quarantine
            select $s, $f, _line, $kname, key_text,
                   'duplicate key ' || $label || '(' || key_text || ') with different content: already loaded from '
                   || other_file || ' line ' || cast(other_line as varchar), $run, $ts
            from _cross where not identical order by _line
            """,
            common,
        )
        # Each matched version: its first copy becomes a duplicate (identical) or a conflict; the other
        # ``_n - 1`` copies were already counted as dropped above.
        for (identical,) in con.execute("select identical from _cross").fetchall():
            if identical:
                dropped += 1
            else:
                conflicts += 1
        con.execute("delete from _dedup where _line in (select _line from _cross)")
        return dropped, conflicts

    def _insert(self, rel: str) -> int:
        select = []
        for c in self.contract.columns:
            select.append(_q(c.name))
            if c.local_date:
                select.append(f"cast(timezone($biz_tz, timezone('UTC', {_q(c.name)})) as date)")
        names = [n for n, _ in self.contract.storage_columns()]
        inserted = self.con.execute(
            f"insert into {_q(self.source)} ({', '.join(_q(n) for n in names)}, _file, _line, _run_id) "
            f"select {', '.join(select)}, $f, _line, $run from _dedup order by _line",
            {"biz_tz": self.settings.time_zone, "f": rel, "run": self.run_id},
        ).fetchall()
        return int(inserted[0][0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ingest_source(
    con: duckdb.DuckDBPyConnection, settings: Settings, source: str, *, run_id: str, run_ts: datetime
) -> IngestReport:
    """Ingest every new or changed landing file of ``source``."""
    return Ingestor(con, settings, source, run_id=run_id, run_ts=run_ts).run()
