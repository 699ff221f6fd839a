"""One new day of landing files for the nightly benchmark: the last daily files, moved one day on.

The sample generator writes the last ``daily_days`` days as daily files (``orders_YYYY-MM-DD.csv``,
``browsing_YYYY-MM-DD.parquet``, ``feedback_YYYY-MM-DD.csv``). A nightly run receives one more such day, so
the next day is the newest daily file of each source with every timestamp moved one day later and the keys
that must be new (order, session and feedback ids) suffixed with the new date. The customers are the same
existing ones, so the day touches a realistic share of them; planted defects stay defects (text that does
not parse as a timestamp is kept as it is). Read with DuckDB, written with polars, deterministic; nothing
reads the clock.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
DAILY = re.compile(r"^(?P<source>orders|browsing|feedback)_(?P<day>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|parquet)$")
# source -> (timestamp column, id columns that get the new day's suffix)
SHIFTS = {
    "orders": ("order_ts", ("order_id",)),
    "browsing": ("event_ts", ("session_id",)),
    "feedback": ("submitted_ts", ("feedback_id",)),
}


def newest_daily_files(landing: Path) -> dict[str, Path]:
    """The newest daily file of orders, browsing and feedback under ``landing``."""
    newest: dict[str, tuple[str, Path]] = {}
    for path in landing.glob("*/*"):
        m = DAILY.match(path.name)
        if m and (m["source"] not in newest or m["day"] > newest[m["source"]][0]):
            newest[m["source"]] = (m["day"], path)
    missing = sorted(set(SHIFTS) - set(newest))
    if missing:
        raise FileNotFoundError(f"no daily file (<source>_YYYY-MM-DD.csv|parquet) for {missing} under {landing}")
    return {s: p for s, (_, p) in newest.items()}


def _moved(con: duckdb.DuckDBPyConnection, path: Path, source: str, suffix: str) -> pl.DataFrame:
    """One daily file moved a day on; identifiers come from the file's own header, values are bound."""
    ts_col, id_cols = SHIFTS[source]
    if path.suffix == ".parquet":
        reader = "read_parquet($path)"
        shift = {ts_col: f'"{ts_col}" + interval 1 day'}
    else:
        reader = "read_csv($path, header = true, all_varchar = true)"
        parsed = f'try_strptime("{ts_col}", $fmt)'
        shift = {ts_col: f'coalesce(strftime({parsed} + interval 1 day, $fmt), "{ts_col}")'}
    for col in id_cols:
        shift[col] = f'"{col}" || $suffix'
    params = {"path": str(path), "fmt": TS_FORMAT, "suffix": suffix}
    names = [r[0] for r in con.execute(f"describe select * from {reader}", {"path": str(path)}).fetchall()]
    cols = ", ".join(f'{shift[n]} as "{n}"' if n in shift else f'"{n}"' for n in names)
    used = {k: v for k, v in params.items() if f"${k}" in cols or k == "path"}
    return con.sql(f"select {cols} from {reader}", params=used).pl()


def write_next_day(source_landing: Path, target_landing: Path) -> tuple[date, dict[str, int]]:
    """Write the day after the newest daily files of ``source_landing`` into ``target_landing``.

    Returns the new day and the rows written per source.
    """
    newest = newest_daily_files(source_landing)
    day = max(date.fromisoformat(DAILY.match(p.name)["day"]) for p in newest.values()) + timedelta(days=1)
    suffix = f"-{day:%Y%m%d}"
    rows = {}
    con = duckdb.connect()
    try:
        for source, path in sorted(newest.items()):
            frame = _moved(con, path, source, suffix)
            out = target_landing / source / f"{source}_{day.isoformat()}{path.suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".parquet":
                frame.write_parquet(out, compression="zstd", statistics=True)
            else:
                frame.write_csv(out)
            rows[source] = frame.height
    finally:
        con.close()
    return day, rows
