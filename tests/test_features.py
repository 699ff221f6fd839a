"""Customer features as of a snapshot date: hand-computed fixture, parameters, writing, portability.

Snapshot date D = 2025-06-30. Day offsets used below: D-10 = 06-20, D-29 = 06-01, D-30 = 05-31,
D-89 = 04-02, D-90 = 04-01, D-364 = 2024-07-01, D-365 = 2024-06-30. "In the last N days" means
D-N < date <= D, so a date exactly N days before D is outside the N-day window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

import features.customer_features as cf
from features import (
    FeatureError,
    FeatureParams,
    anonymous_browsing_counts,
    build_customer_features,
    customer_features_frame,
    output_columns,
)

try:
    from tests.conftest_features_helpers import customer, event, feedback_row, make_warehouse, order
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest_features_helpers import customer, event, feedback_row, make_warehouse, order

D = date(2025, 6, 30)

# --------------------------------------------------------------------------------------------- fixture
ORDERS = [
    # c01: regular buyer; partial refund; cancelled order; category tie (books 100-20 = toys 50+30 = 80)
    order("O101", "c01", "2025-06-20", "100.00", channel="online", category="books", line_id=1),
    order("O101", "c01", "2025-06-20", "50.00", channel="online", category="toys", line_id=2),
    order("O101", "c01", "2025-06-25", "20.00", "refunded", channel="online", category="books", line_id=3),
    order("O102", "c01", "2025-05-01", "30.00", channel="offline", category="toys"),
    order("O103", "c01", "2025-01-10", "30.00", channel="app", category="games"),
    order("O104", "c01", "2025-06-28", "999.00", "cancelled", channel="online", category="books"),
    # local date is after D although the UTC timestamp is still on D: ignored
    order("O105", "c01", "2025-07-01", "500.00", category="books", ts="2025-06-30 17:00:00"),
    # c02: window boundaries (D-30 / D-29, D-90 / D-89, D-365 / D-364); null channel and category
    order("O201", "c02", "2025-05-31", "10.00", channel="online", category="a"),
    order("O202", "c02", "2025-06-01", "20.00", channel="online", category="a"),
    order("O203", "c02", "2025-04-01", "30.00", channel="offline", category="b"),
    order("O204", "c02", "2025-04-02", "40.00", channel="offline", category="b"),
    order("O205", "c02", "2024-06-30", "5.00", channel=None, category="a"),
    order("O206", "c02", "2024-07-01", "5.00", channel=None, category=None),
    # c03: only a refund (the sale predates the data)
    order("O301", "c03", "2025-06-10", "25.00", "refunded", channel="online", category="toys"),
    # c07: bought on D itself; a later order is ignored
    order("O701", "c07", "2025-06-30", "10.00", channel="app", category="food"),
    order("O702", "c07", "2025-07-01", "500.00", channel="app", category="food"),
    # c08: odd number of gaps; two orders on one day count once as a purchase date
    order("O801", "c08", "2025-01-01", "10.00", channel="offline", category="garden"),
    order("O802", "c08", "2025-01-03", "10.00", channel="offline", category="garden"),
    order("O803", "c08", "2025-01-03", "10.00", channel="offline", category="garden"),
    order("O804", "c08", "2025-01-13", "10.00", channel="offline", category="garden"),
    order("O805", "c08", "2025-01-14", "10.00", channel="offline", category="garden"),
    # c09: even number of gaps
    order("O901", "c09", "2025-02-01", "20.00", category="music"),
    order("O902", "c09", "2025-02-05", "20.00", category="music"),
    order("O903", "c09", "2025-02-06", "20.00", category="music"),
    order("O904", "c09", "2025-02-16", "20.00", category="music"),
    order("O905", "c09", "2025-02-23", "20.00", category="music"),
    # c10: reactivated after a 221-day gap; aov 115.30 / 4 = 28.825 rounds half up to 28.83
    order("O1001", "c10", "2024-10-01", "25.00", channel="offline", category="sports"),
    order("O1002", "c10", "2024-11-01", "25.00", channel="offline", category="sports"),
    order("O1003", "c10", "2025-06-10", "25.00", channel="online", category="sports"),
    order("O1004", "c10", "2025-06-20", "40.30", channel="online", category="books"),
    # c11: only a cancelled order (two lines)
    order("O1101", "c11", "2025-06-01", "40.00", "cancelled", category="toys", line_id=1),
    order("O1101", "c11", "2025-06-01", "10.00", "cancelled", category="toys", line_id=2),
    # c15: category tie (w = x = 50) and channel tie (app = online = 50)
    order("O1501", "c15", "2025-03-15", "50.00", channel="online", category="x"),
    order("O1502", "c15", "2025-03-15", "50.00", channel="app", category="w"),
    # c16: only events after D: not known at D
    order("O1601", "c16", "2025-07-01", "10.00", category="toys"),
    # c17: refunds exceed sales: monetary -0.05, aov -0.025 rounds away from zero to -0.03
    order("O1701", "c17", "2024-01-01", "10.00", channel="online", category="toys"),
    order("O1702", "c17", "2024-02-01", "5.00", channel="online", category="toys"),
    order("O1701", "c17", "2025-06-29", "15.05", "refunded", channel="online", category="toys", line_id=2),
]

BROWSING = [
    event("c01", "s101", "2025-06-29", "page_view", duration_s=30),
    event("c01", "s101", "2025-06-29", "product_view", "books", 60),
    event("c01", "s101", "2025-06-29", "add_to_cart", "books", 10),
    event("c01", "s102", "2025-05-15", "product_view", "toys", 20),
    event("c01", "s102", "2025-05-15", "product_view", "toys", 20),
    event("c01", "s102", "2025-05-15", "search", duration_s=5),
    event("c01", "s103", "2025-07-01", "add_to_cart", "games", 15),  # after D
    event("c02", "s201", "2025-05-31", "page_view", duration_s=10),  # D-30: only in the 90-day window
    event("c02", "s202", "2025-06-01", "page_view", duration_s=20),  # D-29
    event("c02", "s203", "2025-04-01", "search", duration_s=40),  # D-90: in no window
    event("c02", "s204", "2025-04-02", "search", duration_s=80),  # D-89
    event("c04", "s401", "2025-06-15", "product_view", "shoes", 30),
    event("c04", "s401", "2025-06-15", "product_view", "bags", None),
    event("c04", "s401", "2025-06-15", "add_to_cart", "bags", 5),
    event("c04", "s401", "2025-06-15", "remove_from_cart", "bags", 1),
    event("c04", "s401", "2025-06-15", "checkout", duration_s=4),
    event("c04", "s402", "2025-03-01", "page_view", duration_s=100),
    event("c07", "s701", "2025-07-02", "page_view", duration_s=50),  # after D
    event("c10", "s1001", "2025-06-05", "add_to_cart", "sports", 3),
    event("c10", "s1002", "2025-06-06", "add_to_cart", "books", 3),
    event("c10", "s1003", "2025-06-07", "add_to_cart", "sports", 3),
    event("c14", "s1401", "2025-06-20", "page_view"),
    event("c16", "s1601", "2025-07-01", "page_view", duration_s=9),  # after D
    # anonymous: counted, never attributed (one shares c01's session)
    event(None, "s101", "2025-06-29", "page_view", duration_s=7),
    event(None, "a1", "2025-06-29", "page_view", duration_s=1),
    event(None, "a1", "2025-06-29", "page_view", duration_s=1),
    event(None, "a1", "2025-06-29", "search", duration_s=1),
    event(None, "a2", "2025-06-30", "product_view", "bags", 1),
    event(None, "a3", "2025-07-01", "page_view", duration_s=1),
    event(None, "a3", "2025-07-01", "page_view", duration_s=1),
]

FEEDBACK = [
    feedback_row("F101", "c01", "2025-03-01", "review", rating=4, nps=9),
    feedback_row("F102", "c01", "2025-06-01", "survey", rating=2, nps=6),
    feedback_row("F103", "c01", "2025-07-02", "survey", rating=5, nps=10),  # after D
    feedback_row("F201", "c02", "2025-04-01", "complaint", rating=1),  # D-90: outside complaints_90d
    feedback_row("F202", "c02", "2025-04-02", "complaint", nps=7),  # D-89
    # c05: same timestamp: latest nps ties broken by feedback_id (descending); F503 has no nps
    feedback_row("F501", "c05", "2025-06-30", "survey", rating=5, nps=8),
    feedback_row("F502", "c05", "2025-06-30", "review", nps=9),
    feedback_row("F503", "c05", "2025-06-30", "complaint", rating=2),
    feedback_row("F901", "c09", "2025-03-01", "survey", rating=3, nps=8),
    feedback_row("F1101", "c11", "2025-06-02", "complaint", rating=1, nps=0),
    feedback_row("F1601", "c16", "2025-07-02", "review", rating=5, nps=10),  # after D
]

CUSTOMERS = [
    customer(
        "c01", "2024-12-01", region="east", city="Shanghai", source_channel="app_store", birth_year=1985, gender="M"
    ),
    customer("c06", None, region="east", city="Hangzhou", source_channel="ads", birth_year=1990, gender="F"),
    customer(
        "c12", "2025-06-30", region="north", city="Beijing", source_channel="referral", birth_year=2000, gender="F"
    ),
    customer("c13", "2025-07-05", region="south", city="Shenzhen"),  # signs up after D, no activity
    customer("c14", "2025-07-05", region="west", city="Chengdu"),  # signs up after D, browsed before
]

# ------------------------------------------------------------------------------------ expected by hand
EXPECTED_COLUMNS = [
    "snapshot_date", "customer_id",
    "frequency", "monetary", "gross_sales", "refund_amount", "aov", "first_purchase_date",
    "last_purchase_date", "recency_days", "tenure_days", "orders_30d", "orders_90d", "orders_365d",
    "median_days_between_purchases", "reactivation_gap_days", "cancelled_orders", "is_buyer",
    "sessions_30d", "page_views_30d", "product_views_30d", "searches_30d", "add_to_carts_30d",
    "time_online_s_30d",
    "sessions_90d", "page_views_90d", "product_views_90d", "searches_90d", "add_to_carts_90d",
    "time_online_s_90d",
    "days_since_last_visit", "cart_to_order_rate_90d", "top_browsed_category_90d",
    "feedback_count", "avg_rating", "last_nps", "nps_class", "complaints_90d", "days_since_last_feedback",
    "top_category", "top_category_share", "online_share", "offline_share", "preferred_channel", "home_store",
    "has_customer_record", "signup_date", "region", "city", "source_channel", "birth_year", "gender",
]  # fmt: skip

BLANK: dict[str, Any] = {
    "snapshot_date": D, "frequency": 0, "monetary": Decimal("0.00"), "gross_sales": Decimal("0.00"),
    "refund_amount": Decimal("0.00"), "aov": None, "first_purchase_date": None, "last_purchase_date": None,
    "recency_days": None, "tenure_days": None, "orders_30d": 0, "orders_90d": 0, "orders_365d": 0,
    "median_days_between_purchases": None, "reactivation_gap_days": None, "cancelled_orders": 0,
    "is_buyer": False,
    "sessions_30d": 0, "page_views_30d": 0, "product_views_30d": 0, "searches_30d": 0, "add_to_carts_30d": 0,
    "time_online_s_30d": 0,
    "sessions_90d": 0, "page_views_90d": 0, "product_views_90d": 0, "searches_90d": 0, "add_to_carts_90d": 0,
    "time_online_s_90d": 0,
    "days_since_last_visit": None, "cart_to_order_rate_90d": None, "top_browsed_category_90d": None,
    "feedback_count": 0, "avg_rating": None, "last_nps": None, "nps_class": None, "complaints_90d": 0,
    "days_since_last_feedback": None,
    "top_category": None, "top_category_share": None, "online_share": None, "offline_share": None,
    "preferred_channel": None, "home_store": None,
    "has_customer_record": False, "signup_date": None, "region": None, "city": None, "source_channel": None,
    "birth_year": None, "gender": None,
}  # fmt: skip

EXPECTED: dict[str, dict[str, Any]] = {
    "c01": {
        # completed: O101 150 (06-20), O102 30 (05-01), O103 30 (01-10); refund 20; O104 cancelled
        "frequency": 3, "monetary": Decimal("190.00"), "gross_sales": Decimal("210.00"),
        "refund_amount": Decimal("20.00"), "aov": Decimal("63.33"),
        "first_purchase_date": date(2025, 1, 10), "last_purchase_date": date(2025, 6, 20),
        "recency_days": 10, "tenure_days": 211,  # signup 2024-12-01
        "orders_30d": 1, "orders_90d": 2, "orders_365d": 3,
        "median_days_between_purchases": 80.5,  # gaps 111, 50
        "reactivation_gap_days": 111,  # 01-10 -> 05-01 ends inside the last 90 days
        "cancelled_orders": 1, "is_buyer": True,
        "sessions_30d": 1, "page_views_30d": 1, "product_views_30d": 1, "searches_30d": 0,
        "add_to_carts_30d": 1, "time_online_s_30d": 100,
        "sessions_90d": 2, "page_views_90d": 1, "product_views_90d": 3, "searches_90d": 1,
        "add_to_carts_90d": 1, "time_online_s_90d": 145,
        "days_since_last_visit": 1,
        "cart_to_order_rate_90d": 1.0,  # 2 orders / 1 cart session, capped
        "top_browsed_category_90d": "books",  # books 2 = toys 2, alphabetical
        "feedback_count": 2, "avg_rating": 3.0, "last_nps": 6, "nps_class": "detractor",
        "complaints_90d": 0, "days_since_last_feedback": 29,
        "top_category": "books", "top_category_share": 80 / 190,
        "online_share": 180 / 210, "offline_share": 30 / 210, "preferred_channel": "online",
        "has_customer_record": True, "signup_date": date(2024, 12, 1), "region": "east", "city": "Shanghai",
        "source_channel": "app_store", "birth_year": 1985, "gender": "M",
    },
    "c02": {
        "frequency": 6, "monetary": Decimal("110.00"), "gross_sales": Decimal("110.00"), "aov": Decimal("18.33"),
        "first_purchase_date": date(2024, 6, 30), "last_purchase_date": date(2025, 6, 1),
        "recency_days": 29, "tenure_days": 365,
        "orders_30d": 1, "orders_90d": 3, "orders_365d": 5,
        "median_days_between_purchases": 1.0,  # gaps 1, 274, 1, 59, 1
        "reactivation_gap_days": 274,  # the 274-day gap ends on D-90: recency 90 is "within 90 days"
        "is_buyer": True,
        "sessions_30d": 1, "page_views_30d": 1, "time_online_s_30d": 20,
        "sessions_90d": 3, "page_views_90d": 2, "searches_90d": 1, "time_online_s_90d": 110,
        "days_since_last_visit": 29,
        "feedback_count": 2, "avg_rating": 1.0, "last_nps": 7, "nps_class": "passive",
        "complaints_90d": 1, "days_since_last_feedback": 89,
        "top_category": "b", "top_category_share": 70 / 110,  # a 35, b 70, uncategorized 5
        "online_share": 30 / 110, "offline_share": 70 / 110, "preferred_channel": "offline",
    },
    "c03": {
        "monetary": Decimal("-25.00"), "refund_amount": Decimal("25.00"), "tenure_days": 20,
    },
    "c04": {
        "tenure_days": 121,
        "sessions_30d": 1, "product_views_30d": 2, "add_to_carts_30d": 1, "time_online_s_30d": 40,
        "sessions_90d": 1, "product_views_90d": 2, "add_to_carts_90d": 1, "time_online_s_90d": 40,
        "days_since_last_visit": 15, "cart_to_order_rate_90d": 0.0, "top_browsed_category_90d": "bags",
    },
    "c05": {
        "tenure_days": 0,
        "feedback_count": 3, "avg_rating": 3.5, "last_nps": 9, "nps_class": "promoter",
        "complaints_90d": 1, "days_since_last_feedback": 0,
    },
    "c06": {
        "has_customer_record": True, "region": "east", "city": "Hangzhou", "source_channel": "ads",
        "birth_year": 1990, "gender": "F",
    },
    "c07": {
        "frequency": 1, "monetary": Decimal("10.00"), "gross_sales": Decimal("10.00"), "aov": Decimal("10.00"),
        "first_purchase_date": D, "last_purchase_date": D, "recency_days": 0, "tenure_days": 0,
        "orders_30d": 1, "orders_90d": 1, "orders_365d": 1, "is_buyer": True,
        "top_category": "food", "top_category_share": 1.0, "online_share": 1.0, "offline_share": 0.0,
        "preferred_channel": "app",
    },
    "c08": {
        "frequency": 5, "monetary": Decimal("50.00"), "gross_sales": Decimal("50.00"), "aov": Decimal("10.00"),
        "first_purchase_date": date(2025, 1, 1), "last_purchase_date": date(2025, 1, 14),
        "recency_days": 167, "tenure_days": 180, "orders_365d": 5,
        "median_days_between_purchases": 2.0,  # gaps 2, 10, 1
        "is_buyer": True,
        "top_category": "garden", "top_category_share": 1.0, "online_share": 0.0, "offline_share": 1.0,
        "preferred_channel": "offline",
    },
    "c09": {
        "frequency": 5, "monetary": Decimal("100.00"), "gross_sales": Decimal("100.00"), "aov": Decimal("20.00"),
        "first_purchase_date": date(2025, 2, 1), "last_purchase_date": date(2025, 2, 23),
        "recency_days": 127, "tenure_days": 149, "orders_365d": 5,
        "median_days_between_purchases": 5.5,  # gaps 4, 1, 10, 7
        "is_buyer": True,
        "feedback_count": 1, "avg_rating": 3.0, "last_nps": 8, "nps_class": "passive",
        "days_since_last_feedback": 121,
        "top_category": "music", "top_category_share": 1.0, "online_share": 1.0, "offline_share": 0.0,
        "preferred_channel": "online",
    },
    "c10": {
        "frequency": 4, "monetary": Decimal("115.30"), "gross_sales": Decimal("115.30"), "aov": Decimal("28.83"),
        "first_purchase_date": date(2024, 10, 1), "last_purchase_date": date(2025, 6, 20),
        "recency_days": 10, "tenure_days": 272, "orders_30d": 2, "orders_90d": 2, "orders_365d": 4,
        "median_days_between_purchases": 31.0,  # gaps 31, 221, 10
        "reactivation_gap_days": 221, "is_buyer": True,
        "sessions_30d": 3, "add_to_carts_30d": 3, "time_online_s_30d": 9,
        "sessions_90d": 3, "add_to_carts_90d": 3, "time_online_s_90d": 9,
        "days_since_last_visit": 23, "cart_to_order_rate_90d": 2 / 3, "top_browsed_category_90d": "sports",
        "top_category": "sports", "top_category_share": 75 / 115.30,
        "online_share": 65.30 / 115.30, "offline_share": 50 / 115.30, "preferred_channel": "online",
    },
    "c11": {
        "tenure_days": 29, "cancelled_orders": 1,
        "feedback_count": 1, "avg_rating": 1.0, "last_nps": 0, "nps_class": "detractor",
        "complaints_90d": 1, "days_since_last_feedback": 28,
    },
    "c12": {
        "tenure_days": 0, "has_customer_record": True, "signup_date": D, "region": "north", "city": "Beijing",
        "source_channel": "referral", "birth_year": 2000, "gender": "F",
    },
    "c14": {  # its record is dated after D, so it does not count yet
        "tenure_days": 10, "sessions_30d": 1, "page_views_30d": 1, "sessions_90d": 1, "page_views_90d": 1,
        "days_since_last_visit": 10,
    },
    "c15": {
        "frequency": 2, "monetary": Decimal("100.00"), "gross_sales": Decimal("100.00"), "aov": Decimal("50.00"),
        "first_purchase_date": date(2025, 3, 15), "last_purchase_date": date(2025, 3, 15),
        "recency_days": 107, "tenure_days": 107, "orders_365d": 2, "is_buyer": True,
        "top_category": "w", "top_category_share": 0.5, "online_share": 1.0, "offline_share": 0.0,
        "preferred_channel": "app",
    },
    "c17": {
        "frequency": 2, "monetary": Decimal("-0.05"), "gross_sales": Decimal("15.00"),
        "refund_amount": Decimal("15.05"), "aov": Decimal("-0.03"),
        "first_purchase_date": date(2024, 1, 1), "last_purchase_date": date(2024, 2, 1),
        "recency_days": 515, "tenure_days": 546, "median_days_between_purchases": 31.0, "is_buyer": True,
        "online_share": 1.0, "offline_share": 0.0, "preferred_channel": "online",
    },
}  # fmt: skip


def _assert_row(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal column by column; floats to 1e-12 relative."""
    assert list(actual) == list(expected)
    wrong = {}
    for col, want in expected.items():
        got = actual[col]
        if isinstance(want, float) and isinstance(got, float):
            ok = math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
        else:
            ok = got == want and type(got) is type(want)
        if not ok:
            wrong[col] = (got, want)
    assert not wrong, f"{actual['customer_id']}: (got, expected) {wrong}"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """The hand-made fixture in a DuckDB file."""
    path = tmp_path_factory.mktemp("features") / "warehouse.duckdb"
    con = make_warehouse(path, ORDERS, BROWSING, FEEDBACK, CUSTOMERS)
    yield con
    con.close()


@pytest.fixture(scope="module")
def frame(warehouse: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Features as of D with default parameters."""
    return customer_features_frame(warehouse, D)


def _rows(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["customer_id"]: row for row in frame.to_dicts()}


# ------------------------------------------------------------------------------------ the hand fixture
def test_columns_are_named_and_ordered_as_documented(frame: pl.DataFrame) -> None:
    assert frame.columns == EXPECTED_COLUMNS
    assert [name for name, _ in output_columns()] == EXPECTED_COLUMNS


def test_column_types(frame: pl.DataFrame) -> None:
    money = pl.Decimal(18, 2)
    assert frame.schema["snapshot_date"] == pl.Date
    assert frame.schema["customer_id"] == pl.String
    for col in ("monetary", "gross_sales", "refund_amount", "aov"):
        assert frame.schema[col] == money, col
    for col in ("frequency", "recency_days", "tenure_days", "orders_30d", "sessions_90d", "time_online_s_30d",
                "complaints_90d", "last_nps", "birth_year", "reactivation_gap_days"):  # fmt: skip
        assert frame.schema[col] == pl.Int64, col
    for col in ("median_days_between_purchases", "cart_to_order_rate_90d", "avg_rating", "online_share"):
        assert frame.schema[col] == pl.Float64, col
    assert frame.schema["is_buyer"] == pl.Boolean
    assert frame.schema["has_customer_record"] == pl.Boolean


def test_one_row_per_known_customer_sorted(frame: pl.DataFrame) -> None:
    # c13 (signs up after D, no activity) and c16 (only events after D) are not known yet
    assert frame["customer_id"].to_list() == sorted(EXPECTED)
    assert frame["customer_id"].null_count() == 0


@pytest.mark.parametrize("customer_id", sorted(EXPECTED))
def test_features_match_hand_computed_values(frame: pl.DataFrame, customer_id: str) -> None:
    expected = {**BLANK, "customer_id": customer_id, **EXPECTED[customer_id]}
    expected = {col: expected[col] for col in EXPECTED_COLUMNS}
    _assert_row(_rows(frame)[customer_id], expected)


def test_pii_never_output(frame: pl.DataFrame) -> None:
    assert not {"email", "phone", "name"} & set(frame.columns)
    text = " ".join(str(v) for row in frame.rows() for v in row)
    assert "@example.com" not in text and "Name of" not in text


@pytest.mark.parametrize(
    ("as_of", "events", "sessions"),
    [(date(2025, 6, 29), 4, 2), (D, 5, 3), (date(2025, 7, 1), 7, 4), (date(2025, 1, 1), 0, 0)],
)
def test_anonymous_browsing_counted_not_attributed(
    warehouse: duckdb.DuckDBPyConnection, as_of: date, events: int, sessions: int
) -> None:
    assert anonymous_browsing_counts(warehouse, as_of) == {"events": events, "sessions": sessions}


def test_anonymous_event_in_a_customer_session_is_not_attributed(frame: pl.DataFrame) -> None:
    c01 = _rows(frame)["c01"]
    assert (c01["page_views_30d"], c01["time_online_s_30d"]) == (1, 100)  # not 2 / 107


def test_events_after_snapshot_do_not_change_it(tmp_path: Path, frame: pl.DataFrame) -> None:
    later = [
        order("L1", "c01", "2025-07-01", "77.00", category="toys"),
        order("L2", "c03", "2025-07-03", "5.00", "refunded"),
        order("L3", "c99", "2025-07-01", "5.00"),
    ]
    con = make_warehouse(
        tmp_path / "w.duckdb",
        ORDERS + later,
        [*BROWSING, event("c04", "late", "2025-07-01", "add_to_cart", "shoes", 5)],
        [*FEEDBACK, feedback_row("L4", "c05", "2025-07-01", "survey", nps=1, at="00:00")],
        CUSTOMERS,
    )
    try:
        assert customer_features_frame(con, D).equals(frame)
    finally:
        con.close()


def test_earlier_snapshot_sees_less(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = _rows(customer_features_frame(warehouse, date(2025, 6, 19)))
    assert "c07" not in rows and "c12" not in rows  # first seen on 06-30
    c01 = rows["c01"]
    # O101 (06-20) and the refund (06-25) are in the future; 05-01 -> 2025-06-19 is 49 days
    assert (c01["frequency"], c01["monetary"], c01["recency_days"]) == (2, Decimal("60.00"), 49)
    assert c01["cancelled_orders"] == 0


# --------------------------------------------------------------------------------------------- params
def test_lookback_limits_frequency_and_monetary_only(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = _rows(customer_features_frame(warehouse, D, FeatureParams(lookback_days=30)))
    c01 = rows["c01"]
    assert (c01["frequency"], c01["gross_sales"], c01["refund_amount"], c01["monetary"], c01["aov"]) == (
        1, Decimal("150.00"), Decimal("20.00"), Decimal("130.00"), Decimal("130.00"),
    )  # fmt: skip
    assert c01["cancelled_orders"] == 1
    assert (c01["top_category"], c01["top_category_share"]) == ("books", pytest.approx(80 / 130))
    assert (c01["online_share"], c01["offline_share"]) == (1.0, 0.0)
    # all-history columns are unchanged
    assert (c01["first_purchase_date"], c01["recency_days"], c01["orders_90d"]) == (date(2025, 1, 10), 10, 2)
    c02 = rows["c02"]  # 05-31 is exactly 30 days back: outside; 06-01 inside
    assert (c02["frequency"], c02["monetary"]) == (1, Decimal("20.00"))
    c08 = rows["c08"]  # bought, but not within the lookback: still a buyer (lapsed), never a prospect
    assert (c08["frequency"], c08["is_buyer"], c08["aov"], c08["recency_days"]) == (0, True, None, 167)


# ------------------------------------------------------------------------------------------ home store
HOME_STORE_ORDERS = [
    # h1: S02 = S01 = 100 net: tie to the smaller store id; its online line (no store) is larger but never counts
    order("H101", "h1", "2025-06-01", "100.00", channel="offline", store_id="S02"),
    order("H102", "h1", "2025-06-02", "100.00", channel="offline", store_id="S01"),
    order("H103", "h1", "2025-06-03", "500.00", channel="online"),
    # h2: S01 sold 80 but refunds of 80 + 10 make it net -10; S03 (5) is the only positive store
    order("H201", "h2", "2025-05-01", "80.00", channel="offline", store_id="S01"),
    order("H201", "h2", "2025-05-05", "80.00", "refunded", channel="offline", store_id="S01", line_id=2),
    order("H202", "h2", "2025-05-06", "10.00", "refunded", channel="offline", store_id="S01"),
    order("H203", "h2", "2025-05-07", "5.00", channel="offline", store_id="S03"),
    # h3: online only (null store_id lines): no home store
    order("H301", "h3", "2025-06-10", "70.00", channel="online"),
    order("H302", "h3", "2025-06-11", "30.00", channel="app"),
    # h5: sold and fully refunded in S05 (net 0 is not positive); a cancelled S04 line is ignored
    order("H501", "h5", "2025-06-01", "50.00", channel="offline", store_id="S05"),
    order("H501", "h5", "2025-06-02", "50.00", "refunded", channel="offline", store_id="S05", line_id=2),
    order("H502", "h5", "2025-06-03", "999.00", "cancelled", channel="offline", store_id="S04"),
    # h6: S09 (10, inside a 30-day lookback) against S07 (900, 2025-01-01) and S08 (2000, after D)
    order("H601", "h6", "2025-06-20", "10.00", channel="offline", store_id="S09"),
    order("H602", "h6", "2025-01-01", "900.00", channel="offline", store_id="S07"),
    order("H603", "h6", "2025-07-01", "2000.00", channel="offline", store_id="S08"),
]
# h4 has no orders at all (a customer record only)
HOME_STORE_EXPECTED = {"h1": "S01", "h2": "S03", "h3": None, "h4": None, "h5": None, "h6": "S07"}


@pytest.mark.parametrize(
    ("lookback_days", "changed"),
    [(None, {}), (30, {"h2": None, "h6": "S09"})],  # 30 days: h2's May lines and h6's S07 fall outside
)
def test_home_store_is_the_store_with_the_most_positive_net_spend(
    tmp_path: Path, lookback_days: int | None, changed: dict[str, str | None]
) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", HOME_STORE_ORDERS, customers=[customer("h4", "2025-01-01")])
    try:
        frame = customer_features_frame(con, D, FeatureParams(lookback_days=lookback_days))
    finally:
        con.close()
    got = dict(frame.select("customer_id", "home_store").iter_rows())
    assert got == {**HOME_STORE_EXPECTED, **changed}
    assert frame.schema["home_store"] == pl.String


def test_custom_windows_name_their_columns(warehouse: duckdb.DuckDBPyConnection) -> None:
    params = FeatureParams(windows=(7, 60), complaint_window_days=30)
    frame = customer_features_frame(warehouse, D, params)
    assert "sessions_7d" in frame.columns and "time_online_s_60d" in frame.columns
    assert "sessions_30d" not in frame.columns and "complaints_30d" in frame.columns
    assert frame.columns == [name for name, _ in output_columns(params)]
    rows = _rows(frame)
    assert (rows["c01"]["sessions_7d"], rows["c01"]["sessions_60d"]) == (1, 2)  # 06-29 and 05-15
    assert (rows["c02"]["complaints_30d"], rows["c05"]["complaints_30d"]) == (0, 1)
    assert rows["c01"]["cart_to_order_rate_90d"] == 1.0  # the named 90-day features stay 90 days


@pytest.mark.parametrize(
    ("window", "gap"),
    [(60, 59), (89, 59), (90, 274), (120, 274)],  # c02 bought on D-90 (04-01) after a 274-day gap
)
def test_reactivation_gap_follows_the_active_window(
    warehouse: duckdb.DuckDBPyConnection, window: int, gap: int
) -> None:
    """The gap counts purchases with recency <= active_days, boundary included like ``active``."""
    rows = _rows(customer_features_frame(warehouse, D, FeatureParams(reactivation_window_days=window)))
    assert rows["c02"]["reactivation_gap_days"] == gap
    assert rows["c10"]["reactivation_gap_days"] == 221  # back on D-20


@pytest.mark.parametrize(
    ("as_of", "active_days", "stage"),
    [
        (D, 90, "reactivated"),  # back on D-90 (recency 90, "within 90 days") after 274 days: was "active"
        (date(2025, 7, 20), 120, "reactivated"),  # back 110 days ago, inside a 120-day active window
        (date(2025, 7, 20), 90, "active"),  # back 110 days ago: outside a 90-day window, merely active
    ],
)
def test_reactivated_uses_the_same_window_as_active(
    warehouse: duckdb.DuckDBPyConnection, as_of: date, active_days: int, stage: str
) -> None:
    """Defects: the gap window excluded D-90 and ignored ``lifecycle.active_days``."""
    from models.lifecycle import assign_lifecycle
    from models.settings import load_segmentation_settings

    lifecycle = load_segmentation_settings({"lifecycle": {"active_days": active_days}}).lifecycle
    frame = customer_features_frame(warehouse, as_of, FeatureParams(reactivation_window_days=active_days))
    c02 = assign_lifecycle(frame, lifecycle).filter(pl.col("customer_id") == "c02").row(0, named=True)
    assert c02["lifecycle_stage"] == stage


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reactivation_window_days": -1},
        {"reactivation_window_days": 1.5},
        {"windows": (30, 30)},
        {"windows": (0, 90)},
        {"windows": (30,)},
        {"lookback_days": 0},
        {"lookback_days": True},
        {"lookback_days": 1.5},
        {"complaint_window_days": -1},
    ],
)
def test_invalid_params_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(FeatureError):
        FeatureParams(**kwargs)


def test_as_of_must_be_a_date(warehouse: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(FeatureError, match="as_of"):
        customer_features_frame(warehouse, datetime(2025, 6, 30, 12, 0))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- writing
def test_build_is_delete_then_insert_per_snapshot(tmp_path: Path, frame: pl.DataFrame) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS, BROWSING, FEEDBACK, CUSTOMERS)
    try:
        assert build_customer_features(con, D) == len(EXPECTED)
        assert build_customer_features(con, D) == len(EXPECTED)  # rerun replaces, never duplicates
        earlier = build_customer_features(con, date(2025, 6, 1))
        counts = dict(con.sql("select snapshot_date, count(*) from customer_features group by 1").fetchall())
        assert counts == {D: len(EXPECTED), date(2025, 6, 1): earlier}
        dupes = con.sql(
            "select count(*) from (select snapshot_date, customer_id from customer_features group by all "
            "having count(*) > 1)"
        ).fetchall()[0]
        assert dupes == (0,)
        stored = con.sql(f"select * from customer_features where snapshot_date = '{D}' order by customer_id").pl()
        assert stored.equals(frame)
        described = [(r[0], r[1]) for r in con.sql("describe customer_features").fetchall()]
        assert described == output_columns()
    finally:
        con.close()


def test_build_into_a_named_table_in_a_schema(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS)
    try:
        con.execute("create schema marts")
        assert build_customer_features(con, D, table="marts.features") > 0
        assert con.sql("select count(distinct snapshot_date) from marts.features").fetchall()[0] == (1,)
    finally:
        con.close()


@pytest.mark.parametrize("table", ["x; drop table orders", 'a"b', "a.b.c", "", "1abc"])
def test_build_refuses_odd_table_names(tmp_path: Path, table: str) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS)
    try:
        with pytest.raises(FeatureError, match="table"):
            build_customer_features(con, D, table=table)
        assert con.sql("select count(*) from orders").fetchall()[0] == (len(ORDERS),)
    finally:
        con.close()


def test_snapshots_with_other_windows_share_the_table_and_read_back_their_own_columns(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS)
    try:
        written = build_customer_features(con, D)
        earlier = D - timedelta(days=1)
        build_customer_features(con, earlier, FeatureParams(windows=(7, 60), complaint_window_days=14))
        assert cf.feature_params(con, earlier).window_names() == {"short": 7, "long": 60, "complaint": 14}
        assert cf.feature_params(con, D).window_names() == {"short": 30, "long": 90, "complaint": 90}
        old = cf.read_features(con, earlier)
        assert "sessions_7d" in old.columns and "sessions_30d" not in old.columns and "complaints_14d" in old.columns
        now = cf.read_features(con, D)
        assert now.columns == [n for n, _ in cf.output_columns(FeatureParams())] and now.height == written
        # rebuilding D keeps its own windows and the row count
        assert build_customer_features(con, D) == written
    finally:
        con.close()


def test_build_refuses_a_column_of_another_type(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS)
    try:
        con.execute("create table customer_features (snapshot_date date, customer_id varchar, frequency varchar)")
        with pytest.raises(FeatureError, match=r"column\(s\) \['frequency'\] with other types"):
            build_customer_features(con, D)
    finally:
        con.close()


def test_failed_build_keeps_previous_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS, BROWSING, FEEDBACK, CUSTOMERS)
    try:
        written = build_customer_features(con, D)
        real = cf.load_sql

        def broken(name: str) -> str:
            if name == "insert_snapshot":
                return "insert into {table} select * from ({features}) where error('planted failure') is null"
            return real(name)

        monkeypatch.setattr(cf, "load_sql", broken)
        with pytest.raises(duckdb.Error, match="planted failure"):
            build_customer_features(con, D)
        assert con.sql("select count(*) from customer_features").fetchall()[0] == (written,)
    finally:
        con.close()


def test_optional_sources_may_be_absent(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", ORDERS, tables=["orders"])
    try:
        frame = customer_features_frame(con, D)
        assert frame.columns == EXPECTED_COLUMNS
        c01 = _rows(frame)["c01"]
        assert (c01["frequency"], c01["sessions_90d"], c01["feedback_count"], c01["has_customer_record"]) == (
            3, 0, 0, False,
        )  # fmt: skip
        assert anonymous_browsing_counts(con, D) == {"events": 0, "sessions": 0}
        assert build_customer_features(con, D) == frame.height
        views = con.sql("select count(*) from duckdb_views() where not internal").fetchall()[0]
        assert views == (0,)  # the stand-in views are dropped again
    finally:
        con.close()


def test_missing_orders_table_is_a_clear_error(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        with pytest.raises(FeatureError, match="orders"):
            customer_features_frame(con, D)
    finally:
        con.close()


def test_runs_on_the_ingestion_schema(tmp_path: Path) -> None:
    ingest = pytest.importorskip("ingestion.loader")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        ingest.ensure_schema(con)
        frame = customer_features_frame(con, D)
        assert frame.height == 0 and frame.columns == EXPECTED_COLUMNS
    finally:
        con.close()


# ----------------------------------------------------------------------------------------- portability
def test_sql_is_loaded_relative_to_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse: duckdb.DuckDBPyConnection, frame: pl.DataFrame
) -> None:
    monkeypatch.chdir(tmp_path)
    cf.load_sql.cache_clear()
    assert customer_features_frame(warehouse, D).equals(frame)


SQL_FILES = [cf.SQL_DIR / f"{name}.sql" for name in cf.SQL_NAMES]
FORBIDDEN = [
    r"\bepoch\s*\(", r"\bepoch_ms\b", r"\bquantile", r"\bmedian\s*\(", r"\barray_agg\b", r"\blist\w*\s*\(",
    r"\barg_max\b", r"\barg_min\b", r"\bmax_by\b", r"\bmin_by\b", r"\blog\w*\s*\(", r"\bln\s*\(",
    r"\bdayofweek\b", r"\bisodow\b", r"\bcolumns\s*\(", r"\bqualify\b", r"\bnow\s*\(", r"\bcurrent_date\b",
    r"\bcurrent_timestamp\b", r"\btoday\s*\(", r"\bdate_trunc\b", r"\binterval\b", r"::",
]  # fmt: skip


def _code(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_sql_files_exist() -> None:
    assert all(path.is_file() for path in SQL_FILES)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_sql_file_has_header_one_statement_and_lowercase(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"-- {path.stem}:"), "header comment naming what the file produces"
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("--"))
    assert "grain" in header.lower(), "the header states the grain"
    filled = text.format(table="t", columns="x", features="select 1 as x")
    assert len(duckdb.connect().extract_statements(filled)) == 1
    code = _code(text)
    upper = re.findall(r"\b(SELECT|FROM|WHERE|GROUP|ORDER|JOIN|WITH|CASE|WHEN|CAST|AND|OR|AS)\b", code)
    assert not upper, f"keywords are lowercase: {upper}"


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_sql_file_avoids_non_portable_constructs(path: Path) -> None:
    code = _code(path.read_text(encoding="utf-8")).lower()
    found = [pattern for pattern in FORBIDDEN if re.search(pattern, code)]
    assert not found, f"{path.name} uses {found} (PRODUCT.md section 6)"
    assert not re.search(r"'\d{4}-\d{2}-\d{2}'", code), "dates are bound parameters, never literals"


# ------------------------------------------------------------------------------------- random cross-check
def _random_orders(seed: int, customers: int, lines: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    order_ids = rng.integers(0, lines // 2, size=lines)  # ~2 lines per order
    order_customer = rng.integers(0, customers, size=lines // 2)
    order_day = rng.integers(-800, 30, size=lines // 2)  # days relative to D; some after D
    status = rng.choice(["completed", "cancelled", "refunded"], size=lines, p=[0.8, 0.1, 0.1])
    refund_delay = rng.integers(0, 60, size=lines)
    cents = rng.integers(0, 500_000, size=lines)
    rows = []
    for i in range(lines):
        o = int(order_ids[i])
        day = int(order_day[o]) + (int(refund_delay[i]) if status[i] == "refunded" else 0)
        rows.append(
            {
                "order_id": f"R{o}",
                "line_id": i,
                "customer_id": f"k{int(order_customer[o]):05d}",
                "order_date": D + timedelta(days=day),
                "amount": Decimal(int(cents[i])).scaleb(-2),
                "status": str(status[i]),
                "channel": "online",
            }
        )
    return rows


def _python_rfm(rows: list[dict[str, Any]], lookback_days: int | None) -> dict[str, tuple[int, Decimal, Any]]:
    """frequency, monetary, recency recomputed without SQL."""
    start = None if lookback_days is None else D - timedelta(days=lookback_days)
    orders: dict[str, set[str]] = {}
    money: dict[str, Decimal] = {}
    last: dict[str, date] = {}
    for r in rows:
        cid, day = r["customer_id"], r["order_date"]
        if day > D:
            continue
        orders.setdefault(cid, set())
        money.setdefault(cid, Decimal("0.00"))
        if r["status"] == "completed" and (cid not in last or day > last[cid]):
            last[cid] = day
        if start is not None and day <= start:
            continue
        if r["status"] == "completed":
            orders[cid].add(r["order_id"])
            money[cid] += r["amount"]
        elif r["status"] == "refunded":
            money[cid] -= r["amount"]
    return {cid: (len(orders[cid]), money[cid], (D - last[cid]).days if cid in last else None) for cid in orders}


@pytest.mark.parametrize("lookback_days", [None, 90])
def test_random_data_matches_independent_python(tmp_path: Path, lookback_days: int | None) -> None:
    rows = _random_orders(seed=20250630, customers=2_000, lines=20_000)
    con = make_warehouse(tmp_path / "w.duckdb", rows, tables=["orders"])
    try:
        frame = customer_features_frame(con, D, FeatureParams(lookback_days=lookback_days))
    finally:
        con.close()
    expected = _python_rfm(rows, lookback_days)
    got = {
        r["customer_id"]: (r["frequency"], r["monetary"], r["recency_days"])
        for r in frame.select("customer_id", "frequency", "monetary", "recency_days").to_dicts()
    }
    assert len(got) > 1_500
    assert got == expected
