"""Which customers had rows on which business days, per loaded file: the index behind incremental snapshots.

``customer_activity_days`` holds one row per (source, file, ingestion run, customer, business date) with
the number of warehouse rows behind it: the per-customer-day partial count of every source, kept up to
date from the ingestion manifest. A refresh indexes the batches (file + run) that ingestion loaded since
the last refresh and marks the batches that a re-ingestion replaced as removed (``removed_seq``), so a
later snapshot can tell which customers' rows arrived, left, or sit on a day that enters or leaves a
window. Each refresh gets a sequence number; a feature snapshot records the number it was built after.

The refresh is proportional to the new batches: it reads the manifest, and the source rows of the new
batches only (DuckDB skips row groups by the ``_file`` / ``_run_id`` zone maps, since a batch is appended
in one piece). Its accounting is checked every time: the indexed rows of a source must add up to the
rows of the source table; otherwise the index is rebuilt from the tables (``rebuild``), so an index can
never silently miss rows (a table written outside ingestion, an older warehouse).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from segments.warehouse import table_exists, transaction

INDEX_TABLE = "customer_activity_days"
RUNS_TABLE = "customer_activity_refreshes"
FEW_BATCHES = 4  # up to this many new batches of a source are indexed one by one, more in one pass
# The business date of each source's rows (the date every feature window is measured on).
SOURCE_DATES: dict[str, str] = {
    "orders": "order_date",
    "browsing": "event_date",
    "feedback": "submitted_date",
    "customers": "signup_date",
}


_SAME_BATCH = (
    "i.source = b.source and i._file is not distinct from b._file and i._run_id is not distinct from b._run_id"
)


@dataclass(frozen=True)
class Refresh:
    """One refresh: its sequence number, batches indexed and removed, and whether it rebuilt the index."""

    seq: int
    batches_added: int
    batches_removed: int
    rebuilt: bool


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"create table if not exists {INDEX_TABLE} (source varchar not null, _file varchar, _run_id varchar, "
        "customer_id varchar, activity_date date, row_count bigint not null, indexed_seq bigint not null, "
        "removed_seq bigint)"
    )
    con.execute(f"create table if not exists {RUNS_TABLE} (seq bigint primary key, rebuilt boolean not null)")


def _present_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [s for s in SOURCE_DATES if table_exists(con, s)]


def _index_batches(con: duckdb.DuckDBPyConnection, source: str, seq: int, where: str, params: dict) -> None:
    date_col = SOURCE_DATES[source]
    con.execute(
        f"insert into {INDEX_TABLE} select $src, _file, _run_id, customer_id, {date_col}, count(*), $seq, null "
        f'from main."{source}" {where} group by _file, _run_id, customer_id, {date_col}',
        {"src": source, "seq": seq, **params},
    )


def _counts_agree(con: duckdb.DuckDBPyConnection, sources: list[str]) -> bool:
    """Every source table's row count equals its live indexed rows (and no source vanished)."""
    indexed = dict(
        con.execute(
            f"select source, sum(row_count) from {INDEX_TABLE} where removed_seq is null group by source"
        ).fetchall()
    )
    for source in sources:
        total = con.execute(f'select count(*) from main."{source}"').fetchall()[0][0]
        if int(indexed.pop(source, 0) or 0) != int(total):
            return False
    return not any(indexed.values())


def refresh(con: duckdb.DuckDBPyConnection) -> Refresh:
    """Index the batches loaded since the last refresh, mark replaced ones removed; one transaction."""
    _ensure(con)
    sources = _present_sources(con)
    try:
        with transaction(con):
            seq = int(con.execute(f"select coalesce(max(seq), 0) + 1 from {RUNS_TABLE}").fetchall()[0][0])
            added = 0
            if table_exists(con, "ingest_manifest"):
                con.execute(
                    "create or replace temp table _live_batches as select distinct source, path as _file, run_id as "
                    "_run_id from main.ingest_manifest where coalesce(rows_loaded, 0) > 0"
                )
            else:
                con.execute(
                    "create or replace temp table _live_batches (source varchar, _file varchar, _run_id varchar)"
                )
            con.execute(
                f"update {INDEX_TABLE} as i set removed_seq = $seq where removed_seq is null and not exists "
                f"(select 1 from _live_batches as b where {_SAME_BATCH})",
                {"seq": seq},
            )
            removed = con.execute(
                f"select count(*) from (select distinct source, _file, _run_id from {INDEX_TABLE} "
                "where removed_seq = $seq)",
                {"seq": seq},
            ).fetchall()[0][0]
            con.execute(
                "create or replace temp table _new_batches as select * from _live_batches as b where not exists "
                f"(select 1 from {INDEX_TABLE} as i where i.removed_seq is null and {_SAME_BATCH})"
            )
            for source in sources:
                batches = con.execute(
                    "select _file, _run_id from _new_batches where source = $s order by _file, _run_id", {"s": source}
                ).fetchall()
                if len(batches) <= FEW_BATCHES:  # a night's files: equality filters skip the other row groups
                    for file, run_id in batches:
                        _index_batches(con, source, seq, "where _file = $f and _run_id = $r", {"f": file, "r": run_id})
                elif batches:  # a first load or a backfill: one pass over the table
                    _index_batches(
                        con,
                        source,
                        seq,
                        "as s where exists (select 1 from _new_batches as b where b.source = $src and "
                        "s._file is not distinct from b._file and s._run_id is not distinct from b._run_id)",
                        {},
                    )
                added += len(batches)
            rebuilt = not _counts_agree(con, sources)
            if rebuilt:
                _rebuild(con, sources, seq)
            con.execute(f"insert into {RUNS_TABLE} values ($seq, $rebuilt)", {"seq": seq, "rebuilt": rebuilt})
    finally:
        con.execute("drop table if exists temp._live_batches")
        con.execute("drop table if exists temp._new_batches")
    return Refresh(seq=seq, batches_added=added, batches_removed=int(removed or 0), rebuilt=rebuilt)


def _rebuild(con: duckdb.DuckDBPyConnection, sources: list[str], seq: int) -> None:
    """Index every row of every source again under ``seq`` (all earlier entries count as removed)."""
    con.execute(f"update {INDEX_TABLE} set removed_seq = $seq where removed_seq is null", {"seq": seq})
    for source in sources:
        _index_batches(con, source, seq, "", {})


def last_rebuild(con: duckdb.DuckDBPyConnection) -> int:
    """Sequence number of the latest refresh that rebuilt the whole index (0: none)."""
    if not table_exists(con, RUNS_TABLE):
        return 0
    return int(con.execute(f"select coalesce(max(seq), 0) from {RUNS_TABLE} where rebuilt").fetchall()[0][0])
