"""Lifecycle stage: boundaries at 30/90/91/180/181 days, reactivated, precedence, config."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from models.lifecycle import STAGES, assign_lifecycle
from models.settings import load_segmentation_settings

SNAPSHOT = date(2026, 11, 21)

# (case, is_buyer, days since first purchase, recency days, reactivation gap, expected stage)
CASES: list[tuple[str, bool, int | None, int | None, int | None, str]] = [
    ("never bought", False, None, None, None, "prospect"),
    ("first purchase today", True, 0, 0, None, "new"),
    ("first purchase 30 days ago", True, 30, 30, None, "new"),
    ("first purchase 31 days ago", True, 31, 31, None, "active"),
    ("last purchase today, old customer", True, 400, 0, 20, "active"),
    ("last purchase 90 days ago", True, 400, 90, None, "active"),
    ("last purchase 91 days ago", True, 400, 91, None, "at_risk"),
    ("last purchase 180 days ago", True, 400, 180, None, "at_risk"),
    ("last purchase 181 days ago", True, 400, 181, None, "churned"),
    ("back after a 181-day gap", True, 400, 10, 181, "reactivated"),
    ("back after exactly 180 days", True, 400, 10, 180, "active"),
    ("back 90 days ago after 300-day gap", True, 500, 90, 300, "reactivated"),
    ("gap but last purchase 91 days ago", True, 500, 91, 300, "at_risk"),
    ("new beats reactivated", True, 20, 5, 200, "new"),
]


def _frame(cases: list[tuple[str, bool, int | None, int | None, int | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "snapshot_date": [SNAPSHOT] * len(cases),
            "is_buyer": [c[1] for c in cases],
            "first_purchase_date": [None if c[2] is None else SNAPSHOT - timedelta(days=c[2]) for c in cases],
            "recency_days": [c[3] for c in cases],
            "reactivation_gap_days": [c[4] for c in cases],
        },
        schema={
            "snapshot_date": pl.Date,
            "is_buyer": pl.Boolean,
            "first_purchase_date": pl.Date,
            "recency_days": pl.Int64,
            "reactivation_gap_days": pl.Int64,
        },
    )


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_lifecycle_stage(case: tuple[str, bool, int | None, int | None, int | None, str]) -> None:
    out = assign_lifecycle(_frame([case]), load_segmentation_settings().lifecycle)
    assert out["lifecycle_stage"].item() == case[5]


def test_every_customer_gets_exactly_one_known_stage() -> None:
    out = assign_lifecycle(_frame(CASES), load_segmentation_settings().lifecycle)
    assert out["lifecycle_stage"].null_count() == 0
    assert set(out["lifecycle_stage"]) == set(STAGES)


def test_windows_are_configurable() -> None:
    settings = load_segmentation_settings({"lifecycle": {"new_days": 7, "active_days": 30, "churn_days": 60}})
    cases = [
        ("new", True, 7, 7, None, "new"),
        ("active", True, 8, 8, None, "active"),
        ("at risk", True, 100, 31, None, "at_risk"),
        ("churned", True, 100, 61, None, "churned"),
        ("reactivated", True, 100, 30, 61, "reactivated"),
    ]
    out = assign_lifecycle(_frame(cases), settings.lifecycle)
    assert out["lifecycle_stage"].to_list() == [c[5] for c in cases]
