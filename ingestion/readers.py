"""Readers: one landing file as a relation of records (``Raw``) and temp table ``_rej`` (lines that are not).

The relation has ``_line`` (physical line / row number), positional columns ``c0, c1, ...`` (user-supplied
names never enter SQL) and, where a reader checks shapes, ``_bad_col`` / ``_bad_reason`` / ``_bad_value``
for a value of the wrong shape (a nested JSON value, a fractional number where an id is expected). It is
read once, by the staging statement: a Parquet file is read in place, a CSV file's rows are numbered by
their row ids without a second copy. ``_rej`` has ``line, column_name, reason, text``. A reader raises
``FileRejected`` for a file it cannot take whole.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from data_contracts.contracts import Contract
from ingestion.lines import LineCounts, count_lines, decode_line, first_line, iter_lines, split_csv
from segments.config import SourceConfig

_INTEGER_TYPES = (
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
)
_NUMERIC_TYPES = (*_INTEGER_TYPES, "FLOAT", "DOUBLE", "DECIMAL")
_FRACTIONAL = "a fractional number where an identifier or text is expected"

_GLOB_CHARS = re.compile(r"([\[*?])")


class FileRejected(Exception):
    """A file that is rejected whole; the message is shown to the user as is (it never quotes data)."""


def q(ident: str) -> str:
    """A quoted SQL identifier."""
    return '"' + ident.replace('"', '""') + '"'


@dataclass(frozen=True)
class Raw:
    """A file's records as a SQL relation (a table name or a parenthesized query) and the values it binds."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


_RAW_TABLE = Raw("_raw")


@dataclass(frozen=True)
class Mapping:
    """Contract column -> positional column of ``_raw``, the file's extra columns and warnings."""

    positions: dict[str, str]
    extra: list[str]
    warnings: list[str]


def map_columns(file_cols: list[str], contract: Contract, src: SourceConfig, delimiter: str | None) -> Mapping:
    """Map file columns onto the contract; reject missing required or ambiguous columns.

    A rejection lists the file's column names only where they are contract columns or rename keys when
    the contract treats unknown columns as PII: a header-less file's first row is data, never quoted.
    """
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
        known = contract_cols | set(src.rename)
        if contract.unknown_columns == "public" or hint:
            found = ", ".join(file_cols[:20])
        else:
            shown = [c for c in file_cols if c.strip().lower() in known or c in known][:20]
            hidden = len(file_cols) - len(shown)
            found = ", ".join(shown) + (f"{', ' if shown else ''}{hidden} other name(s) withheld" if hidden else "")
            if not shown and hidden:
                hint = " Line 1 holds no known column name: is it a header?"
        raise FileRejected(
            f"missing required column(s) {', '.join(missing)} (found: {found}).{hint} "
            f"Map your column names with sources.{contract.name}.rename in the config."
        )
    warnings = []
    extra = [orig for tgt, orig in seen.items() if tgt not in contract_cols]
    if extra:
        warnings.append(f"ignored column(s) not in the {contract.name} contract: {', '.join(extra)}")
    positions = {tgt: f"c{file_cols.index(orig)}" for tgt, orig in seen.items() if tgt in contract_cols}
    return Mapping(positions, extra, warnings)


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("_arrow_in", table)
    try:
        con.execute(f"create or replace temp table {name} as select * from _arrow_in")
    finally:
        con.unregister("_arrow_in")


def empty_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """``_rej`` without rows: a file whose reader found no bad line (or whose lines are checked elsewhere)."""
    # Plain DDL: registering an Arrow table costs the first import of DuckDB's Arrow bridge (~1 s).
    con.execute("create or replace temp table _rej (line bigint, column_name varchar, reason varchar, text varchar)")


# ------------------------------------------------------------------------------------------------- CSV
def literal_path(path: Path) -> str:
    """``path`` for DuckDB's file readers, which expand ``*``, ``?`` and ``[...]`` in a name: each as a one-character
    class (``more[1].csv`` -> ``more[[]1].csv``), so the file read is the file named, never one its name globs to."""
    return _GLOB_CHARS.sub(r"[\1]", str(path))


def csv_header(path: Path, delimiter: str) -> list[str]:
    """Column names from the first physical line, BOM stripped; reject unreadable or empty files."""
    raw = first_line(path)
    if raw is None:
        raise FileRejected("line 1 (header) is longer than 1 MiB: is this a CSV file? Check sources.<source>.format")
    if not raw.strip():
        raise FileRejected("file is empty: no header line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"line 1 (header) is not valid UTF-8 at byte {exc.start}; re-export the file as UTF-8"
        ) from exc
    if text.count('"') % 2:
        raise FileRejected(
            'line 1 (header) has an unbalanced quote ("): the header would swallow the data lines; fix the header'
        )
    try:
        names = next(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise FileRejected(f"line 1 (header) cannot be split into column names: {exc}") from exc
    return [n.strip() for n in names]


def read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, header: list[str], counts: LineCounts | None
) -> tuple[Raw, list[str]]:
    """Read the file as text with physical line numbers, bad lines into ``_rej``; return the records and warnings.

    Fast path: DuckDB's reader, trusted when its records (good + rejected) match the physical lines one
    for one. Otherwise (quoted line breaks, blank lines, unbalanced quotes) ``split_csv`` splits the file
    line by line in Python, slower but exact.
    """
    counts = counts or count_lines(path)
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    if not counts.has_blank:
        con.execute("drop table if exists _csv_rejects; drop table if exists _csv_scans")
        con.execute(
            f"""
            create or replace temp table _raw_text as
            select * from read_csv($path, header = true, delim = $delim, quote = '"', escape = '"',
                                   auto_detect = false, columns = {cols}, store_rejects = true,
                                   rejects_table = '_csv_rejects', rejects_scan = '_csv_scans')
            """,
            {"path": literal_path(path), "delim": delimiter},
        )
        n_good = int(con.execute("select count(*) from _raw_text").fetchall()[0][0])
        n_rej = int(con.execute("select count(distinct line) from _csv_rejects").fetchall()[0][0])
        if counts.lines == 1 + n_good + n_rej:
            return _number_fast(con, header, n_rej), []
    return _RAW_TABLE, _read_csv_exact(con, path, delimiter, header)


def _number_fast(con: duckdb.DuckDBPyConnection, header: list[str], n_rej: int) -> Raw:
    """Every record is one physical line: shift good rows past the rejected lines before them.

    The numbering is a relation over ``_raw_text`` (row ids count from 0 in file order), not a copy.
    """
    con.execute(
        """
        create or replace temp table _rej_lines as
        select line, column_name, error_type, error_message, csv_line,
               line - 2 - (row_number() over (order by line) - 1) as good_before,
               row_number() over (order by line) as shift
        from (select distinct on (line) line, column_name, error_type, error_message, csv_line
              from _csv_rejects order by line)
        """
    )
    if n_rej == 0:  # the common case: line = row id + 2 (header is line 1)
        raw = Raw("(select t.rowid + 2 as _line, t.* from _raw_text t)")
    else:
        # An as-of join (last rejected line with good_before <= row id) keeps this linear.
        raw = Raw(
            """(select t.rowid + 2 + coalesce(r.shift, 0) as _line, t.*
            from _raw_text t
            asof left join (select good_before, max(shift) as shift from _rej_lines group by good_before) r
              on t.rowid >= r.good_before)"""
        )
    con.execute(
        """
        create or replace temp table _rej as
        select line, h.name as column_name,
               'unparseable line (' || lower(replace(error_type, '_', ' ')) || '): ' || error_message as reason,
               rtrim(csv_line, chr(13) || chr(10)) as text
        from _rej_lines r left join (select unnest($h) as name, unnest(range(len($h))) as i) h
             on r.column_name = 'c' || cast(h.i as varchar)
        """,
        {"h": header},
    )
    return raw


def _read_csv_exact(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, header: list[str]) -> list[str]:
    split = split_csv(path, delimiter, len(header))
    if split.lines_accounted != split.physical_lines:  # pragma: no cover - an invariant of split_csv
        raise FileRejected(f"line accounting failed: {split.lines_accounted} of {split.physical_lines} lines")
    columns: dict[str, Any] = {"_line": pa.array(split.lines, pa.int64())}
    for i in range(len(header)):
        columns[f"c{i}"] = pa.array([r[i] for r in split.records], pa.string())
    _register(con, "_raw", pa.table(columns))
    bad = split.bad
    _register(
        con,
        "_rej",
        pa.table(
            {
                "line": pa.array([b[0] for b in bad], pa.int64()),
                "column_name": pa.array([None] * len(bad), pa.string()),
                "reason": pa.array([b[2] for b in bad], pa.string()),
                "text": pa.array([b[1] for b in bad], pa.string()),
            }
        ),
    )
    warnings = []
    if split.blank_lines:
        warnings.append(f"{split.blank_lines} blank line(s) skipped")
    if split.multi_line:
        shown = ", ".join(f"{a}-{b}" for a, b in split.multi_line[:5])
        more = f" and {len(split.multi_line) - 5} more" if len(split.multi_line) > 5 else ""
        warnings.append(f"{len(split.multi_line)} record(s) with quoted line breaks span lines {shown}{more}")
    return warnings


# --------------------------------------------------------------------------------------------- Parquet
def describe_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column name -> DuckDB type of a Parquet file."""
    rows = con.execute("describe select * from read_parquet($p)", {"p": literal_path(path)}).fetchall()
    return {r[0]: str(r[1]).upper() for r in rows}


def _nested(dtype: str) -> bool:
    return dtype.endswith("]") or dtype.startswith(("STRUCT", "MAP", "UNION", "LIST"))


def read_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, mapping: Mapping, described: dict[str, str]
) -> Raw:
    """A Parquet file's records, read in place; reject it whole when a column's type cannot hold the contract's.

    Nested columns (lists, structs, maps) never become values. A float or decimal in a text column
    (an id exported as DOUBLE) becomes its integer text (123.0 -> '123'); a fractional one is quarantined.
    """
    names = list(described)
    problems = []
    for target, pos in mapping.positions.items():
        orig = names[int(pos[1:])]
        ctype = contract.column(target).type
        dtype = described[orig]
        if _nested(dtype):
            problems.append(f"{orig} is {dtype}, a nested value; expected one {ctype} per row")
        elif ctype == "integer" and not dtype.startswith(_INTEGER_TYPES):
            problems.append(f"{orig} is {dtype}, expected an integer type")
        elif ctype in ("decimal", "double") and not dtype.startswith(_NUMERIC_TYPES):
            problems.append(f"{orig} is {dtype}, expected a numeric type")
        elif ctype in ("timestamp", "date") and not (dtype.startswith(("TIMESTAMP", "DATE")) or dtype == "VARCHAR"):
            problems.append(f"{orig} is {dtype}, expected a timestamp, date or text")
        elif ctype == "string" and dtype.startswith(("BLOB", "BIT")):
            problems.append(f"{orig} is {dtype}, expected text")
    if problems:
        raise FileRejected("Parquet column types do not match the contract: " + "; ".join(problems))
    mapped = {int(pos[1:]): target for target, pos in mapping.positions.items()}
    sel, bad = [], []
    for i, orig in enumerate(names):
        col, target = q(orig), mapped.get(i)
        if target is None:
            continue  # unmapped columns are never read (they may be nested or hold PII)
        dtype = described[orig]
        if contract.column(target).type == "string" and dtype.startswith(("FLOAT", "DOUBLE", "DECIMAL")):
            whole = f"(isfinite({col}) and abs({col}) < 1e18 and {col} = trunc({col}))"
            sel.append(f"case when {whole} then cast(cast({col} as bigint) as varchar) end as c{i}")
            bad.append((target, f"{col} is not null and not {whole}", f"cast({col} as varchar)"))
        elif contract.column(target).type == "string" and not dtype.startswith("VARCHAR"):
            sel.append(f"cast({col} as varchar) as c{i}")
        else:
            sel.append(f"{col} as c{i}")
    params: dict[str, Any] = {"raw_path": literal_path(path)}
    bad_col = bad_val = bad_reason = "null::varchar"
    if bad:
        params |= {f"raw_bad_{i}": t for i, (t, _, _) in enumerate(bad)} | {"raw_fractional": _FRACTIONAL}
        bad_col = "case " + " ".join(f"when {cond} then $raw_bad_{i}" for i, (_, cond, _) in enumerate(bad)) + " end"
        bad_val = "case " + " ".join(f"when {cond} then {v}" for _, cond, v in bad) + " end"
        bad_reason = "case " + " ".join(f"when {cond} then $raw_fractional" for _, cond, _ in bad) + " end"
    empty_rejects(con)
    return Raw(
        f"""(select file_row_number + 1 as _line{"".join(", " + s for s in sel)},
               {bad_col} as _bad_col, {bad_reason} as _bad_reason, {bad_val} as _bad_value
        from read_parquet($raw_path, file_row_number = true))""",
        params,
    )


# ----------------------------------------------------------------------------------------- JSON Lines
_JSON_KIND = {dict: "a JSON object", list: "a JSON array", str: "a JSON string", bool: "true/false"}


def _scalar_text(value: Any, ctype: str) -> tuple[str | None, str | None]:
    """(text, problem) of one JSON value for a contract column of type ``ctype``."""
    if value is None:
        return None, None
    if isinstance(value, (dict, list)):
        return None, f"a nested value ({_JSON_KIND[type(value)]}) where one {ctype} is expected"
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, f"not a finite number where a {ctype} is expected"
        if value.is_integer() and abs(value) < 1e18:
            return str(int(value)), None
        return (None, _FRACTIONAL) if ctype == "string" else (repr(value), None)
    return str(value), None


def read_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, src: SourceConfig
) -> tuple[Mapping, Raw, list[str]]:
    """Load a JSON Lines file into ``_raw`` (text values) and ``_rej``; return the mapping, records and warnings.

    Parsed line by line: a line that is not JSON, or not an object, is quarantined with its line
    number and the rest of the file loads. A UTF-8 BOM is accepted. Numbers become their text
    (integral floats as integers), nested values are quarantined, never turned into text.
    """
    objects: list[tuple[int, dict[str, Any]]] = []
    rejects: list[tuple[int, str, str]] = []
    keys: dict[str, None] = {}
    blank = 0
    for i, raw in enumerate(iter_lines(path)):
        line = i + 1
        text, ok = decode_line(raw, first=i == 0)
        if not ok:
            rejects.append((line, text, "unparseable line (invalid encoding): not valid UTF-8"))
            continue
        if not text.strip():
            blank += 1
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            rejects.append((line, text, f"unparseable line (not valid JSON): {reason}"))
            continue
        if not isinstance(obj, dict):
            kind = _JSON_KIND.get(type(obj), "a JSON number" if isinstance(obj, (int, float)) else "JSON null")
            rejects.append((line, text, f"unparseable line (not a JSON object): found {kind}"))
            continue
        for k in obj:
            keys.setdefault(str(k), None)
        objects.append((line, obj))
    if not objects and not rejects:
        raise FileRejected("file has no JSON lines")
    names = list(keys)
    mapping = map_columns(names, contract, src, None) if objects else Mapping({}, [], [])
    columns: dict[str, list[Any]] = {"_line": [ln for ln, _ in objects]}
    bad_col: list[str | None] = [None] * len(objects)
    bad_reason: list[str | None] = [None] * len(objects)
    bad_value: list[str | None] = [None] * len(objects)
    for target, pos in mapping.positions.items():
        key, ctype = names[int(pos[1:])], contract.column(target).type
        values: list[str | None] = []
        for j, (_, obj) in enumerate(objects):
            text, problem = _scalar_text(obj.get(key), ctype)
            if problem and bad_col[j] is None:
                bad_col[j], bad_reason[j] = target, problem
                v = obj.get(key)
                bad_value[j] = f"<{_JSON_KIND.get(type(v), 'a number')}>" if isinstance(v, (dict, list)) else str(v)
            values.append(text)
        columns[pos] = values
    table = pa.table(
        {
            **{k: pa.array(v, pa.int64() if k == "_line" else pa.string()) for k, v in columns.items()},
            "_bad_col": pa.array(bad_col, pa.string()),
            "_bad_reason": pa.array(bad_reason, pa.string()),
            "_bad_value": pa.array(bad_value, pa.string()),
        }
    )
    _register(con, "_raw", table)
    _register(
        con,
        "_rej",
        pa.table(
            {
                "line": pa.array([r[0] for r in rejects], pa.int64()),
                "column_name": pa.array([None] * len(rejects), pa.string()),
                "reason": pa.array([r[2] for r in rejects], pa.string()),
                "text": pa.array([r[1] for r in rejects], pa.string()),
            }
        ),
    )
    warnings = list(mapping.warnings)
    if blank:
        warnings.append(f"{blank} blank line(s) skipped")
    return mapping, _RAW_TABLE, warnings
