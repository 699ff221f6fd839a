"""Frames and writers: one period slice at a time, so memory follows the largest file.

Order and feedback frames are text (written as CSV, monthly orders of even months gzip-compressed);
browsing is typed (written as Parquet); customers is one CSV.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from segments.sample_data.browsing import _Events
from segments.sample_data.defects import _FUTURE_YEAR, _apply_text_defects, _DefectPlan
from segments.sample_data.feedback import _Feedback
from segments.sample_data.formatting import _ids, _int_text, _labels, _money, _ts_text, _width
from segments.sample_data.purchases import _Orders, _People
from segments.sample_data.vocabulary import (
    _ARCH,
    _COMMENTS,
    _DAY,
    _EMAIL_DOMAINS,
    _GIVEN,
    _N_STORES,
    _PRODUCTS_PER_CATEGORY,
    _REGION_WEIGHTS,
    _SURNAMES,
    CATEGORIES,
    CHANNELS,
    CURRENCY,
    DEVICES,
    EVENT_TYPES,
    FEEDBACK_KINDS,
    GENDERS,
    REGIONS,
    SOURCE_CHANNELS,
    STATUSES,
    _Calendar,
    _norm,
    _Period,
    _time_of_day,
)


def _customer_labels(n_cust: int, n_extra: int) -> pl.Series:
    """Customer id text for numbers 1..n_cust+n_extra (index i -> number i + 1)."""
    return _ids("C", np.arange(1, n_cust + n_extra + 1), _width(7, n_cust + n_extra))


_PRODUCT_LABELS = [f"P{c + 1:02d}{r + 1:04d}" for c in range(len(CATEGORIES)) for r in range(_PRODUCTS_PER_CATEGORY)]
_STORE_LABELS = [f"S{i + 1:03d}" for i in range(_N_STORES)]
_COMMENT_LABELS = [c for pool in _COMMENTS.values() for c in pool]


def _orders_frame(orders: _Orders, cust_labels: pl.Series, cal: _Calendar, start: int, stop: int) -> pl.DataFrame:
    """Order lines [start, stop) as text columns in file order."""
    sl = slice(start, stop)
    o = orders.l_order[sl]
    return pl.DataFrame(
        {
            "order_id": _ids("O", o + 1, _width(8, len(orders.cust))),
            "line_id": pl.Series(orders.l_line[sl]).cast(pl.String),
            "customer_id": _labels(orders.cust[o], cust_labels),
            "order_ts": _ts_text(orders.l_sec[sl], cal),
            "amount": _money(orders.l_amount[sl]),
            "quantity": pl.Series(orders.l_qty[sl]).cast(pl.String),
            "unit_price": _money(orders.l_unit[sl]),
            "status": _labels(orders.l_status[sl], STATUSES),
            "channel": _labels(orders.channel[o], CHANNELS),
            "store_id": _labels(orders.store[o], _STORE_LABELS),
            "category": _labels(orders.l_cat[sl], CATEGORIES),
            "product_id": _labels(orders.l_product[sl], _PRODUCT_LABELS),
            "currency": pl.repeat(CURRENCY, len(o), eager=True, dtype=pl.String),
        }
    )


def _feedback_frame(fb: _Feedback, cust_labels: pl.Series, cal: _Calendar, start: int, stop: int) -> pl.DataFrame:
    """Feedback rows [start, stop) as text columns in file order."""
    sl = slice(start, stop)
    return pl.DataFrame(
        {
            "feedback_id": _ids("F", np.arange(start + 1, stop + 1), _width(8, len(fb.cust))),
            "customer_id": _labels(fb.cust[sl], cust_labels),
            "submitted_ts": _ts_text(fb.sec[sl], cal),
            "kind": _labels(fb.kind[sl], FEEDBACK_KINDS),
            "rating": _int_text(fb.rating[sl]),
            "nps": _int_text(fb.nps[sl]),
            "comment": _labels(fb.comment[sl], _COMMENT_LABELS),
        }
    )


def _browsing_frame(
    ev: _Events, cust_labels: pl.Series, cal: _Calendar, start: int, stop: int, plan: _DefectPlan
) -> pl.DataFrame:
    """Browsing events [start, stop) as a typed frame, with the planned defects in that range."""
    sl = slice(start, stop)
    session = ev.session[sl].astype(np.int64) + 1  # session numbers from 1; 0 -> null id
    etype = ev.etype[sl].copy()
    ts_us = (ev.sec[sl] + cal.epoch_s) * 1_000_000
    pos, kind = plan.within(start, stop)
    session[pos[kind == 0]] = 0
    etype[pos[kind == 1]] = len(EVENT_TYPES)  # "teleport"
    fut = pos[kind == 2]
    year_s = (datetime(_FUTURE_YEAR, 1, 1) - datetime(1970, 1, 1)).days * _DAY
    ts_us[fut] = (year_s + ev.sec[sl][fut] % (365 * _DAY)) * 1_000_000
    return pl.DataFrame(
        {
            "customer_id": _labels(ev.cust[sl], cust_labels),
            "session_id": _ids("sess_", session, _width(9, int(ev.session_count))),
            "event_ts": pl.Series(ts_us, dtype=pl.Int64).cast(pl.Datetime("us")),
            "event_type": _labels(etype, [*EVENT_TYPES, "teleport"]),
            "category": _labels(ev.cat[sl], CATEGORIES),
            "duration_s": pl.Series(ev.duration[sl], dtype=pl.Int32),
            "device": _labels(ev.device[sl], DEVICES),
        }
    )


def _write_csv(df: pl.DataFrame, path: Path, *, compress: bool = False) -> None:
    """CSV with header, ``\\n`` line ends, minimal quoting, nulls as empty fields.

    Gzip output has a zero mtime and no file name so it is byte-identical between runs.
    """
    buf = io.BytesIO()
    df.write_csv(buf)
    data = buf.getvalue()
    if compress:
        data = gzip.compress(data, compresslevel=1, mtime=0)
    path.write_bytes(data)


def _period_bounds(cal: _Calendar, file_idx: np.ndarray) -> list[tuple[_Period, int, int]]:
    """Each period with its contiguous row range (rows are in time order)."""
    bounds = np.searchsorted(file_idx, np.arange(len(cal.periods) + 1), side="left")
    return [(p, int(bounds[i]), int(bounds[i + 1])) for i, p in enumerate(cal.periods)]


def _write_text_source(
    folder: Path,
    stem: str,
    cal: _Calendar,
    file_idx: np.ndarray,
    build: Callable[[int, int], pl.DataFrame],
    plan: _DefectPlan,
    mutations: dict[str, tuple[pl.Expr, ...]],
    *,
    gzip_monthly: bool = False,
) -> tuple[list[Path], int]:
    """One CSV per period (header-only when empty); returns the paths and the rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, rows = [], 0
    for period, start, stop in _period_bounds(cal, file_idx):
        df = _apply_text_defects(build(start, stop), *plan.within(start, stop), mutations)
        gz = gzip_monthly and period.gzip_orders
        path = folder / f"{stem}_{period.key}.csv{'.gz' if gz else ''}"
        _write_csv(df, path, compress=gz)
        paths.append(path)
        rows += df.height
    return paths, rows


def _customers_frame(
    rng: np.random.Generator,
    people: _People,
    orders: _Orders,
    ev: _Events,
    fb: _Feedback,
    cust_labels: pl.Series,
    cal: _Calendar,
) -> pl.DataFrame:
    """One row per customer; signup a little before the first activity (or any time, if none)."""
    n = len(people.arch)
    big = np.iinfo(np.int64).max
    first_day = np.full(n, big)
    np.minimum.at(first_day, orders.cust, orders.sec // _DAY)
    known = (ev.session_cust >= 0) & (ev.session_cust < n)
    np.minimum.at(first_day, ev.session_cust[known], ev.session_start[known] // _DAY)
    np.minimum.at(first_day, fb.cust, fb.sec // _DAY)
    is_new = people.arch == _ARCH["new"]
    lead = 1 + rng.exponential(np.where(is_new, 3.0, 90.0)).astype(np.int64)
    never = first_day == big
    signup_day = np.where(never, rng.integers(-730, cal.last_day + 1, size=n), first_day - lead)
    signup_sec = signup_day * _DAY + _time_of_day(rng, n)

    region_names = list(REGIONS)
    region = rng.choice(len(region_names), size=n, p=_norm(_REGION_WEIGHTS))
    sizes = np.array([len(c) for c in REGIONS.values()])
    offsets = np.cumsum(sizes) - sizes
    city = offsets[region] + (rng.random(n) * sizes[region]).astype(np.int64)
    cities = [c for cs in REGIONS.values() for c in cs]
    source = np.where(
        people.pref_channel == 1,
        rng.choice(5, size=n, p=[0.15, 0.10, 0.10, 0.15, 0.50]),
        rng.choice(5, size=n, p=[0.32, 0.27, 0.16, 0.17, 0.08]),
    )
    birth = np.clip(np.round(rng.normal(1990, 10, size=n)), 1950, 2008).astype(np.int64)
    birth = np.where(rng.random(n) < 0.04, -1, birth)
    gender = rng.choice(3, size=n, p=[0.52, 0.44, 0.04])
    numbers = np.arange(1, n + 1)
    local = pl.Series(rng.integers(100_000, 1_000_000, size=n)).cast(pl.String)
    domain = _labels(rng.choice(len(_EMAIL_DOMAINS), size=n), _EMAIL_DOMAINS)
    email_null = pl.Series(rng.random(n) < 0.06)
    phone_prefix = _labels(rng.choice(6, size=n), ["130", "136", "139", "150", "186", "188"])
    phone_rest = pl.Series(rng.integers(0, 100_000_000, size=n)).cast(pl.String).str.zfill(8)
    phone_null = pl.Series(rng.random(n) < 0.10)
    surname = _labels(rng.choice(len(_SURNAMES), size=n), _SURNAMES)
    given1 = _labels(rng.choice(len(_GIVEN), size=n), _GIVEN)
    given2 = _labels(np.where(rng.random(n) < 0.6, rng.choice(len(_GIVEN), size=n), -1), _GIVEN)
    frame = pl.DataFrame(
        {
            "customer_id": cust_labels.head(n),
            "signup_ts": _ts_text(signup_sec, cal),
            "region": _labels(region, region_names),
            "city": _labels(city, cities),
            "source_channel": _labels(source, SOURCE_CHANNELS),
            "birth_year": _int_text(birth),
            "gender": _labels(gender, GENDERS),
            "_local": "u" + local + "_" + pl.Series(numbers).cast(pl.String),
            "_domain": domain,
            "_email_null": email_null,
            "_phone": phone_prefix + phone_rest,
            "_phone_null": phone_null,
            "_name": surname + given1 + given2.fill_null(""),
        }
    )
    return frame.select(
        "customer_id",
        "signup_ts",
        "region",
        "city",
        "source_channel",
        "birth_year",
        "gender",
        pl.when(~pl.col("_email_null")).then(pl.col("_local") + "@" + pl.col("_domain")).alias("email"),
        pl.when(~pl.col("_phone_null")).then(pl.col("_phone")).alias("phone"),
        pl.col("_name").alias("name"),
    )
