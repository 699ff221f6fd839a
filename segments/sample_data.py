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
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "ARCHETYPE_SHARES",
    "BROWSING_COLUMNS",
    "BROWSING_DEFECTS",
    "CUSTOMER_COLUMNS",
    "FEEDBACK_COLUMNS",
    "FEEDBACK_DEFECTS",
    "ORDER_COLUMNS",
    "ORDER_DEFECTS",
    "generate",
]

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------
ORDER_COLUMNS = (
    "order_id",
    "line_id",
    "customer_id",
    "order_ts",
    "amount",
    "quantity",
    "unit_price",
    "status",
    "channel",
    "store_id",
    "category",
    "product_id",
    "currency",
)
BROWSING_COLUMNS = (
    "customer_id",
    "session_id",
    "event_ts",
    "event_type",
    "category",
    "duration_s",
    "device",
)
FEEDBACK_COLUMNS = ("feedback_id", "customer_id", "submitted_ts", "kind", "rating", "nps", "comment")
CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_ts",
    "region",
    "city",
    "source_channel",
    "birth_year",
    "gender",
    "email",
    "phone",
    "name",
)

CURRENCY = "CNY"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
BAD_EXPORT_NAME = "orders_bad_export.csv"

STATUSES = ("completed", "cancelled", "refunded")
CHANNELS = ("online", "offline", "app")
CATEGORIES = (
    "apparel",
    "beauty",
    "electronics",
    "grocery",
    "home",
    "sports",
    "toys",
    "books",
    "shoes",
    "jewelry",
)
EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "login",
)
DEVICES = ("mobile", "desktop", "tablet")
FEEDBACK_KINDS = ("survey", "review", "complaint", "support")
SOURCE_CHANNELS = ("organic", "ads", "referral", "social", "offline_store")
GENDERS = ("F", "M", "U")
REGIONS: dict[str, tuple[str, ...]] = {
    "华东": ("上海", "杭州", "南京", "苏州", "宁波"),
    "华北": ("北京", "天津", "石家庄"),
    "华南": ("广州", "深圳", "厦门"),
    "华中": ("武汉", "长沙", "郑州"),
    "西南": ("成都", "重庆", "昆明"),
    "西北": ("西安", "兰州"),
    "东北": ("沈阳", "哈尔滨", "大连"),
}
_REGION_WEIGHTS = (0.32, 0.18, 0.20, 0.12, 0.10, 0.04, 0.04)
_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭")
_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "婷", "强", "军", "丽", "鹏", "霞", "明", "涛")
_EMAIL_DOMAINS = ("example.com", "example.cn", "example.net")

# Comment pools by sentiment; some carry ASCII commas and double quotes to exercise CSV quoting.
_COMMENTS: dict[str, tuple[str, ...]] = {
    "positive": (
        "质量很好，会回购",
        "物流很快，包装完好",
        "客服很耐心",
        "性价比高",
        "非常满意!",
        "Great quality, will buy again",
        "Fast delivery, well packed",
        'Love it, "exactly" as described',
        "Nice product, good price, fast shipping",
    ),
    "neutral": (
        "还可以",
        "一般般",
        "包装简单, 东西还行",
        "请问什么时候发货？",
        "OK",
        "Delivery was fine, product average",
        'Question about "member points"',
        "How do I change my address?",
    ),
    "negative": (
        "物流太慢了",
        "质量一般，和描述不符",
        "尺码偏小，退货麻烦",
        "客服不回复,很失望",
        "Arrived damaged, want a refund",
        'Said "next day delivery", took a week',
        "Wrong size, again",
        "Too expensive for what you get",
    ),
}

# Customer archetypes and their share of customers (sums to 1).
ARCHETYPE_SHARES: dict[str, float] = {
    "loyal": 0.10,  # frequent high spenders, order every few weeks, recent
    "regular": 0.14,  # a handful of orders, last one within 90 days
    "occasional": 0.07,  # a few orders anywhere in history
    "one_off": 0.12,  # exactly one order, at any age
    "lapsed": 0.10,  # bought a lot, nothing for more than 180 days
    "new": 0.06,  # first purchase within the last 30 days
    "winback": 0.05,  # bought, gap > 180 days, bought again within the last 90 days
    "at_risk": 0.08,  # last purchase 91-180 days ago
    "browse_only": 0.15,  # browsing, never buys
    "inactive": 0.10,  # customer record only
    "feedback_only": 0.03,  # feedback (questions, surveys) but never buys or browses
}
_ARCH = {name: i for i, name in enumerate(ARCHETYPE_SHARES)}

_DEFECT_RATE = 0.004
_BAD_EXPORT_ROWS = 5
_UNPARSEABLE_TS = "2026-13-45 25:00:00"
_FUTURE_YEAR = 2031

_DAY = 86_400
_SESSION_BLOCK = 500_000  # browsing sessions generated per block (fixed: part of the deterministic output)
_N_STORES = 40
_PRODUCTS_PER_CATEGORY = 200
# Log-normal unit price per category (log of yuan): (mu, sigma). Heavy tails come from sigma.
_PRICE_LOGNORMAL = (
    (5.0, 0.6),
    (5.2, 0.7),
    (7.0, 0.9),
    (3.5, 0.6),
    (5.3, 0.8),
    (5.3, 0.7),
    (4.6, 0.6),
    (3.8, 0.4),
    (5.8, 0.5),
    (7.2, 1.0),
)
_CATEGORY_WEIGHTS = np.array([0.16, 0.12, 0.08, 0.16, 0.11, 0.08, 0.07, 0.08, 0.09, 0.05])
_PREMIUM_WEIGHTS = np.array([0.12, 0.14, 0.20, 0.06, 0.08, 0.06, 0.03, 0.03, 0.12, 0.16])
# Shopping hours: quiet at night, peaks late morning and evening.
_HOUR_WEIGHTS = np.array([2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 4, 6, 8, 9, 9, 8, 7, 7, 7, 8, 9, 10, 11, 11, 8, 4], dtype=float)
_HOUR_WEIGHTS /= _HOUR_WEIGHTS.sum()


def _norm(weights: tuple[float, ...] | list[float] | np.ndarray) -> np.ndarray:
    """Weights as probabilities summing to 1."""
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


# ---------------------------------------------------------------------------------------------
# Calendar: which file (period) each day belongs to
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Period:
    """One delivery file period: a day (daily feed) or a month (history)."""

    key: str  # "2026-11-21" or "2026-11"
    daily: bool
    gzip_orders: bool  # monthly orders file of an even month is delivered as .csv.gz


@dataclass(frozen=True)
class _Calendar:
    """Day index 0 is ``start``; the last day index is ``last_day`` (= ``end_date``)."""

    start: date
    last_day: int
    periods: tuple[_Period, ...]
    period_of_day: np.ndarray  # day index -> index into ``periods``
    epoch_s: int  # seconds from 1970-01-01 to ``start`` 00:00

    @property
    def end_s(self) -> int:
        """Last second of the data span, relative to ``start``."""
        return (self.last_day + 1) * _DAY - 1

    def file_of(self, sec: np.ndarray) -> np.ndarray:
        """Period index of each timestamp (seconds from ``start``)."""
        return self.period_of_day[sec // _DAY]


def _calendar(end_date: date, days: int, daily_days: int) -> _Calendar:
    """Lay out the data span into daily and monthly periods (a loop over days, not rows)."""
    start = end_date - timedelta(days=days - 1)
    first_daily = max(0, days - daily_days)
    periods: list[_Period] = []
    period_of_day = np.empty(days, dtype=np.int64)
    for d in range(days):
        day = start + timedelta(days=d)
        if d >= first_daily:
            period = _Period(day.isoformat(), daily=True, gzip_orders=False)
        else:
            period = _Period(f"{day:%Y-%m}", daily=False, gzip_orders=day.month % 2 == 0)
        if not periods or periods[-1] != period:
            periods.append(period)
        period_of_day[d] = len(periods) - 1
    epoch_s = (start - date(1970, 1, 1)).days * _DAY
    return _Calendar(start, days - 1, tuple(periods), period_of_day, epoch_s)


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day, following shopping hours."""
    return rng.choice(24, size=n, p=_HOUR_WEIGHTS) * 3600 + rng.integers(0, 3600, size=n)


# ---------------------------------------------------------------------------------------------
# Customers and purchases
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _People:
    """Per-customer latent traits (index i is customer number i + 1)."""

    arch: np.ndarray
    fav_cat: np.ndarray
    pref_channel: np.ndarray
    home_store: np.ndarray
    pref_device: np.ndarray
    unhappy: np.ndarray


def _people(rng: np.random.Generator, n: int) -> _People:
    """Assign archetypes (exact shares, shuffled) and per-customer preferences."""
    shares = np.array(list(ARCHETYPE_SHARES.values()))
    counts = np.floor(shares * n).astype(np.int64)
    counts[: n - counts.sum()] += 1  # remainder to the first archetypes, deterministically
    arch = rng.permutation(np.repeat(np.arange(len(shares)), counts))
    loyal = arch == _ARCH["loyal"]
    fav_cat = np.where(
        loyal,
        rng.choice(len(CATEGORIES), size=n, p=_norm(_PREMIUM_WEIGHTS)),
        rng.choice(len(CATEGORIES), size=n, p=_norm(_CATEGORY_WEIGHTS)),
    )
    pref_channel = rng.choice(3, size=n, p=[0.45, 0.25, 0.30])
    pref_device = np.where(
        pref_channel == 2,
        rng.choice(3, size=n, p=[0.85, 0.0, 0.15]),
        rng.choice(3, size=n, p=[0.55, 0.35, 0.10]),
    )
    unhappy_rate = np.full(len(shares), 0.08)
    for name, rate in (("lapsed", 0.30), ("at_risk", 0.25), ("winback", 0.15), ("one_off", 0.15)):
        unhappy_rate[_ARCH[name]] = rate
    unhappy = rng.random(n) < unhappy_rate[arch]
    home_store = rng.integers(0, _N_STORES, size=n)
    return _People(arch, fav_cat, pref_channel, home_store, pref_device, unhappy)


_Segments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # customer, first day, last day, n


def _purchase_segments(rng: np.random.Generator, arch: np.ndarray, last_day: int) -> _Segments:
    """Purchase windows per customer: (customer, first day, last day, number of orders).

    Orders are drawn uniformly inside each window; the windows encode the archetypes (e.g. a
    win-back customer has an old window ending >= 272 days ago and a recent one in the last 90 days,
    so the gap is always > 180 days). Windows falling outside a short history are dropped.
    """
    d = last_day
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(cust: np.ndarray, lo: object, hi: object, n: object) -> None:
        m = len(cust)
        parts.append(
            (
                cust,
                np.broadcast_to(np.asarray(lo, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(hi, dtype=np.int64), (m,)),
                np.broadcast_to(np.asarray(n, dtype=np.int64), (m,)),
            )
        )

    def members(name: str) -> tuple[np.ndarray, int]:
        c = np.flatnonzero(arch == _ARCH[name])
        return c, len(c)

    c, m = members("loyal")
    lo = rng.integers(0, max(1, d // 2 + 1), size=m)
    gap_days = rng.uniform(14, 35, size=m)
    add(c, lo, d, np.maximum(2, rng.poisson((d - lo + 1) / gap_days)))
    add(c, d - 20, d, 1)  # always a recent order
    c, m = members("regular")
    add(c, rng.integers(0, max(1, d - 119), size=m), d, 1 + rng.poisson(5, size=m))
    add(c, d - 89, d, 1)
    c, m = members("occasional")
    add(c, 0, d, 2 + rng.poisson(1.5, size=m))
    c, m = members("one_off")
    add(c, 0, d, 1)
    c, m = members("lapsed")
    add(c, rng.integers(0, max(1, d - 181 - 119), size=m), d - 181, 3 + rng.poisson(7, size=m))
    c, m = members("new")
    add(c, d - 29, d, 1 + (rng.random(m) < 0.3))
    c, m = members("winback")
    add(c, rng.integers(0, max(1, d - 272 - 59), size=m), d - 272, 2 + rng.poisson(3, size=m))
    add(c, d - 89, d, 1 + rng.poisson(0.7, size=m))
    c, m = members("at_risk")
    add(c, rng.integers(0, max(1, d - 200), size=m), d - 91, rng.poisson(4, size=m))
    add(c, d - 180, d - 91, 1)  # the last purchase is 91-180 days ago

    cust, lo, hi, n = (np.concatenate(x) for x in zip(*parts, strict=True))
    lo = np.clip(lo, 0, None)
    hi = np.clip(hi, None, d)
    keep = (hi >= lo) & (n > 0)
    return cust[keep], lo[keep], hi[keep], n[keep]


@dataclass(frozen=True)
class _Orders:
    """Order grain (index = order number - 1, in time order) and line grain arrays."""

    cust: np.ndarray
    sec: np.ndarray
    channel: np.ndarray
    store: np.ndarray  # -1 when not offline
    first_cat: np.ndarray
    # lines (sales and refunds), sorted by (time, order, line)
    l_order: np.ndarray
    l_line: np.ndarray
    l_sec: np.ndarray
    l_qty: np.ndarray
    l_unit: np.ndarray  # cents
    l_amount: np.ndarray  # cents
    l_status: np.ndarray
    l_product: np.ndarray
    l_cat: np.ndarray


def _catalog(rng: np.random.Generator) -> np.ndarray:
    """Unit price in cents of every product (category-major), log-normal per category."""
    mu = np.repeat([p[0] for p in _PRICE_LOGNORMAL], _PRODUCTS_PER_CATEGORY)
    sigma = np.repeat([p[1] for p in _PRICE_LOGNORMAL], _PRODUCTS_PER_CATEGORY)
    yuan = np.clip(np.exp(rng.normal(mu, sigma)), 1, 200_000)
    return np.round(yuan).astype(np.int64) * 100 - 10  # shelf prices like 199.90


def _orders(rng: np.random.Generator, people: _People, segments: _Segments, cal: _Calendar) -> _Orders:
    """Orders from the purchase windows, their lines, cancellations and later refund lines."""
    seg_cust, seg_lo, seg_hi, seg_n = segments
    cust = np.repeat(seg_cust, seg_n)
    n_o = len(cust)
    day = np.repeat(seg_lo, seg_n) + (rng.random(n_o) * np.repeat(seg_hi - seg_lo + 1, seg_n)).astype(np.int64)
    sec = day * _DAY + _time_of_day(rng, n_o)
    order = np.lexsort((cust, sec))
    cust, sec = cust[order], sec[order]

    channel = np.where(rng.random(n_o) < 0.75, people.pref_channel[cust], rng.choice(3, size=n_o))
    store = np.where(
        channel == 1,
        np.where(rng.random(n_o) < 0.85, people.home_store[cust], rng.integers(0, _N_STORES, size=n_o)),
        -1,
    )
    cancelled = rng.random(n_o) < 0.03
    loyal = people.arch[cust] == _ARCH["loyal"]
    n_lines = 1 + np.where(
        loyal,
        rng.choice(5, size=n_o, p=[0.30, 0.30, 0.20, 0.12, 0.08]),
        rng.choice(5, size=n_o, p=[0.50, 0.25, 0.13, 0.08, 0.04]),
    )

    # Lines of the sales.
    l_order = np.repeat(np.arange(n_o), n_lines)
    n_l = len(l_order)
    first_line = np.cumsum(n_lines) - n_lines
    l_line = np.arange(n_l) - np.repeat(first_line, n_lines) + 1
    l_cust = cust[l_order]
    l_cat = np.where(
        rng.random(n_l) < 0.55,
        people.fav_cat[l_cust],
        rng.choice(len(CATEGORIES), size=n_l, p=_norm(_CATEGORY_WEIGHTS)),
    )
    rank = (_PRODUCTS_PER_CATEGORY * rng.random(n_l) ** 3).astype(np.int64)  # popular products first
    l_product = l_cat * _PRODUCTS_PER_CATEGORY + rank
    discount = rng.choice(np.array([100, 95, 90, 80]), size=n_l, p=[0.70, 0.10, 0.12, 0.08])
    l_unit = np.maximum(1, (_catalog(rng)[l_product] * discount + 50) // 100)
    l_qty = np.minimum(rng.geometric(0.7, size=n_l), 6) + np.where(loyal[l_order], rng.poisson(0.3, n_l), 0)
    l_amount = l_qty * l_unit
    l_status = np.where(cancelled[l_order], 1, 0)
    l_sec = sec[l_order]

    # Refunds: ~4 % of completed orders, one line (part or all of it), 1-30 days later, never
    # after the end of the data span (those simply have not happened yet).
    cand = np.flatnonzero(~cancelled)
    r_order = cand[rng.random(len(cand)) < 0.04]
    m = len(r_order)
    r_src = first_line[r_order] + (rng.random(m) * n_lines[r_order]).astype(np.int64)
    r_sec = sec[r_order] + rng.integers(_DAY, 30 * _DAY, size=m)
    ok = r_sec <= cal.end_s
    r_order, r_src, r_sec = r_order[ok], r_src[ok], r_sec[ok]
    m = len(r_order)
    src_qty, src_unit, src_amount = l_qty[r_src], l_unit[r_src], l_amount[r_src]
    full = rng.random(m) < 0.5
    part_qty = 1 + (rng.random(m) * np.maximum(src_qty - 1, 1)).astype(np.int64)  # 1..q-1
    price_adjust = np.maximum(1, (src_amount * rng.uniform(0.2, 0.9, size=m)).astype(np.int64))
    r_qty = np.where(full, src_qty, np.where(src_qty > 1, part_qty, 1))
    r_amount = np.where(full, src_amount, np.where(src_qty > 1, part_qty * src_unit, price_adjust))

    cat_all = np.concatenate([l_cat, l_cat[r_src]])
    o_idx = np.concatenate([l_order, r_order])
    line_all = np.concatenate([l_line, n_lines[r_order] + 1])
    sec_all = np.concatenate([l_sec, r_sec])
    srt = np.lexsort((line_all, o_idx, sec_all))
    return _Orders(
        cust=cust,
        sec=sec,
        channel=channel,
        store=store,
        first_cat=l_cat[first_line],
        l_order=o_idx[srt],
        l_line=line_all[srt],
        l_sec=sec_all[srt],
        l_qty=np.concatenate([l_qty, r_qty])[srt],
        l_unit=np.concatenate([l_unit, src_unit])[srt],
        l_amount=np.concatenate([l_amount, r_amount])[srt],
        l_status=np.concatenate([l_status, np.full(m, 2)])[srt],
        l_product=np.concatenate([l_product, l_product[r_src]])[srt],
        l_cat=cat_all[srt],
    )


# ---------------------------------------------------------------------------------------------
# Browsing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Events:
    """Browsing events in file order (time, then session layout); cust -1 = anonymous."""

    cust: np.ndarray
    session: np.ndarray  # session number (0-based, in order of session start)
    sec: np.ndarray
    etype: np.ndarray
    cat: np.ndarray  # -1 = no category
    duration: np.ndarray
    device: np.ndarray
    session_start: np.ndarray  # per session (clipped at 0), for signup dates
    session_cust: np.ndarray
    session_count: int


def _browsing(
    rng: np.random.Generator, people: _People, segments: _Segments, orders: _Orders, cal: _Calendar
) -> _Events:
    """Sessions tied to purchases (checkout just before online orders), buyers' and browsers' own
    sessions, anonymous traffic (~15 % of events) and a few ids unknown to the customer file."""
    d = cal.last_day
    n_cust = len(people.arch)
    # kinds: 0 identified, 1 checkout before an order, 2 anonymous
    s_cust: list[np.ndarray] = []
    s_kind: list[np.ndarray] = []
    s_start: list[np.ndarray] = []
    s_order: list[np.ndarray] = []

    def windowed(cust: np.ndarray, lo: np.ndarray, hi: np.ndarray, count: np.ndarray) -> None:
        c = np.repeat(cust, count)
        lo_r = np.repeat(lo, count)
        day = lo_r + (rng.random(len(c)) * (np.repeat(hi, count) - lo_r + 1)).astype(np.int64)
        s_cust.append(c)
        s_kind.append(np.zeros(len(c), dtype=np.int64))
        s_start.append(day * _DAY + _time_of_day(rng, len(c)))
        s_order.append(np.full(len(c), -1))

    # 1. Checkout sessions right before most online/app orders.
    co = np.flatnonzero((orders.channel != 1) & (rng.random(len(orders.cust)) < 0.85))
    s_cust.append(orders.cust[co])
    s_kind.append(np.ones(len(co), dtype=np.int64))
    s_start.append(np.zeros(len(co), dtype=np.int64))  # set once the session length is known
    s_order.append(co)
    # 2. Buyers browse more: sessions around their purchase windows, about one per order.
    seg_cust, seg_lo, seg_hi, seg_n = segments
    count = rng.poisson(1.0 * seg_n + 0.3)
    windowed(seg_cust, np.clip(seg_lo - 14, 0, None), np.clip(seg_hi + 3, None, d), count)
    # 3. Browse-only customers: several sessions, never a checkout.
    bo = np.flatnonzero(people.arch == _ARCH["browse_only"])
    lo = rng.integers(0, max(1, d - 6), size=len(bo))
    windowed(bo, lo, np.full(len(bo), d), 1 + rng.poisson(5, size=len(bo)))
    # 4. Ids the customer file does not know (another system's members).
    n_ghost = max(1, n_cust // 400)
    ghosts = np.arange(n_cust, n_cust + n_ghost)
    windowed(ghosts, np.zeros(n_ghost, np.int64), np.full(n_ghost, d), 1 + rng.poisson(2, size=n_ghost))

    kind = np.concatenate(s_kind)
    expected_known = float((np.where(kind == 1, 3, 2) + 3.0).sum())  # mean events per session
    # 5. Anonymous sessions: sized so that ~15 % of all events are anonymous.
    n_anon = round(expected_known * 0.15 / 0.85 / 3.0)
    anon_day = rng.integers(0, d + 1, size=n_anon)
    s_cust.append(np.full(n_anon, -1))
    s_kind.append(np.full(n_anon, 2))
    s_start.append(anon_day * _DAY + _time_of_day(rng, n_anon))
    s_order.append(np.full(n_anon, -1))

    cust = np.concatenate(s_cust)
    kind = np.concatenate(s_kind)
    start = np.concatenate(s_start)
    s_ord = np.concatenate(s_order)
    n_s = len(cust)
    n_ev = np.where(kind == 1, 3, np.where(kind == 2, 1, 2)) + rng.poisson(np.where(kind == 2, 2.0, 3.0), size=n_s)
    known = (cust >= 0) & (cust < n_cust)
    s_device = np.where(
        known & (rng.random(n_s) < 0.8),
        people.pref_device[np.clip(cust, 0, n_cust - 1)],
        rng.choice(3, size=n_s, p=[0.6, 0.3, 0.1]),
    )
    s_device = np.where((kind == 1) & (orders.channel[np.clip(s_ord, 0, None)] == 2), 0, s_device)
    s_cat = np.where(
        known & (rng.random(n_s) < 0.7),
        people.fav_cat[np.clip(cust, 0, n_cust - 1)],
        rng.choice(len(CATEGORIES), size=n_s, p=_norm(_CATEGORY_WEIGHTS)),
    )
    s_cat = np.where(kind == 1, orders.first_cat[np.clip(s_ord, 0, None)], s_cat)

    # Events, generated in fixed-size blocks of sessions so memory stays bounded at any scale.
    order_sec = np.where(kind == 1, orders.sec[np.maximum(s_ord, 0)], 0)
    blocks = []
    for lo_s in range(0, n_s, _SESSION_BLOCK):
        hi_s = min(lo_s + _SESSION_BLOCK, n_s)
        block = _session_events(
            rng,
            lo_s,
            kind[lo_s:hi_s],
            n_ev[lo_s:hi_s],
            start[lo_s:hi_s],
            s_cat[lo_s:hi_s],
            order_sec[lo_s:hi_s],
            cal.end_s,
        )
        start[lo_s:hi_s] = block.pop()
        blocks.append(block)
    e_sess, sec, etype, cat, duration = (np.concatenate(x) for x in zip(*blocks, strict=True))
    del blocks
    # File order: by time, then by position in the event layout (session, then position in it).
    srt = np.argsort(sec, kind="stable")  # stable: ties keep the layout order
    e_sess, sec, etype, cat, duration = (x[srt] for x in (e_sess, sec, etype, cat, duration))
    del srt
    # Session ids grow with the session start time.
    rank_of_session = np.empty(n_s, dtype=np.int32)
    rank_of_session[np.argsort(start * n_s + np.arange(n_s))] = np.arange(n_s, dtype=np.int32)
    return _Events(
        cust=cust.astype(np.int32)[e_sess],
        session=rank_of_session[e_sess],
        sec=sec,
        etype=etype,
        cat=cat,
        duration=duration,
        device=s_device.astype(np.int8)[e_sess],
        session_start=np.maximum(start, 0),
        session_cust=cust,
        session_count=n_s,
    )


def _session_events(
    rng: np.random.Generator,
    first_session: int,
    kind: np.ndarray,
    n_ev: np.ndarray,
    start: np.ndarray,
    s_cat: np.ndarray,
    order_sec: np.ndarray,
    end_s: int,
) -> list[np.ndarray]:
    """Events of a block of sessions, laid out session by session, kept within the data span.

    Returns compact arrays ``[session, sec, type, category, duration, session_start]``; checkout
    sessions get their start here, so that their checkout lands a few minutes before the order.
    """
    n_s = len(kind)
    e_sess = np.repeat(np.arange(n_s), n_ev)
    n_e = len(e_sess)
    first = np.cumsum(n_ev) - n_ev
    last = first + n_ev - 1
    etype = rng.choice(5, size=n_e, p=[0.25, 0.42, 0.15, 0.12, 0.06])  # page/product/search/cart
    opener = np.where(rng.random(n_s) < 0.25, 6, 0)  # login or landing page
    etype[first] = np.where(kind == 2, np.where(rng.random(n_s) < 0.3, 2, 0), opener)
    co = kind == 1
    etype[last[co] - 1] = 3  # add_to_cart, then checkout
    etype[last[co]] = 5
    duration = np.minimum(rng.lognormal(3.0, 1.0, size=n_e), 3600).astype(np.int64)
    is_login, is_checkout = etype == 6, etype == 5
    duration[is_login] = rng.integers(1, 10, size=int(is_login.sum()))
    duration[is_checkout] = rng.integers(5, 60, size=int(is_checkout.sum()))
    step = duration + rng.integers(1, 20, size=n_e)  # the event, then a short pause
    excl = np.cumsum(step) - step
    offset = excl - np.repeat(excl[first], n_ev)
    co_start = order_sec - (excl[last] - excl[first]) - rng.integers(10, 300, size=n_s)
    start = np.where(co, co_start, start)
    sec = np.repeat(start, n_ev) + offset
    cat = np.repeat(s_cat, n_ev)
    other = rng.random(n_e) >= 0.75
    cat[other] = rng.choice(len(CATEGORIES), size=int(other.sum()))
    cat[is_login | is_checkout] = -1
    keep = (sec >= 0) & (sec <= end_s)
    return [
        (e_sess[keep] + first_session).astype(np.int32),
        sec[keep],
        etype[keep].astype(np.int8),
        cat[keep].astype(np.int8),
        duration[keep].astype(np.int32),
        start,
    ]


# ---------------------------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Feedback:
    """Feedback rows sorted by time; rating/nps -1 = empty."""

    cust: np.ndarray
    sec: np.ndarray
    kind: np.ndarray
    rating: np.ndarray
    nps: np.ndarray
    comment: np.ndarray  # index into the flat comment list, -1 = empty


def _feedback(rng: np.random.Generator, people: _People, orders: _Orders, cal: _Calendar) -> _Feedback:
    """Feedback after orders (unhappy customers write more, and complain), plus feedback-only
    prospects asking questions or answering surveys."""
    unhappy_o = people.unhappy[orders.cust]
    per_order = rng.poisson(np.where(unhappy_o, 0.35, 0.18))
    src = np.repeat(np.arange(len(orders.cust)), per_order)
    cust = orders.cust[src]
    sec = orders.sec[src] + rng.integers(3600, 14 * _DAY, size=len(src))
    fo = np.flatnonzero(people.arch == _ARCH["feedback_only"])
    fo_cust = np.repeat(fo, 1 + rng.poisson(0.8, size=len(fo)))
    fo_sec = rng.integers(0, cal.end_s + 1, size=len(fo_cust))
    buyer = np.concatenate([np.ones(len(cust), bool), np.zeros(len(fo_cust), bool)])
    cust = np.concatenate([cust, fo_cust])
    sec = np.concatenate([sec, fo_sec])
    keep = sec <= cal.end_s
    cust, sec, buyer = cust[keep], sec[keep], buyer[keep]
    srt = np.lexsort((cust, sec))
    cust, sec, buyer = cust[srt], sec[srt], buyer[srt]
    n = len(cust)
    unhappy = people.unhappy[cust]

    kind = np.where(
        unhappy,
        rng.choice(4, size=n, p=[0.20, 0.25, 0.35, 0.20]),
        rng.choice(4, size=n, p=[0.35, 0.50, 0.05, 0.10]),
    )
    kind = np.where(buyer, kind, rng.choice(4, size=n, p=[0.45, 0.0, 0.10, 0.45]))
    u = rng.random(n)
    has_rating = np.choose(kind, [u < 0.5, u < 1.0, u < 0.3, u < 0.4])
    rating = 1 + np.where(
        unhappy | (kind == 2),
        rng.choice(5, size=n, p=[0.30, 0.30, 0.25, 0.10, 0.05]),
        rng.choice(5, size=n, p=[0.02, 0.03, 0.10, 0.35, 0.50]),
    )
    rating = np.where(has_rating, rating, -1)
    v = rng.random(n)
    has_nps = np.choose(kind, [v < 0.9, v < 0.05, v < 0.0, v < 0.0])
    nps = np.where(
        unhappy,
        rng.choice(11, size=n, p=_norm([6, 6, 7, 8, 9, 10, 10, 6, 4, 2, 1])),
        rng.choice(11, size=n, p=_norm([1, 1, 1, 1, 1, 2, 3, 8, 14, 18, 20])),
    )
    nps = np.where(has_nps, nps, -1)
    w = rng.random(n)
    has_comment = np.choose(kind, [w < 0.3, w < 0.8, w < 1.0, w < 0.9])
    has_comment |= (rating < 0) & (nps < 0)  # the contract needs one of rating, nps, comment
    # Sentiment of the comment: 0 positive, 1 neutral, 2 negative.
    sentiment = np.where(unhappy, 2, 1)
    sentiment = np.where(nps >= 0, np.where(nps >= 9, 0, np.where(nps <= 6, 2, 1)), sentiment)
    sentiment = np.where(rating >= 0, np.where(rating >= 4, 0, np.where(rating <= 2, 2, 1)), sentiment)
    sentiment = np.where(kind == 2, 2, sentiment)
    sizes = np.array([len(v) for v in _COMMENTS.values()])
    offsets = np.cumsum(sizes) - sizes
    comment = offsets[sentiment] + (rng.random(n) * sizes[sentiment]).astype(np.int64)
    comment = np.where(has_comment, comment, -1)
    return _Feedback(cust, sec, kind, rating, nps, comment)


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------
def _labels(codes: np.ndarray, labels: tuple[str, ...] | list[str] | pl.Series) -> pl.Series:
    """String column from integer codes (a gather, no Python objects per row); null where code < 0."""
    idx = pl.Series(codes, dtype=pl.Int64).cast(pl.UInt32, strict=False)  # negative -> null
    table = labels if isinstance(labels, pl.Series) else pl.Series(list(labels), dtype=pl.String)
    return table.gather(idx)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Zero-padded ids like C0000042 for numbers >= 1 (and < 10**width); null where the number is < 1."""
    s = pl.Series("n", numbers, dtype=pl.Int64)
    digits = (pl.when(s >= 1).then(s) + 10**width).cast(pl.String).str.slice(1)  # cheaper than zfill
    return pl.select(pl.format(prefix + "{}", digits).alias("v")).to_series()


def _timestamps(sec: np.ndarray, cal: _Calendar) -> pl.Series:
    """Naive local timestamps (microseconds) from seconds relative to the calendar start."""
    return pl.from_epoch(pl.Series((sec + cal.epoch_s) * 1_000_000), time_unit="us")


def _ts_text(sec: np.ndarray, cal: _Calendar) -> pl.Series:
    """``YYYY-MM-DD HH:MM:SS`` text of timestamps."""
    return _timestamps(sec, cal).dt.strftime(TS_FORMAT)


def _money_expr(cents: pl.Expr) -> pl.Expr:
    """Text with two decimals from integer cents (exact; cents >= 0)."""
    return pl.format("{}.{}", cents // 100, (cents % 100 + 100).cast(pl.String).str.slice(1))


def _money(cents: np.ndarray) -> pl.Series:
    """Two-decimal text from an array of cents."""
    return pl.select(_money_expr(pl.Series(cents, dtype=pl.Int64)).alias("v")).to_series()


def _int_text(values: np.ndarray) -> pl.Series:
    """Integer text; null where the value is negative (the 'empty' marker)."""
    s = pl.Series(values, dtype=pl.Int64)
    return pl.select(pl.when(s >= 0).then(s.cast(pl.String)).alias("v")).to_series()


def _width(minimum: int, largest: int) -> int:
    """Digits for zero-padded ids: at least ``minimum``, more when the numbers need it."""
    return max(minimum, len(str(largest)))


def _defect_count(n_rows: int, n_kinds: int) -> int:
    """About 0.4 % of the rows, at least one per kind, never more than half the rows."""
    return min(max(n_kinds, round(_DEFECT_RATE * n_rows)), n_rows // 2)


# ---------------------------------------------------------------------------------------------
# Defects in text frames (orders, feedback)
# ---------------------------------------------------------------------------------------------
def _future_text(col: str) -> pl.Expr:
    """Same timestamp text moved to the year 2031 (29 Feb becomes 28 Feb)."""
    moved = pl.lit(str(_FUTURE_YEAR)) + pl.col(col).str.slice(4)
    return moved.str.replace(f"{_FUTURE_YEAR}-02-29", f"{_FUTURE_YEAR}-02-28", literal=True).alias(col)


def _order_mutations() -> dict[str, tuple[pl.Expr, ...]]:
    """Column changes per order defect kind (empty = verbatim copy)."""
    qty = pl.col("quantity").cast(pl.Int64) + 1
    unit = pl.col("unit_price").str.replace(".", "", literal=True).cast(pl.Int64)
    return {
        "non_numeric_amount": (pl.lit("abc").alias("amount"),),
        "negative_amount": ((pl.lit("-") + pl.col("amount")).alias("amount"),),
        "nan_amount": (pl.lit("NaN").alias("amount"),),
        "absurd_amount": (pl.lit("1000000000000.00").alias("amount"),),
        "unparseable_ts": (pl.lit(_UNPARSEABLE_TS).alias("order_ts"),),
        "future_ts": (_future_text("order_ts"),),
        "empty_customer_id": (pl.lit(None, pl.String).alias("customer_id"),),
        "unknown_status": (pl.lit("shipped").alias("status"),),
        "unknown_currency": (pl.lit("XYZ").alias("currency"),),
        "exact_duplicate": (),
        "duplicate_key": (qty.cast(pl.String).alias("quantity"), _money_expr(qty * unit).alias("amount")),
    }


def _feedback_mutations() -> dict[str, tuple[pl.Expr, ...]]:
    """Column changes per feedback defect kind (empty = verbatim copy)."""
    return {
        "rating_out_of_range": (pl.lit("7").alias("rating"),),
        "nps_out_of_range": (pl.lit("11").alias("nps"),),
        "empty_customer_id": (pl.lit(None, pl.String).alias("customer_id"),),
        "unparseable_ts": (pl.lit(_UNPARSEABLE_TS).alias("submitted_ts"),),
        "future_ts": (_future_text("submitted_ts"),),
        "exact_duplicate": (),
        "duplicate_key": (
            pl.lit("1").alias("rating"),
            pl.lit("Edited: duplicate submission").alias("comment"),
        ),
    }


_APPENDED = frozenset({"exact_duplicate", "duplicate_key"})


@dataclass(frozen=True)
class _DefectPlan:
    """Rows to spoil (row positions in file order, sorted) and the defect kind planted at each."""

    pos: np.ndarray
    kind: np.ndarray

    def within(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (relative to ``start``) and kinds of the planned defects in rows [start, stop)."""
        i, j = np.searchsorted(self.pos, [start, stop])
        return self.pos[i:j] - start, self.kind[i:j]


def _plan_defects(rng: np.random.Generator, n_rows: int, n_kinds: int, enabled: bool) -> _DefectPlan:
    """Pick distinct rows for about 0.4 % defects, kinds spread evenly; nothing when disabled."""
    k = _defect_count(n_rows, n_kinds) if enabled else 0
    if k == 0:
        return _DefectPlan(np.empty(0, np.int64), np.empty(0, np.int64))
    pos = np.sort(rng.choice(n_rows, size=k, replace=False))
    return _DefectPlan(pos, rng.permutation(np.arange(k) % n_kinds))


def _apply_text_defects(
    df: pl.DataFrame, pos: np.ndarray, kind: np.ndarray, mutations: dict[str, tuple[pl.Expr, ...]]
) -> pl.DataFrame:
    """Plant defects in a text frame: most kinds rewrite the row in place; duplicates are inserted
    right after the row they copy (so they land in the same file)."""
    if len(pos) == 0:
        return df
    kinds = list(mutations)
    appended = np.isin(kind, [kinds.index(x) for x in _APPENDED if x in kinds])
    take = np.sort(np.concatenate([np.arange(df.height), pos[appended]]))
    df = df[take]
    target = np.searchsorted(take, pos, side="left") + appended  # a copy sits after its original
    for j, name in enumerate(kinds):
        rows = np.sort(target[kind == j])
        exprs = mutations[name]
        if not exprs or len(rows) == 0:
            continue
        new = df[rows].with_columns(*exprs)
        changed = {}
        for e in exprs:
            column = e.meta.output_name()
            values = df[column].clone()
            values.scatter(rows, new[column])
            changed[column] = values
        df = df.with_columns(**changed)
    return df


ORDER_DEFECTS = tuple(_order_mutations())
FEEDBACK_DEFECTS = tuple(_feedback_mutations())
BROWSING_DEFECTS = ("missing_session_id", "unknown_event_type", "future_event_ts")


# ---------------------------------------------------------------------------------------------
# Frames and writers (one period slice at a time, so memory follows the largest file)
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
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
    events = _browsing(rng, people, segments, orders, cal)
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
