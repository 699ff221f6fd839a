"""Deterministic synthetic landing-zone data: orders, browsing, feedback and customers.

``generate`` writes the four sources under a landing dir in the layout the pipeline reads by default:
daily files for the last ``daily_days`` days, monthly files for older history (monthly orders files
of even months gzip-compressed), one customers file, and optionally ~0.4 % planted defect rows plus
one wholly bad orders export. Everything is drawn from ``numpy`` Generators seeded by ``seed`` and
built with array operations (no per-row Python loops); outputs are sorted and nothing reads the
clock, so the same arguments give byte-identical files. About 10 order lines and 55 browsing events
are written per customer; 100k customers (~1M lines, ~5.7M events) take well under a minute on two
cores, and files are built one period at a time so memory follows the largest file.

Customers are drawn from archetypes (``ARCHETYPE_SHARES``: loyal, regular, occasional, one-off,
lapsed, new, win-back, at-risk, browse-only, registered-inactive, feedback-only) so that every RFM
segment and lifecycle stage of PRODUCT.md §3 is populated; a few browsing ids (1 per 400 customers)
are unknown to the customer file. Timestamps are naive local business time (Asia/Shanghai),
``YYYY-MM-DD HH:MM:SS`` in CSV and ``timestamp[us]`` in Parquet; money is CNY with two decimals.
A row goes to the file of the period of its (true) timestamp; a defect keeps the row in that file.

Modules, in the order ``generate`` uses them: ``vocabulary`` (columns, labels, archetypes, calendar),
``purchases`` (customers' traits, purchase windows, orders and lines), ``browsing`` (sessions and
events), ``feedback``, ``defects`` (planted defect rows), ``formatting`` and ``frames`` (codes to
text, one file per period). The random draws happen in that order from one Generator, so moving code
between modules never changes the output; changing the order of the draws does.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from segments.sample_data.browsing import _browsing
from segments.sample_data.defects import (
    _BAD_EXPORT_ROWS,
    BROWSING_DEFECTS,
    FEEDBACK_DEFECTS,
    ORDER_DEFECTS,
    _feedback_mutations,
    _order_mutations,
    _plan_defects,
)
from segments.sample_data.feedback import _feedback
from segments.sample_data.frames import (
    _browsing_frame,
    _customer_labels,
    _customers_frame,
    _feedback_frame,
    _orders_frame,
    _period_bounds,
    _write_csv,
    _write_text_source,
)
from segments.sample_data.purchases import _orders, _people, _purchase_segments
from segments.sample_data.vocabulary import (
    ARCHETYPE_SHARES,
    BAD_EXPORT_NAME,
    BROWSING_COLUMNS,
    CATEGORIES,
    CHANNELS,
    CURRENCY,
    CUSTOMER_COLUMNS,
    DEVICES,
    EVENT_TYPES,
    FEEDBACK_COLUMNS,
    FEEDBACK_KINDS,
    GENDERS,
    ORDER_COLUMNS,
    REGIONS,
    SOURCE_CHANNELS,
    STATUSES,
    TS_FORMAT,
    _calendar,
)

__all__ = [
    "ARCHETYPE_SHARES",
    "BAD_EXPORT_NAME",
    "BROWSING_COLUMNS",
    "BROWSING_DEFECTS",
    "CATEGORIES",
    "CHANNELS",
    "CURRENCY",
    "CUSTOMER_COLUMNS",
    "DEVICES",
    "EVENT_TYPES",
    "FEEDBACK_COLUMNS",
    "FEEDBACK_DEFECTS",
    "FEEDBACK_KINDS",
    "GENDERS",
    "ORDER_COLUMNS",
    "ORDER_DEFECTS",
    "REGIONS",
    "SOURCE_CHANNELS",
    "STATUSES",
    "TS_FORMAT",
    "generate",
]

# Browsing sessions generated per block (fixed: part of the deterministic output). Read by ``generate`` at
# call time and passed down, so patching ``segments.sample_data._SESSION_BLOCK`` takes effect.
_SESSION_BLOCK = 500_000


def generate(
    out_dir: Path,
    *,
    customers: int = 10_000,
    days: int = 400,
    end_date: date = date(2026, 11, 21),
    seed: int = 42,
    defects: bool = True,
    daily_days: int = 14,
) -> dict[str, int]:
    """Write synthetic landing files under ``out_dir`` and return row and file counts.

    Layout (relative to ``out_dir``): ``orders/orders_<period>.csv[.gz]``,
    ``browsing/browsing_<period>.parquet``, ``feedback/feedback_<period>.csv`` and
    ``customers/customers.csv``, where ``<period>`` is ``YYYY-MM-DD`` for the last ``daily_days``
    days and ``YYYY-MM`` for older history; every period gets a file (header-only when empty).
    With ``defects=True`` about 0.4 % of rows are planted defects and
    ``orders/orders_bad_export.csv`` (no ``amount`` column) is written.

    Counts: ``customers``, ``orders_lines``, ``browsing_events``, ``feedback_rows`` (rows written to
    the regular files, defect rows included), ``files`` (all files written), ``defect_rows`` (rows
    planted as defects in the regular files) and ``bad_file_rows`` (rows of the bad export).
    Existing files are overwritten; nothing else in ``out_dir`` is touched or removed.
    """
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if daily_days < 0:
        raise ValueError(f"daily_days must be >= 0, got {daily_days}")
    out_dir = Path(out_dir)
    cal = _calendar(end_date, days, daily_days)
    rng = np.random.default_rng(seed)

    people = _people(rng, customers)
    segments = _purchase_segments(rng, people.arch, cal.last_day)
    orders = _orders(rng, people, segments, cal)
    events = _browsing(rng, people, segments, orders, cal, _SESSION_BLOCK)
    fb = _feedback(rng, people, orders, cal)
    n_ghost = int(events.session_cust.max()) + 1 - customers if len(events.session_cust) else 0
    cust_labels = _customer_labels(customers, max(0, n_ghost))
    # Separate streams for formatting and defects so changing one never reshuffles the data.
    defect_rng = np.random.default_rng([seed, 1])
    fmt_rng = np.random.default_rng([seed, 2])

    files: list[Path] = []

    # Orders (+ the wholly bad export, a copy of the last few lines without the amount column).
    n_lines = len(orders.l_sec)
    order_plan = _plan_defects(defect_rng, n_lines, len(ORDER_DEFECTS), defects)
    paths, order_rows = _write_text_source(
        out_dir / "orders",
        "orders",
        cal,
        cal.file_of(orders.l_sec),
        lambda start, stop: _orders_frame(orders, cust_labels, cal, start, stop),
        order_plan,
        _order_mutations(),
        gzip_monthly=True,
    )
    files += paths
    bad_rows = 0
    if defects:
        bad_export = _orders_frame(orders, cust_labels, cal, max(0, n_lines - _BAD_EXPORT_ROWS), n_lines)
        _write_csv(bad_export.drop("amount"), out_dir / "orders" / BAD_EXPORT_NAME)
        files.append(out_dir / "orders" / BAD_EXPORT_NAME)
        bad_rows = bad_export.height

    # Browsing.
    browsing_plan = _plan_defects(defect_rng, len(events.sec), len(BROWSING_DEFECTS), defects)
    (out_dir / "browsing").mkdir(parents=True, exist_ok=True)
    for period, start, stop in _period_bounds(cal, cal.file_of(events.sec)):
        path = out_dir / "browsing" / f"browsing_{period.key}.parquet"
        frame = _browsing_frame(events, cust_labels, cal, start, stop, browsing_plan)
        frame.write_parquet(path, compression="zstd", statistics=True)
        files.append(path)

    # Feedback.
    feedback_plan = _plan_defects(defect_rng, len(fb.sec), len(FEEDBACK_DEFECTS), defects)
    paths, feedback_rows = _write_text_source(
        out_dir / "feedback",
        "feedback",
        cal,
        cal.file_of(fb.sec),
        lambda start, stop: _feedback_frame(fb, cust_labels, cal, start, stop),
        feedback_plan,
        _feedback_mutations(),
    )
    files += paths

    # Customers.
    cdf = _customers_frame(fmt_rng, people, orders, events, fb, cust_labels, cal)
    (out_dir / "customers").mkdir(parents=True, exist_ok=True)
    _write_csv(cdf, out_dir / "customers" / "customers.csv")
    files.append(out_dir / "customers" / "customers.csv")

    return {
        "customers": cdf.height,
        "orders_lines": order_rows,
        "browsing_events": len(events.sec),
        "feedback_rows": feedback_rows,
        "files": len(files),
        "defect_rows": len(order_plan.pos) + len(browsing_plan.pos) + len(feedback_plan.pos),
        "bad_file_rows": bad_rows,
    }
