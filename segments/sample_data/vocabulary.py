"""Vocabulary of the sample data: column sets, label lists, customer archetypes, distributions, calendar.

Everything here is data or a tiny helper; the generators (``purchases``, ``browsing``, ``feedback``)
draw codes into these lists and ``frames`` turns the codes into text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

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

_DAY = 86_400

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
