"""Store one snapshot's churn predictions: the ``churn_predictions`` table and the matching columns of
``customer_segments`` (so summaries, checks, exports and publishing see them like any other column).
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import polars as pl

from features.customer_features import FeatureError, _bind, _check_as_of, _relation_exists, load_sql
from segments.warehouse import replace_snapshot

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_TYPES = {pl.Float64(): "DOUBLE", pl.String(): "VARCHAR"}


def attach_predictions(
    con: duckdb.DuckDBPyConnection, as_of: date, predictions: pl.DataFrame, columns: dict[str, pl.DataType]
) -> int:
    """Replace snapshot ``as_of`` of ``churn_predictions`` and copy ``columns`` into ``customer_segments``.

    Runs in one transaction: a failure leaves both tables as they were. Returns the predicted rows.
    Missing prediction columns are added to ``customer_segments`` (older tables); rows without a
    prediction get nulls.
    """
    as_of = _check_as_of(as_of)
    bad = [c for c in columns if not _COLUMN.match(c)]
    if bad:
        raise FeatureError(f"prediction column names must be lower_snake_case, got {bad}")
    if not _relation_exists(con, "customer_segments"):
        raise FeatureError("table customer_segments not found: materialize customer_segments before predictions")
    frame = predictions.select("customer_id", *columns).with_columns(snapshot_date=pl.lit(as_of, pl.Date))
    have = {r[0] for r in con.execute("describe customer_segments").fetchall()}
    for name, dtype in columns.items():
        if name not in have:
            con.execute(f'alter table customer_segments add column "{name}" {_SQL_TYPES[dtype]}')
    clear = ", ".join(f'"{c}" = null' for c in columns)
    update = load_sql("attach_predictions").replace(
        "{assignments}", ", ".join(f'"{c}" = predictions."{c}"' for c in columns)
    )

    def copy_into_segments(c: duckdb.DuckDBPyConnection) -> None:
        c.execute(f"update customer_segments set {clear} where snapshot_date = $d", {"d": as_of})
        c.execute(update, _bind(update, {"as_of": as_of}))

    replace_snapshot(con, "churn_predictions", frame, as_of, also=copy_into_segments)
    return frame.height
