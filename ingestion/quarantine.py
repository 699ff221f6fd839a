"""Quarantine: rows that break a rule, lines that are not records, duplicates and key conflicts.

Values of PII columns are masked; the raw text of a line is stored only when the source has no PII
column and the file no column beyond the contract (those may be receiver phones or addresses), so
``quarantine.value`` never carries PII. Reasons never quote a value: the value has its own column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from data_contracts.contracts import Contract
from ingestion.readers import q
from ingestion.rules import MAX_VALUE_CHARS

QUARANTINE_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR"),
    ("file", "VARCHAR"),
    ("line", "BIGINT"),
    ("column_name", "VARCHAR"),
    ("value", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("quarantined_at", "TIMESTAMP"),
    ("rule", "VARCHAR"),  # which kind of rule (type, required, parse, duplicate_key, ...): groups the summary
]
_INSERT = "insert into quarantine (source, file, line, column_name, value, reason, run_id, quarantined_at, rule)"


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names (DuckDB refuses unused named parameters)."""
    return {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}\b", sql)}


@dataclass(frozen=True)
class Target:
    """Where quarantine rows of one file go and how they are stamped."""

    source: str
    file: str
    run_id: str
    run_ts: datetime
    contract: Contract
    raw_text_allowed: bool  # False: the source has PII columns or the file extra columns

    def params(self) -> dict[str, Any]:
        """Parameters every insert binds."""
        return {"s": self.source, "f": self.file, "run": self.run_id, "ts": self.run_ts, "n": MAX_VALUE_CHARS}


def raw_text_allowed(contract: Contract, extra_columns: list[str] | None) -> bool:
    """Whether a raw line may be stored: no PII column, and no extra column unless declared public.

    ``extra_columns`` None means unknown (a line that is not even JSON): treated as present.
    """
    if contract.pii_columns:
        return False
    return contract.unknown_columns == "public" or extra_columns == []


def quarantine_rejects(con: duckdb.DuckDBPyConnection, target: Target) -> int:
    """Lines the reader could not turn into a record (``_rej``) go to quarantine with their line."""
    n = int(con.execute("select count(*) from _rej").fetchall()[0][0])
    if not n:
        return 0
    value = (
        "left(text, $n)"
        if target.raw_text_allowed
        else "'<line withheld: it may hold PII (' || cast(length(text) as varchar) || ' characters)>'"
    )
    sql = f"{_INSERT} select $s, $f, line, column_name, {value}, reason, $run, $ts, 'parse' from _rej order by line"
    con.execute(sql, bind(sql, target.params()))
    return n


def quarantine_rule_breaks(con: duckdb.DuckDBPyConnection, target: Target) -> int:
    """Rows of ``_stg`` that broke a rule: file, line and the finding staging computed (column, value, reason)."""
    sql = f"""
        {_INSERT}
        select $s, $f, _line, _qcol, _qval, _qreason, $run, $ts, _qcode
        from _stg where _rule is not null order by _line
    """
    return int(con.execute(sql, bind(sql, target.params())).fetchall()[0][0])


# Rows that passed every rule, and those of them still to load (``_skip`` holds the lines set aside).
_VALID = "(select * from _stg where _rule is null)"
_KEPT = "(select * from _stg where _rule is null and _line not in (select _line from _skip))"


def dedup(con: duckdb.DuckDBPyConnection, target: Target) -> tuple[int, int]:
    """Drop exact duplicates (in the file and against other files); quarantine key conflicts.

    Leaves the lines of valid rows not to load in ``_skip`` (a later copy of an identical row, every
    version of a conflicting key). Returns (duplicates dropped, rows quarantined as conflicts).
    """
    contract = target.contract
    con.execute("create or replace temp table _skip (_line bigint)")
    dropped = _exact_duplicates(con, target)
    conflicts = 0
    loaded = bool(con.execute(f"select exists (select 1 from {q(target.source)})").fetchall()[0][0])
    if contract.primary_key:
        d, c = _key_conflicts(con, target, list(contract.primary_key), loaded)
        dropped += d
        conflicts += c
    for k, cols in contract.consistent_within.items():
        conflicts += _inconsistent(con, target, k, list(cols), loaded)
    return dropped, conflicts


def _exact_duplicates(con: duckdb.DuckDBPyConnection, target: Target) -> int:
    """Set aside every copy of an identical row but its first line; return how many.

    Rows are compared by the hash of their typed values first; only rows whose hash occurs more than once
    are compared column by column, so a hash collision never drops a row.
    """
    names = ", ".join(q(c.name) for c in target.contract.columns)
    rows = con.execute(
        f"""
        insert into _skip
        select _line from (
            select _line, row_number() over (partition by {names} order by _line) as _copy
            from {_VALID} v
            where _h in (select _h from {_VALID} h group by _h having count(*) > 1)
        ) where _copy > 1
        """
    ).fetchall()
    return int(rows[0][0])


def _key_conflicts(con: duckdb.DuckDBPyConnection, target: Target, key: list[str], loaded: bool) -> tuple[int, int]:
    source = target.source
    names = [q(c.name) for c in target.contract.columns]
    kcols = ", ".join(q(k) for k in key)
    kjoin = " and ".join(f"d.{q(k)} = o.{q(k)}" for k in key)
    kshow = " || ', ' || ".join(f"coalesce(cast(d.{q(k)} as varchar), 'NULL')" for k in key)
    common = {**target.params(), "label": f"({', '.join(key)}) = ", "kname": ",".join(key)}
    # Same key, different content inside this file: keep none of them (no way to know which is right).
    # Only keys whose hash occurs more than once are grouped by their values.
    con.execute(
        f"""
        create or replace temp table _conflicting as
        select {kcols}, string_agg(cast(_line as varchar), ', ' order by _line) as lines
        from {_KEPT} k
        where _kh in (select _kh from {_VALID} h group by _kh having count(*) > 1)
        group by {kcols} having count(*) > 1
        """
    )
    conflicts = dropped = 0
    if con.execute("select count(*) from _conflicting").fetchall()[0][0]:
        sql = f"""
            {_INSERT}
            select $s, $f, d._line, $kname, {kshow},
                   'duplicate key ' || $label || '(' || {kshow} || ') with different content in the same '
                   || 'file (lines ' || o.lines || ')', $run, $ts, 'duplicate_key'
            from {_KEPT} d join _conflicting o on {kjoin}
            order by d._line
        """
        con.execute(sql, bind(sql, common))
        # Extra exact copies of a quarantined version stay counted as dropped (set aside above).
        conflicts = int(
            con.execute(f"insert into _skip select d._line from {_KEPT} d join _conflicting o on {kjoin}").fetchall()[
                0
            ][0]
        )
    if not loaded:
        return dropped, conflicts
    # Against rows other files loaded: identical rows are duplicates, different content is a conflict.
    # The key columns alone tell whether any key was loaded before (the common answer is none).
    if not con.execute(f"select exists (select 1 from {_KEPT} d semi join {q(source)} o on {kjoin})").fetchall()[0][0]:
        return dropped, conflicts
    same = " and ".join(f"d.{n} is not distinct from o.{n}" for n in names)
    con.execute(
        f"""
        create or replace temp table _cross as
        select d._line, {same} as identical, o._file as other_file, o._line as other_line,
               {kshow} as key_text
        from {_KEPT} d join {q(source)} o on {kjoin}
        """
    )
    sql = f"""
        {_INSERT}
        select $s, $f, _line, $kname, key_text,
               'duplicate key ' || $label || '(' || key_text || ') with different content: already loaded from '
               || other_file || ' line ' || cast(other_line as varchar), $run, $ts, 'duplicate_key'
        from _cross where not identical order by _line
    """
    con.execute(sql, bind(sql, common))
    # Each matched version: its first copy becomes a duplicate (identical) or a conflict; its other
    # copies were already counted as dropped above.
    for (identical,) in con.execute("select identical from _cross").fetchall():
        if identical:
            dropped += 1
        else:
            conflicts += 1
    con.execute("insert into _skip select distinct _line from _cross")
    return dropped, conflicts


def _inconsistent(con: duckdb.DuckDBPyConnection, target: Target, key: str, cols: list[str], loaded: bool) -> int:
    """Rows sharing ``key`` must agree on ``cols`` (one customer per order): quarantine every row that doesn't.

    Checked within the file and against rows other files loaded; no row of a conflicting key is loaded
    from this file (the other file's rows stay: they were loaded first).
    """
    k, src = q(key), q(target.source)
    tup = ", ".join(q(c) for c in cols)
    differs = " or ".join(f"d.{q(c)} is distinct from o.{q(c)}" for c in cols)
    # One column: min <> max is count(distinct) > 1 (both ignore NULLs) without a set per key.
    several = f"min({tup}) <> max({tup})" if len(cols) == 1 else f"count(distinct ({tup})) > 1"
    against = f"union select d.{k} from {_KEPT} d join {src} o on d.{k} = o.{k} where {differs}" if loaded else ""
    # Cheap test first (the common case finds nothing): keys with two versions here or against loaded rows.
    con.execute(
        f"""
        create or replace temp table _incons as
        select {k} as k from {_KEPT} d group by {k} having {several}
        {against}
        """
    )
    if not con.execute("select count(*) from _incons").fetchall()[0][0]:
        return 0
    show = " || '/' || ".join(f"coalesce(cast({q(c)} as varchar), 'NULL')" for c in cols)
    con.execute(
        f"""
        create or replace temp table _incons as
        with every as (select {k} as k, {show} as val from {_KEPT} d where {k} in (select k from _incons)
                       union all
                       select {k}, {show} from {src} where {k} in (select k from _incons))
        select k, string_agg(distinct val, ', ' order by val) as vals from every group by k
        """
    )
    p = {**target.params(), "key": key, "cols": ", ".join(cols)}
    sql = f"""
        {_INSERT}
        select $s, $f, d._line, $key, cast(d.{k} as varchar),
               'key conflict: ' || $key || ' ' || cast(d.{k} as varchar) || ' names more than one ' || $cols
               || ' (' || i.vals || ') across its rows; none of this file''s rows of it is loaded: fix the export',
               $run, $ts, 'key_conflict'
        from {_KEPT} d join _incons i on d.{k} = i.k order by d._line
    """
    con.execute(sql, bind(sql, p))
    return int(
        con.execute(f"insert into _skip select d._line from {_KEPT} d join _incons i on d.{k} = i.k").fetchall()[0][0]
    )
