"""The Spark side of ingestion: read landing files on Spark, run the rendered staging statement, hand ``_stg`` back.

``SparkStager`` is the ``ingestion.loader.Stager`` of ``engine: spark``. Before a run's first file loads,
``prestage`` stages every file the run will load, one Spark job per staging statement (files of one source
with the same columns share one), so a night of many small files pays Spark's per-job cost once, and files
spread over the executors. Each file's rows are found again by a file number carried in the high bits of
``_line`` (``_line = file << 40 | line``) and written partitioned by it; ``stage`` then loads a file's own
partition into DuckDB as ``_stg``. A file the batch did not cover (or that failed in it) is staged alone.

A file Spark cannot stage exactly as DuckDB would is handed back to the DuckDB path (``stage`` returns why):
a CSV file with an irregular line, a timestamp format Java reads otherwise, any error of the file's own. A
session that fails raises ``StagerUnavailable``: the run fails and is retried; no file is marked rejected.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from engines.spark_ingest import SparkIngestError, render_stage, spark_args, strptime_pattern, text_types
from ingestion.loader import StageInput, StagerUnavailable, safe_error
from ingestion.quarantine import bind
from ingestion.readers import q
from ingestion.rules import Stage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FILE_BITS = 40  # lines per file below 2**40; the file number above
_LINE_MASK = (1 << FILE_BITS) - 1
_MAX_LINE_BYTES = 1_000_000  # DuckDB's reader refuses lines over 2 MiB (max_line_size): long ones are left to it
# Java's regex engine recurses per repetition of a group: a line with more quotes than this is left to DuckDB
# rather than risk the JVM's stack (a field of 5,000 doubled quotes would overflow it).
_MAX_QUOTES = 1_000
_ENGINE_FAILURES = ("stopped SparkContext", "SparkContext was shut down", "Connection refused", "Answer from Java side")


_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def hadoop_literal(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped: Spark's readers expand ``[``, ``*``, ``{`` ... in a path,
    so a file named ``orders[1].csv`` would otherwise be read as ``orders1.csv``."""
    return _GLOB_CHARS.sub(r"\\\1", path)


def engine_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the Spark session failing (gateway gone, context stopped), not the file."""
    kind = type(exc).__name__
    return kind in ("Py4JNetworkError", "ConnectionRefusedError") or any(m in str(exc) for m in _ENGINE_FAILURES)


def _csv_field(delimiter: str) -> str:
    """One CSV field as DuckDB's reader takes it unquestioned: unquoted without quotes or line ends, or quoted
    with doubled inner quotes. Possessive runs: Java repeats the group once per doubled quote, not per character."""
    d = re.escape(delimiter)
    return f'(?:[^"{d}\\r\\n]*+|"[^"]*+(?:""[^"]*+)*+")'


def csv_records(
    session: SparkSession, files: list[tuple[int, Path]], delimiter: str, columns: int
) -> tuple[set[int], dict[int, int]]:
    """View ``_landing`` (``_line``, ``c0``…) of the records of CSV ``files`` (number, path), each line
    numbered as in its file; returns the numbers of the files left out, those with a line that is not one
    well-formed record of ``columns`` fields (DuckDB's reader reads them), and the other files' record counts
    (the view reads the files again: a file that changed in between no longer adds up).

    Lines are numbered without a pass through Python: per file and block (``_metadata.file_block_start``) one
    counting pass gives the lines and the least row id; a line's number is the lines of its file's blocks
    before its own plus its row id's distance from its block's least (ids are consecutive within a block).
    """
    from pyspark.sql import functions as F

    field = _csv_field(delimiter)
    pattern = f"^{field}(?:{re.escape(delimiter)}{field}){{{columns - 1}}}\\z"
    text = reduce(
        lambda a, b: a.unionAll(b),
        [
            session.read.text(hadoop_literal(str(path))).select(
                F.lit(number).cast("long").alias("_f"),
                F.col("_metadata.file_block_start").alias("_b"),
                F.monotonically_increasing_id().alias("_m"),
                "value",
            )
            for number, path in files
        ],
    )
    # Checked in this order (Spark's AND stops at the first false): size in bytes (a blank line is DuckDB's to
    # skip or count), valid UTF-8 (Spark keeps the bytes as they are; DuckDB quarantines the line), few enough
    # quotes, then the record's shape.
    regular = (
        F.octet_length("value").between(1, _MAX_LINE_BYTES)
        & F.is_valid_utf8("value")
        & (F.length("value") - F.length(F.translate("value", '"', "")) <= _MAX_QUOTES)
        & F.col("value").rlike(pattern)
    )
    blocks = sorted(
        text.groupBy("_f", "_b")
        .agg(F.count("*").alias("n"), F.min("_m").alias("m0"), F.sum((~regular).cast("int")).alias("bad"))
        .collect(),
        key=lambda r: (r["_f"], r["_b"]),
    )
    irregular = {r["_f"] for r in blocks if r["bad"]}
    shifts, before = [], dict.fromkeys((n for n, _ in files), 0)
    for r in blocks:
        if r["_f"] not in irregular:
            shifts.append((r["_f"], r["_b"], before[r["_f"]] - r["m0"]))
            before[r["_f"]] += r["n"]
    shift = session.createDataFrame(shifts or [(-1, -1, 0)], "_f long, _b long, _shift long")
    fields = F.from_csv(
        "value", ", ".join(f"c{i} STRING" for i in range(columns)), {"sep": delimiter, "quote": '"', "escape": '"'}
    )
    line = F.col("_m") + F.col("_shift") + 1
    numbered = text.join(F.broadcast(shift), ["_f", "_b"]).where(line > 1)  # line 1: the header
    records = numbered.select(
        (F.shiftleft(F.col("_f"), FILE_BITS) + line).alias("_line"),
        *[fields.getField(f"c{i}").alias(f"c{i}") for i in range(columns)],
    )
    records.createOrReplaceTempView("_landing")
    return irregular, {n: max(lines - 1, 0) for n, lines in before.items() if n not in irregular}


def parquet_records(session: SparkSession, files: list[tuple[int, Path]]) -> None:
    """View ``_landing`` of Parquet ``files`` (number, path) as they are, ``file_row_number`` carrying the file."""
    frames = [
        session.read.parquet(hadoop_literal(str(path))).selectExpr(
            "*", f"shiftleft(cast({number} as bigint), {FILE_BITS}) + _metadata.row_index as file_row_number"
        )
        for number, path in files
    ]
    reduce(lambda a, b: a.unionByName(b), frames).createOrReplaceTempView("_landing")


@dataclass
class _Batch:
    """One staging job's output: its folder (partitioned by ``_f``) and the file numbers it holds."""

    out: Path
    files: dict[Path, int]
    records: dict[Path, int] = field(default_factory=dict)  # CSV: the records its lines held when counted


class SparkStager:
    """Stages Parquet and CSV landing files on Spark for ``ingestion.loader.Ingestor``."""

    formats = frozenset({"parquet", "csv"})

    def __init__(self, session: Callable[[], SparkSession], staging_dir: Path) -> None:
        """``session`` is called on the first file Spark takes: a run without such files starts no JVM."""
        self._session = session
        self.staging_dir = Path(staging_dir)
        self.staged: list[Path] = []  # files whose row rules ran on Spark, in load order
        self.handed_back: list[tuple[Path, str]] = []  # files left to DuckDB, and why
        self.jobs = 0  # staging jobs run (one per statement in a batch, one per file alone)
        self._batches: dict[Path, _Batch] = {}
        self._left: dict[Path, str] = {}  # found irregular by a batch: handed back when the file's turn comes

    # ---- the loader's calls
    def prestage(self, con: duckdb.DuckDBPyConnection, stage: Stage, items: list[StageInput]) -> None:
        """Stage ``items`` in one job per staging statement; a group that fails is left to ``stage`` per file."""
        groups: dict[tuple[Any, ...], list[StageInput]] = {}
        for item in items:
            sql = stage.stage_sql(item.raw.sql, item.positions, item.raw_types, item.key, hashes=False)
            params = tuple(sorted((k, repr(v)) for k, v in item.raw.params.items() if k != "raw_path"))
            # The raw types too: files read together are one union, which would widen a DECIMAL to a DOUBLE.
            types = tuple(sorted(item.raw_types.items()))
            groups.setdefault((item.fmt, sql, params, types), []).append(item)
        session = self._start()
        for group in groups.values():
            if len(group) < 2:
                continue  # one file: ``stage`` runs it alone, with nothing to keep
            try:
                self._run_batch(session, stage, group)
            except Exception as exc:
                if engine_failure(exc):
                    raise StagerUnavailable(f"the Spark session failed while staging files: {exc}") from exc

    def stage(self, con: duckdb.DuckDBPyConnection, stage: Stage, item: StageInput) -> str | None:
        """Create DuckDB temp table ``_stg`` for ``item``: from its batch, or staged alone now. None when
        staged; otherwise why the file is left to DuckDB (nothing created)."""
        if item.path in self._left:
            return self._hand_back(item.path, self._left.pop(item.path))
        batch = self._batches.pop(item.path, None)
        alone = batch is None
        try:
            if batch is None:
                self._run_batch(self._start(), stage, [item], alone=True)
                batch = self._batches.pop(item.path, None)
                if batch is None:
                    return self._hand_back(item.path, self._left.pop(item.path))
            part = batch.out / f"_f={batch.files[item.path]}"
            _load(con, stage, str(part / "*.parquet") if part.is_dir() else None, item)
            expected = batch.records.get(item.path)
            if expected is not None and con.execute("select count(*) from _stg").fetchall()[0][0] != expected:
                con.execute("drop table if exists _stg")
                return self._hand_back(item.path, "the file changed while Spark staged it (its lines no longer add up)")
            self.staged.append(item.path)
            return None
        except StagerUnavailable:
            raise
        except Exception as exc:  # the file's, or reading Spark's output: DuckDB reads the file itself
            if engine_failure(exc):
                raise StagerUnavailable(f"the Spark session failed while staging {item.path.name}: {exc}") from exc
            con.execute("drop table if exists _stg")
            return self._hand_back(item.path, f"Spark could not stage it: {safe_error(exc)}")
        finally:
            if alone and batch is not None:
                shutil.rmtree(batch.out, ignore_errors=True)

    def finish(self) -> None:
        """Remove the run's batch outputs (files never loaded, e.g. after a crash of the run, go with them)."""
        for out in {b.out for b in self._batches.values()} | {p for p in self.staging_dir.glob("batch-*")}:
            shutil.rmtree(out, ignore_errors=True)
        self._batches.clear()
        self._left.clear()

    # ---- internals
    def _start(self) -> SparkSession:
        try:
            return self._session()
        except Exception as exc:  # no pyspark, no Java, no cluster: the run fails, no file is rejected
            raise StagerUnavailable(f"engine: spark could not start a Spark session: {exc}") from exc

    def _hand_back(self, path: Path, reason: str) -> str:
        self.handed_back.append((path, reason))
        return reason

    def _run_batch(self, session: SparkSession, stage: Stage, group: list[StageInput], *, alone: bool = False) -> None:
        """One Spark job staging ``group`` (files sharing one statement) into a folder partitioned by file."""
        first = group[0]
        numbered = list(enumerate(item.path for item in group))
        try:
            java, guard = strptime_pattern(
                stage.src.timestamp_format or "%Y-%m-%dT%H:%M:%S", f"sources.{stage.source}.timestamp_format"
            )
        except SparkIngestError as exc:
            self._left.update((item.path, str(exc)) for item in group)
            return
        types, counted = dict(first.raw_types), {}
        try:
            if first.fmt == "csv":
                irregular, counted = csv_records(
                    session, numbered, first.raw.params["delimiter"], first.raw.params["columns"]
                )
                why = "a line is not one well-formed CSV record (DuckDB's reader names it)"
                self._left.update((path, why) for n, path in numbered if n in irregular)
                if len(irregular) == len(group):
                    return
            else:
                parquet_records(session, numbered)
                types = {**text_types(session.table("_landing").schema), **first.raw_types}
            sql, used = render_stage(
                stage.stage_sql(first.raw.sql, first.positions, first.raw_types, first.key, hashes=False), types
            )
            values = {**stage.params(), **first.raw.params, "ts_java": java, "ts_guard": guard}
            missing = sorted(used - values.keys())
            if missing:
                raise SparkIngestError(f"staging statement parameters without a value: {missing}")
            out = self.staging_dir / f"batch-{uuid.uuid4().hex}"
            frame = session.sql(sql, args=spark_args(values, used))
            frame.selectExpr("*", f"shiftright(_line, {FILE_BITS}) as _f").write.partitionBy("_f").parquet(str(out))
            self.jobs += 1
            files = {path: n for n, path in numbered if path not in self._left}
            batch = _Batch(out, files, {path: counted[n] for path, n in files.items() if n in counted})
            self._batches.update((path, batch) for path in batch.files)
        except Exception as exc:
            if engine_failure(exc) or not alone:
                raise
            self._left[first.path] = f"Spark could not stage it: {safe_error(exc)}"
        finally:
            with contextlib.suppress(Exception):  # a session that went away has no view to drop
                session.catalog.dropTempView("_landing")


def _float_texts(stage: Stage, item: StageInput) -> str:
    """SQL: ``_qval`` with a quarantined floating-point value written as DuckDB writes it.

    Java writes ``1.0E20`` and ``1.2345678E7`` where DuckDB writes ``1e+20`` and ``12345678.0``; Java's text
    reads back as the same value, which DuckDB then writes itself. Such a value is the column's own text
    where the contract column is numeric, and the reader's (rule 0) where a text column holds floats (ids
    exported as DOUBLE; its own text is then the integer's); a masked value is never read back.
    """
    whens = []
    pii = set(stage.contract.pii_columns)
    for c in stage.contract.columns:
        raw = item.floats.get(c.name)
        if raw is None or c.name in pii:
            continue
        own = "" if c.type in ("decimal", "integer", "double") else " and _rule = 0"
        name = c.name.replace("'", "''")
        whens.append(f"when _qcol = '{name}'{own} then coalesce(cast(try_cast(_qval as {raw}) as varchar), _qval)")
    return f"case {' '.join(whens)} else _qval end" if whens else "_qval"


def _load(con: duckdb.DuckDBPyConnection, stage: Stage, files: str | None, item: StageInput) -> None:
    """``_stg`` from Spark's files of one landing file (None: it had no rows), in the DuckDB path's types, with
    its line number (the file number masked off), DuckDB's text of a floating-point value and its row and
    key hashes."""
    key = item.key
    names = stage.contract.column_names
    cols = ", ".join(f"cast({q(c.name)} as {c.sql_type}) as {q(c.name)}" for c in stage.contract.columns)
    hashes = f"hash({', '.join(q(n) for n in names)}) as _h"
    if key:
        hashes += f", hash({', '.join(q(n) for n in key)}) as _kh"
    inner = f"""select cast(_line & {_LINE_MASK} as bigint) as _line, {cols}, cast(_rule as integer) as _rule,
                       cast(_qcol as varchar) as _qcol, cast({_float_texts(stage, item)} as varchar) as _qval,
                       cast(_qreason as varchar) as _qreason, cast(_qcode as varchar) as _qcode"""
    if files is None:  # no rows: the same columns, empty
        empty = ", ".join(
            [
                "null::bigint as _line",
                *(f"null::{c.sql_type} as {q(c.name)}" for c in stage.contract.columns),
                "null::integer as _rule",
                *(f"null::varchar as {n}" for n in ("_qcol", "_qval", "_qreason", "_qcode")),
            ]
        )
        con.execute(f"create or replace temp table _stg as select *, {hashes} from (select {empty}) where false")
        return
    sql = f"create or replace temp table _stg as select *, {hashes} from ({inner} from read_parquet($stg_files))"
    con.execute(sql, bind(sql, {"stg_files": files}))
