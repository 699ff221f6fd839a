"""Incremental feature snapshots: recompute only the customers whose features can have changed since a base.

A snapshot D1 is built from the latest earlier snapshot D0 (the *base*, D0 <= D1) that was built with the
same windows and the same feature query, when one exists:

* **recomputed** with the one feature statement (``sql/customer_features.sql``, run over the source tables
  narrowed to these customers): every customer with a row that arrived or left since the base was built
  (new or replaced ingestion batches, whatever their business date), a row dated in (D0, D1] (entering
  "up to D"), or a row on a day that leaves one of the windows its source feeds — (D0 - N, D1 - N] for
  the N-day windows (orders: 30, 90, 365, the lookback and the reactivation window; browsing: the two
  behaviour windows and 90; feedback: the complaint window);
* **carried** from the base for everyone else, with the four day counts that only move with the date
  (``recency_days``, ``tenure_days``, ``days_since_last_visit``, ``days_since_last_feedback``) advanced by
  D1 - D0. Nothing else in such a customer's row can change: no row of theirs entered or left the
  warehouse, "up to D" or any window.

So the result equals a full rebuild, column for column (tests/test_features_incremental.py checks a
nightly chain against full rebuilds). Why not sum per-day partial aggregates instead: orders and sessions
that span midnight are counted once per order or session, and medians, "top" picks and the latest NPS are
not sums; the per-customer-day index (``features/activity_index.py``) decides *who* changed, and the
exact statement computes *what*.

A full rebuild happens, with the reason recorded in ``feature_params`` and the asset's metadata, when
there is no usable base (first snapshot, other windows, a changed feature query, a snapshot built by the
Spark engine), the index was rebuilt since the base, or more than ``MAX_RECOMPUTE_SHARE`` of the base's
customers changed (then one full pass is cheaper).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from features import activity_index
from features.customer_features import (
    DEFAULT_TABLE,
    OPTIONAL_SOURCES,
    BuildRecord,
    FeatureParams,
    _check_as_of,
    _features_relation_sql,
    _record_params,
    _Sources,
    build_customer_features,
    load_sql,
    output_columns,
    params_values,
)
from segments.warehouse import table_exists, transaction

FINGERPRINT_VERSION = "1"
MAX_RECOMPUTE_SHARE = 0.5
# Columns that are "days from a date to D": the only change D moves in a customer whose rows did not change.
DAY_COUNT_COLUMNS = ("recency_days", "tenure_days", "days_since_last_visit", "days_since_last_feedback")


@dataclass(frozen=True)
class FeatureBuild:
    """What one snapshot build did: rows written, ``full`` or ``incremental``, why, and from which base."""

    rows: int
    mode: str
    reason: str
    base_date: date | None = None
    recomputed: int = 0
    carried: int = 0
    index_seq: int = 0

    def metadata(self) -> dict[str, object]:
        """Plain values for the asset's metadata."""
        return {
            "build_mode": self.mode,
            "build_reason": self.reason,
            "base_snapshot": self.base_date.isoformat() if self.base_date else "none",
            "customers_recomputed": self.recomputed,
            "customers_carried": self.carried,
        }


def features_fingerprint(params: FeatureParams) -> str:
    """Hash of the feature statement and the columns these parameters produce: a base must match it."""
    text = "\n".join([FINGERPRINT_VERSION, load_sql("customer_features"), repr(output_columns(params))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def source_windows(params: FeatureParams) -> dict[str, tuple[int, ...]]:
    """The N-day windows each source's rows are counted in (``date > D - N``), from the feature statement.

    The reactivation window is inclusive (``date >= D - A``), i.e. the exclusive window of A + 1 days.
    """
    orders = [30, 90, 365, params.reactivation_window_days + 1]
    if params.lookback_days is not None:
        orders.append(params.lookback_days)
    return {
        "orders": tuple(sorted(set(orders))),
        "browsing": tuple(sorted({*params.windows, 90})),
        "feedback": (params.complaint_window_days,),
        "customers": (),
    }


def _days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


def _base(con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, fingerprint: str):
    """(base date, its index seq) or the reason there is none."""
    if not table_exists(con, "feature_params") or not table_exists(con, DEFAULT_TABLE):
        return "first snapshot of this warehouse"
    rows = con.execute(
        "select snapshot_date, index_seq from main.feature_params where snapshot_date <= $d and index_seq is not "
        "null and features_fingerprint = $fp and lookback_days is not distinct from $lb and short_window_days = $w1 "
        "and long_window_days = $w2 and complaint_window_days = $c and reactivation_window_days = $r "
        "order by snapshot_date desc limit 1",
        {"d": as_of, "fp": fingerprint, **params_values(params)},
    ).fetchall()
    if not rows:
        return "no earlier snapshot built with these windows and this feature query"
    base_date, seq = rows[0][0], int(rows[0][1])
    if activity_index.last_rebuild(con) > seq:
        return f"the activity index was rebuilt after snapshot {base_date} (rows written outside ingestion)"
    return base_date, seq


def _affected(con: duckdb.DuckDBPyConnection, params: FeatureParams, d0: date, d1: date, seq: int) -> int:
    """Fill temp table ``_affected`` with the customers to recompute; returns how many."""
    clauses = ["(i.activity_date > $d0 and i.activity_date <= $d1)"]
    values: dict[str, object] = {"d0": d0, "d1": d1, "seq": seq}
    for source, windows in source_windows(params).items():
        for n in windows:
            k = len(values)
            values[f"s{k}"], values[f"lo{k}"], values[f"hi{k}"] = source, _days_before(d0, n), _days_before(d1, n)
            clauses.append(f"(i.source = $s{k} and i.activity_date > $lo{k} and i.activity_date <= $hi{k})")
    con.execute(
        "create or replace temp table _affected as select distinct customer_id "
        f"from main.{activity_index.INDEX_TABLE} as i where i.customer_id is not null and ("
        "i.indexed_seq > $seq or i.removed_seq > $seq or (i.removed_seq is null and (" + " or ".join(clauses) + ")))",
        values,
    )
    return int(con.execute("select count(*) from _affected").fetchall()[0][0])


@contextmanager
def _narrowed_sources(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Temp views over the source tables keeping only the ``_affected`` customers' rows (same names)."""
    db = con.execute("select current_database()").fetchall()[0][0].replace('"', '""')
    made = []
    try:
        for name in ("orders", *OPTIONAL_SOURCES):
            if table_exists(con, name):
                con.execute(
                    f'create or replace temp view "{name}" as select * from "{db}".main."{name}" '
                    "where customer_id in (select customer_id from temp._affected)"
                )
                made.append(name)
        with _Sources(con):
            yield
    finally:
        for name in made:
            con.execute(f'drop view if exists temp.main."{name}"')


def _write_incremental(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, base_date: date, record: BuildRecord
) -> tuple[int, int]:
    """Stage carried + recomputed rows, then replace snapshot ``as_of`` in one transaction."""
    cols = [name for name, _ in output_columns(params)]
    shift = (as_of - base_date).days
    carried_exprs = []
    for name in cols:
        if name == "snapshot_date":
            carried_exprs.append('cast($d1 as date) as "snapshot_date"')
        elif name in DAY_COUNT_COLUMNS:
            carried_exprs.append(f'"{name}" + {shift} as "{name}"')
        else:
            carried_exprs.append(f'"{name}"')
    con.execute(
        f"create or replace temp table _features_next as select {', '.join(carried_exprs)} "
        f"from main.{DEFAULT_TABLE} as f where snapshot_date = $d0 "
        "and not exists (select 1 from temp._affected as a where a.customer_id = f.customer_id)",
        {"d0": base_date, "d1": as_of},
    )
    carried = int(con.execute("select count(*) from _features_next").fetchall()[0][0])
    sql, values = _features_relation_sql(as_of, params)
    with _narrowed_sources(con):
        con.execute(f"insert into _features_next {sql}", values)
    total = int(con.execute("select count(*) from _features_next").fetchall()[0][0])
    quoted = ", ".join(f'"{n}"' for n in cols)
    try:
        with transaction(con):
            con.execute(f"delete from main.{DEFAULT_TABLE} where snapshot_date = $d", {"d": as_of})
            con.execute(
                f"insert into main.{DEFAULT_TABLE} ({quoted}) select {quoted} from _features_next order by customer_id"
            )
            _record_params(con, as_of, params, record)
    finally:
        con.execute("drop table if exists temp._features_next")
    return total, carried


def build_features(con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams) -> FeatureBuild:
    """Build snapshot ``as_of`` of ``customer_features`` incrementally from a base when possible (see module)."""
    as_of = _check_as_of(as_of)
    refresh = activity_index.refresh(con)
    fingerprint = features_fingerprint(params)
    base = _base(con, as_of, params, fingerprint)
    try:
        if isinstance(base, str):
            return _full(con, as_of, params, refresh.seq, fingerprint, base)
        base_date, base_seq = base
        affected = _affected(con, params, base_date, as_of, base_seq)
        known = con.execute(
            f"select count(*) from main.{DEFAULT_TABLE} where snapshot_date = $d", {"d": base_date}
        ).fetchall()[0][0]
        if affected > MAX_RECOMPUTE_SHARE * max(int(known), 1):
            reason = f"{affected:,} of {known:,} customers changed since {base_date}: one full pass is cheaper"
            return _full(con, as_of, params, refresh.seq, fingerprint, reason)
        reason = f"{affected:,} customers changed since {base_date}"
        record = BuildRecord(refresh.seq, fingerprint, "incremental", base_date, affected)
        rows, carried = _write_incremental(con, as_of, params, base_date, record)
    finally:
        con.execute("drop table if exists temp._affected")
    _prune_index(con)
    return FeatureBuild(rows, "incremental", reason, base_date, rows - carried, carried, refresh.seq)


def _full(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, seq: int, fingerprint: str, reason: str
) -> FeatureBuild:
    rows = build_customer_features(con, as_of, params, record=BuildRecord(seq, fingerprint, "full", None, None))
    _prune_index(con)
    return FeatureBuild(rows, "full", reason, None, rows, 0, seq)


def _prune_index(con: duckdb.DuckDBPyConnection) -> None:
    """Forget removed index rows that no stored snapshot can be a base before (removed at or before every seq)."""
    con.execute(
        f"delete from main.{activity_index.INDEX_TABLE} where removed_seq <= "
        "(select min(index_seq) from main.feature_params where index_seq is not null)"
    )
