"""Per-customer features as of a snapshot date D: purchases (RFM inputs), behaviour, feedback, preferences.

Grain: one row per known customer per snapshot date. All the work is one SQL statement
(``sql/customer_features.sql``) that aggregates inside DuckDB, so it streams over tens of millions of
events out of core; Python only binds parameters, names the window columns and writes the snapshot.

Conventions (also in the header of ``sql/customer_features.sql``):

* Only events whose local business date (``order_date``, ``event_date``, ``submitted_date``) is on or
  before D count; later events are ignored. D is always passed in; nothing reads the clock.
* "In the last N days" means ``D - N days < date <= D``: N calendar days ending with D. A purchase made
  exactly N days before D (``recency_days == N``) is *not* in the N-day window; one made N - 1 days
  before is. This holds for ``orders_{30,90,365}d``, the behaviour windows, ``complaints_{N}d``,
  ``cart_to_order_rate_90d``, ``top_browsed_category_90d`` and the optional ``lookback_days`` of
  frequency/monetary.
* ``reactivation_gap_days`` is the largest gap between purchase dates ending in a purchase with
  ``recency <= reactivation_window_days`` (the lifecycle's ``active_days``, boundary included exactly as
  ``active`` is), so a customer back exactly ``active_days`` before D after a long gap is reactivated.
* ``lookback_days`` (default: all history) restricts frequency, monetary, gross_sales, refund_amount,
  aov, cancelled_orders and the spend preferences. First/last purchase, recency, tenure, median gap,
  ``orders_Nd`` and ``is_buyer`` (a completed purchase at any time up to D: a customer whose purchases all
  fall before the window is a lapsed buyer with frequency 0, never a prospect) always use all history.
* Known customer: a non-null customer_id in orders (any status), browsing or feedback dated <= D, or in
  customers with signup_date null or <= D. A customer record signed up after D does not count yet
  (``has_customer_record`` false, attributes null) even when the customer is known from activity.
* Purchases: an order counts once (distinct order_id) if it has a completed line; it is in a window when
  one of its completed lines is. monetary = completed amount - refunded amount (refund lines dated by
  refund date), cancelled lines are ignored; ``cancelled_orders`` counts orders with a cancelled line.
  ``aov`` = monetary / frequency rounded half away from zero to cents (exact integer arithmetic).
* Preferences: ``top_category`` by net spend (completed - refunded) per category, positive only, ties
  alphabetical; its share is of the sum of the positive net spend buckets (uncategorized lines are a
  bucket that cannot win), so it lies in (0, 1]. ``online_share`` (online + app) and ``offline_share``
  are shares of completed spend (gross_sales); other or unknown channels make up the rest. Both null
  when there is no positive completed spend; ``preferred_channel`` likewise.
* ``home_store`` (chain stores): the ``store_id`` with the largest net spend (completed - refunded) in the
  lookback window, positive only, ties to the smallest store_id; null for a customer without store lines
  (online lines carry no store and never make a home store).
* Feedback: ``last_nps`` is the non-null nps of the latest submitted_ts, ties to the greatest feedback_id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

from data_contracts.contracts import load_contract
from segments.warehouse import table_exists

SQL_DIR = Path(__file__).resolve().parent / "sql"
# The statements of this module, each in sql/<name>.sql.
SQL_NAMES = ("customer_features", "anonymous_browsing_counts", "delete_snapshot", "insert_snapshot")
DEFAULT_TABLE = "customer_features"
_MAX_DAYS = 100_000
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Optional sources (PRODUCT.md section 2): when a table is absent it is read as empty with the schema
# ingestion would give it (the contract's storage columns plus lineage).
OPTIONAL_SOURCES: dict[str, list[tuple[str, str]]] = {
    name: [*load_contract(name).storage_columns(), ("_file", "VARCHAR"), ("_line", "BIGINT")]
    for name in ("browsing", "feedback", "customers")
}


class FeatureError(ValueError):
    """Invalid feature parameters, target table or warehouse layout; the message says what to fix."""


def _check_days(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DAYS:
        raise FeatureError(f"{name} must be a whole number of days between 1 and {_MAX_DAYS}, got {value!r}")


@dataclass(frozen=True)
class FeatureParams:
    """Window lengths in days; every window is the N days ending with the snapshot date, D included.

    ``lookback_days`` limits frequency/monetary (None: all history), ``windows`` are the two behaviour
    windows (columns ``sessions_{W}d`` ...), ``complaint_window_days`` names ``complaints_{N}d``.
    ``reactivation_window_days`` must equal ``lifecycle.active_days`` (recency <= N, boundary included).
    """

    lookback_days: int | None = None  # None = all history for frequency/monetary
    windows: tuple[int, int] = (30, 90)  # behaviour windows
    complaint_window_days: int = 90
    reactivation_window_days: int = 90  # = lifecycle.active_days

    def window_names(self) -> dict[str, int]:
        """The day counts that name window columns: ``{"short": 30, "long": 90, "complaint": 90}``."""
        return {"short": self.windows[0], "long": self.windows[1], "complaint": self.complaint_window_days}

    def __post_init__(self) -> None:
        if self.lookback_days is not None:
            _check_days("lookback_days", self.lookback_days)
        windows = tuple(self.windows)
        if len(windows) != 2:
            raise FeatureError(f"windows must be two window lengths in days, e.g. (30, 90), got {self.windows!r}")
        for w in windows:
            _check_days("windows", w)
        if windows[0] == windows[1]:
            raise FeatureError(f"windows must be two different lengths, got {self.windows!r}")
        object.__setattr__(self, "windows", windows)
        _check_days("complaint_window_days", self.complaint_window_days)
        window = self.reactivation_window_days
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= _MAX_DAYS:
            raise FeatureError(
                f"reactivation_window_days (segmentation.lifecycle.active_days) must be between 0 and {_MAX_DAYS}, "
                f"got {window!r}"
            )


# ------------------------------------------------------------------------------------------ output schema
_PURCHASE_COLUMNS: list[tuple[str, str]] = [
    ("frequency", "BIGINT"),
    ("monetary", "DECIMAL(18,2)"),
    ("gross_sales", "DECIMAL(18,2)"),
    ("refund_amount", "DECIMAL(18,2)"),
    ("aov", "DECIMAL(18,2)"),
    ("first_purchase_date", "DATE"),
    ("last_purchase_date", "DATE"),
    ("recency_days", "BIGINT"),
    ("tenure_days", "BIGINT"),
    ("orders_30d", "BIGINT"),
    ("orders_90d", "BIGINT"),
    ("orders_365d", "BIGINT"),
    ("median_days_between_purchases", "DOUBLE"),
    ("reactivation_gap_days", "BIGINT"),
    ("cancelled_orders", "BIGINT"),
    ("is_buyer", "BOOLEAN"),
]
_WINDOW_COLUMNS: list[tuple[str, str]] = [
    ("sessions", "BIGINT"),
    ("page_views", "BIGINT"),
    ("product_views", "BIGINT"),
    ("searches", "BIGINT"),
    ("add_to_carts", "BIGINT"),
    ("time_online_s", "BIGINT"),
]
_PREFERENCE_AND_RECORD_COLUMNS: list[tuple[str, str]] = [
    ("top_category", "VARCHAR"),
    ("top_category_share", "DOUBLE"),
    ("online_share", "DOUBLE"),
    ("offline_share", "DOUBLE"),
    ("preferred_channel", "VARCHAR"),
    ("home_store", "VARCHAR"),
    ("has_customer_record", "BOOLEAN"),
    ("signup_date", "DATE"),
    ("region", "VARCHAR"),
    ("city", "VARCHAR"),
    ("source_channel", "VARCHAR"),
    ("birth_year", "BIGINT"),
    ("gender", "VARCHAR"),
]


def output_columns(params: FeatureParams | None = None) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every output column, in order; window columns are named from ``params``."""
    params = params or FeatureParams()
    cols: list[tuple[str, str]] = [("snapshot_date", "DATE"), ("customer_id", "VARCHAR"), *_PURCHASE_COLUMNS]
    for w in params.windows:
        cols += [(f"{name}_{w}d", typ) for name, typ in _WINDOW_COLUMNS]
    cols += [
        ("days_since_last_visit", "BIGINT"),
        ("cart_to_order_rate_90d", "DOUBLE"),
        ("top_browsed_category_90d", "VARCHAR"),
        ("feedback_count", "BIGINT"),
        ("avg_rating", "DOUBLE"),
        ("last_nps", "BIGINT"),
        ("nps_class", "VARCHAR"),
        (f"complaints_{params.complaint_window_days}d", "BIGINT"),
        ("days_since_last_feedback", "BIGINT"),
        *_PREFERENCE_AND_RECORD_COLUMNS,
    ]
    return cols


# ---------------------------------------------------------------------------------------------- SQL
@cache
def load_sql(name: str) -> str:
    """Text of ``features/sql/<name>.sql`` (loaded relative to this module)."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _bind(sql: str, values: dict[str, object]) -> dict[str, object]:
    """The subset of ``values`` the statement uses (DuckDB refuses unused named parameters)."""
    wanted = set(_PARAM.findall(_COMMENT.sub("", sql)))
    missing = wanted - values.keys()
    if missing:
        raise FeatureError(f"SQL parameters without a value: {sorted(missing)}")
    return {k: values[k] for k in sorted(wanted)}


def _days_before(as_of: date, days: int) -> date:
    try:
        return as_of - timedelta(days=days)
    except OverflowError:
        return date.min


def _check_as_of(as_of: object) -> date:
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise FeatureError(f"as_of must be a datetime.date (the snapshot's business date), got {as_of!r}")
    return as_of


def _parameters(as_of: date, params: FeatureParams) -> dict[str, object]:
    """Bound values: D and the exclusive lower bound ``D - N days`` of every window."""
    w1, w2 = params.windows
    return {
        "as_of": as_of,
        "lookback_start": None if params.lookback_days is None else _days_before(as_of, params.lookback_days),
        "start_30": _days_before(as_of, 30),
        "start_90": _days_before(as_of, 90),
        "start_365": _days_before(as_of, 365),
        "w1_start": _days_before(as_of, w1),
        "w2_start": _days_before(as_of, w2),
        "complaint_start": _days_before(as_of, params.complaint_window_days),
        "reactivation_start": _days_before(as_of, params.reactivation_window_days),
    }


def _quote_table(table: str) -> str:
    """``table`` or ``schema.table`` as a quoted identifier; anything else is refused."""
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise FeatureError(
            f"table must be a plain identifier such as 'customer_features' or 'main.customer_features', got {table!r}"
        )
    return ".".join(f'"{p}"' for p in parts)


def _relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    try:
        con.execute(f"select 1 from {name} limit 0")
    except duckdb.CatalogException:
        return False
    return True


class _Sources:
    """Context manager: empty temp views stand in for absent optional sources while the query runs."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.created: list[str] = []

    def __enter__(self) -> _Sources:
        if not _relation_exists(self.con, "orders"):
            raise FeatureError(
                "table 'orders' not found in the warehouse: ingest the orders source first "
                "(it is the one required source)"
            )
        for name, cols in OPTIONAL_SOURCES.items():
            if not _relation_exists(self.con, name):
                body = ", ".join(f"cast(null as {typ}) as {col}" for col, typ in cols)
                self.con.execute(f"create temp view {name} as select {body} where 1 = 0")
                self.created.append(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.created:
            self.con.execute(f"drop view if exists temp.{name}")


def _features_relation_sql(as_of: date, params: FeatureParams) -> tuple[str, dict[str, object]]:
    sql = load_sql("customer_features")
    return sql, _bind(sql, _parameters(as_of, params))


# ------------------------------------------------------------------------------------------- public API
def customer_features_frame(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams = FeatureParams()
) -> pl.DataFrame:
    """One row per known customer as of ``as_of``, sorted by customer_id (for tests and small data)."""
    as_of = _check_as_of(as_of)
    sql, values = _features_relation_sql(as_of, params)
    with _Sources(con):
        frame = con.sql(sql, params=values).pl()
    names = [name for name, _ in output_columns(params)]
    if frame.width != len(names):
        raise FeatureError(f"customer_features.sql returned {frame.width} columns, expected {len(names)}")
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, exists: bool, params: FeatureParams) -> None:
    """Create the feature table if missing, or add the window columns these parameters name.

    Snapshots built with other windows keep their own columns (null for this snapshot); a column whose
    type differs from what the query produces is refused.
    """
    cols = output_columns(params)
    if exists:
        have = {row[0]: row[1].replace(" ", "") for row in con.execute(f"describe {table}").fetchall()}
        clash = sorted(n for n, t in cols if n in have and have[n] != t.replace(" ", ""))
        if clash:
            raise FeatureError(
                f"table {table} has column(s) {clash} with other types than the feature query produces; "
                "write to another table or drop it and rebuild its snapshots"
            )
        for name, typ in cols:
            if name not in have:
                con.execute(f'alter table {table} add column "{name}" {typ}')
        return
    body = ", ".join(f'"{n}" {t}' + (" not null" if n in ("snapshot_date", "customer_id") else "") for n, t in cols)
    con.execute(f"create table if not exists {table} ({body})")


@dataclass(frozen=True)
class BuildRecord:
    """How a snapshot was built, kept in ``feature_params``: the activity-index refresh it saw, the feature
    query's fingerprint, ``full`` or ``incremental``, the base snapshot and the customers recomputed."""

    index_seq: int | None = None
    fingerprint: str | None = None
    mode: str | None = None
    base_date: date | None = None
    recomputed: int | None = None


_PARAMS_TABLE_COLUMNS: list[tuple[str, str]] = [
    ("reactivation_window_days", "bigint"),
    ("index_seq", "bigint"),
    ("features_fingerprint", "varchar"),
    ("build_mode", "varchar"),
    ("base_date", "date"),
    ("customers_recomputed", "bigint"),
]


def params_values(params: FeatureParams) -> dict[str, object]:
    """The windows of ``params`` as the bound values ``feature_params`` is written and matched with."""
    return {
        "lb": params.lookback_days,
        "w1": params.windows[0],
        "w2": params.windows[1],
        "c": params.complaint_window_days,
        "r": params.reactivation_window_days,
    }


def _record_params(
    con: duckdb.DuckDBPyConnection, as_of: date, params: FeatureParams, record: BuildRecord = BuildRecord()
) -> None:
    """Remember which windows snapshot ``as_of`` was built with (its column names depend on them) and how.

    A snapshot without an index sequence (built by the Spark engine, or by a direct call) is never the base
    of an incremental build.
    """
    con.execute(
        "create table if not exists feature_params (snapshot_date date primary key, lookback_days bigint, "
        "short_window_days bigint, long_window_days bigint, complaint_window_days bigint)"
    )
    for name, typ in _PARAMS_TABLE_COLUMNS:  # warehouses from before these columns get them
        con.execute(f"alter table feature_params add column if not exists {name} {typ}")
    con.execute("delete from feature_params where snapshot_date = $d", {"d": as_of})
    con.execute(
        "insert into feature_params (snapshot_date, lookback_days, short_window_days, long_window_days, "
        "complaint_window_days, reactivation_window_days, index_seq, features_fingerprint, build_mode, base_date, "
        "customers_recomputed) values ($d, $lb, $w1, $w2, $c, $r, $seq, $fp, $mode, $base, $n)",
        {
            "d": as_of,
            **params_values(params),
            "seq": record.index_seq,
            "fp": record.fingerprint,
            "mode": record.mode,
            "base": record.base_date,
            "n": record.recomputed,
        },
    )


def feature_params(con: duckdb.DuckDBPyConnection, as_of: date) -> FeatureParams:
    """The parameters snapshot ``as_of`` was built with (the defaults for snapshots built before they were kept)."""
    # Checked first: a missing table would otherwise be looked up among Python variables (replacement scan).
    if not table_exists(con, "feature_params"):
        return FeatureParams()
    rows = con.execute(
        "select lookback_days, short_window_days, long_window_days, complaint_window_days from main.feature_params "
        "where snapshot_date = $d",
        {"d": as_of},
    ).fetchall()
    if not rows:
        return FeatureParams()
    row = rows[0]
    return FeatureParams(lookback_days=row[0], windows=(row[1], row[2]), complaint_window_days=row[3])


def read_features(con: duckdb.DuckDBPyConnection, as_of: date, table: str = DEFAULT_TABLE) -> pl.DataFrame:
    """Snapshot ``as_of`` of the feature table with exactly the columns its parameters produce, by customer."""
    as_of = _check_as_of(as_of)
    target = _quote_table(table)
    if not _relation_exists(con, target):
        return pl.DataFrame()
    cols = ", ".join(f'"{n}"' for n, _ in output_columns(feature_params(con, as_of)))
    sql = f"select {cols} from {target} where snapshot_date = $d order by customer_id"
    return con.sql(sql, params={"d": as_of}).pl()


def build_customer_features(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    params: FeatureParams = FeatureParams(),
    table: str = DEFAULT_TABLE,
    *,
    record: BuildRecord = BuildRecord(),
) -> int:
    """Delete-then-insert the snapshot `as_of` into `table` (created if missing, keyed by snapshot_date,
    customer_id); returns rows written.

    Runs in one transaction: a failure leaves the previous version of the snapshot in place. ``record`` says
    how it was built (``features.incremental`` passes it); see ``_record_params``.
    """
    as_of = _check_as_of(as_of)
    target = _quote_table(table)
    features_sql, values = _features_relation_sql(as_of, params)
    delete_sql = load_sql("delete_snapshot").format(table=target)
    columns = ", ".join(f'"{n}"' for n, _ in output_columns(params))
    insert_sql = load_sql("insert_snapshot").format(table=target, columns=columns, features=features_sql)
    with _Sources(con):
        exists = _relation_exists(con, target)
        con.execute("begin transaction")
        try:
            _ensure_table(con, target, exists, params)
            con.execute(delete_sql, _bind(delete_sql, values))
            row = con.execute(insert_sql, _bind(insert_sql, values)).fetchone()
            if table == DEFAULT_TABLE:
                _record_params(con, as_of, params, record)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return int(row[0]) if row else 0


def anonymous_browsing_counts(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, int]:
    """Anonymous browsing (no customer_id) up to ``as_of``: ``{"events": n, "sessions": n}``.

    Counted for data quality and traffic metadata, never attributed to a customer.
    """
    as_of = _check_as_of(as_of)
    sql = load_sql("anonymous_browsing_counts")
    with _Sources(con):
        events, sessions = con.execute(sql, _bind(sql, {"as_of": as_of})).fetchone() or (0, 0)
    return {"events": int(events), "sessions": int(sessions)}
