"""`segments explain` on a hand-made published folder: every value worked out by hand."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from models.explain import ExplainError, portrait, render_portrait
from models.settings import load_segmentation_settings

D = date(2026, 11, 21)
SETTINGS = load_segmentation_settings()


def _published(tmp_path: Path) -> tuple[Path, Path]:
    pub = tmp_path / "published"
    (pub / "current").mkdir(parents=True)
    n = 3
    seg = pl.DataFrame(
        {
            "snapshot_date": [D] * n,
            "customer_id": ["C1", "C2", "C3"],
            "monetary": [Decimal("600.00"), Decimal("300.00"), Decimal("100.00")],
            "frequency": [6, 3, 1],
            "recency_days": [2, 10, 200],
            "first_purchase_date": [date(2025, 1, 1)] * n,
            "reactivation_gap_days": [5, 20, None],
            "sessions_90d": [9, 5, 0],
            "engagement_score": [12, 6, 0],
            "online_share": [0.9, 0.8, 0.0],
            "r_score": [5, 4, 1],
            "f_score": [5, 3, 1],
            "m_score": [5, 3, 1],
            "fm_score": [5, 3, 1],
            "rfm_segment": ["champions", "potential_loyalist", "lost"],
            "rfm_segment_name": ["冠军客户", "潜力客户", "流失客户"],
            "value_class": ["important_value", "general_development", "general_retention"],
            "value_class_name": ["重要价值客户", "一般发展客户", "一般挽留客户"],
            "monetary_grade": ["A", "B", "C"],
            "frequency_grade": ["A", "B", "C"],
            "engagement_grade": ["A", "B", None],
            "overall_grade": ["A", "B", "C"],
            "lifecycle_stage": ["active", "active", "churned"],
            "lifecycle_stage_previous": ["active", "new", "at_risk"],
            "lifecycle_stage_since": [date(2026, 10, 1), date(2026, 11, 20), D],
            "value_tier": ["high_value", "high_value", "low_value"],
            "value_tier_computed": ["high_value", "general", "low_value"],
            "value_tier_name": ["高价值", "高价值", "低价值"],
            "cluster_id": [0, 0, 1],
            "cluster_name": ["high spend", "high spend", "lapsed"],
            "tag_cart_abandoner": [False, True, False],
            "tags": [[], ["cart_abandoner"], []],
            "overridden_fields": [[], ["value_tier"], []],
        }
    )
    seg.write_parquet(pub / "current" / "customer_segments.parquet")
    pl.DataFrame(
        {
            "snapshot_date": [D] * 3,
            "metric": ["frequency", "monetary", "recency_days"],
            "score": [3, 3, 4],
            "min_value": [2.0, 250.0, 8.0],
            "max_value": [4.0, 400.0, 30.0],
        }
    ).write_parquet(pub / "current" / "rfm_cut_points.parquet")
    pl.DataFrame(
        {
            "snapshot_date": [D],
            "line": [2],
            "customer_id": ["C2"],
            "field": ["value_tier"],
            "value": ["高价值"],
            "computed_value": ["general"],
            "status": ["applied"],
            "detail": ["value_tier: general -> high_value"],
            "reason": ["key account"],
            "author": ["li.na"],
            "expires": [date(2026, 12, 31)],
        }
    ).write_parquet(pub / "current" / "override_audit.parquet")
    wh = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(wh))
    z = {
        "monetary": math.log1p(300),
        "frequency": math.log1p(3),
        "recency_days": math.log1p(10),
        "sessions_90d": math.log1p(5),
    }
    rows = [(D, 0, f, v, 0.0, 1.0) for f, v in z.items()]
    rows += [(D, 1, f, v + (3.0 if f == "monetary" else 0.0), 0.0, 1.0) for f, v in z.items()]
    con.execute(
        "create table cluster_centroids (snapshot_date date, cluster_id bigint, feature varchar, "
        "center_std double, scale_mean double, scale_std double)"
    )
    con.executemany("insert into cluster_centroids values (?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return pub, wh


def test_explain_gives_every_reason_for_a_hand_made_customer(tmp_path: Path) -> None:
    pub, wh = _published(tmp_path)
    p = portrait(pub, "C2", SETTINGS, warehouse=wh)
    assert p["snapshot_date"] == "2026-11-21"
    assert p["rfm"]["f_score"] == {"score": 3, "value": 3, "range": [2.0, 4.0]}
    assert p["rfm"]["m_score"] == {"score": 3, "value": 300.0, "range": [250.0, 400.0]}
    assert p["rfm"]["cell"] == {"r": 4, "fm": 3, "rfm_segment": "potential_loyalist", "rfm_segment_name": "潜力客户"}
    # Pareto: customers with monetary >= 300 make (600 + 300) / 1000 of the total -> B (0.8 < 0.9 <= 0.95)
    assert p["grades"]["monetary"]["cumulative_share"] == pytest.approx(0.9)
    assert p["grades"]["frequency"]["cumulative_share"] == pytest.approx(0.9)  # (6 + 3) / 10
    assert p["grades"]["engagement"]["cumulative_share"] == pytest.approx(1.0)  # (12 + 6) / 18 among graded
    assert p["lifecycle"] == {"stage": "active", "rule": "last purchase 10 days ago (<= 90)"}
    assert p["cluster"]["next_nearest"] == {"cluster_id": 1, "distance": 3.0}
    assert p["cluster"]["distances"]["0"] == 0.0
    tier = p["classifications"]["value_tier"]
    assert (tier["value"], tier["display"], tier["computed"]) == ("high_value", "高价值", "general")
    assert tier["rule"] == "overall_grade in ('A', 'B')"  # rule 4 of the defaults fired for the computed value
    assert p["tags"] == ["cart_abandoner"] and p["tag_rules"] == {
        "cart_abandoner": "add_to_carts_30d > 0 and orders_30d = 0"
    }
    assert p["overrides"][0]["status"] == "applied" and p["overridden_fields"] == ["value_tier"]
    assert p["history"]["lifecycle_stage"] == {"current": "active", "previous": "new", "since": "2026-11-20"}
    text = render_portrait(p)
    for line in (
        "Customer C2 — snapshot 2026-11-21",
        "  m_score  300.0 -> 3  (range [250.0, 400.0])",
        "  segment map cell R4 x FM3 -> potential_loyalist (潜力客户)",
        "  monetary    B  cumulative share 0.9000 (A <= 0.8, B <= 0.95)",
        "Lifecycle: active — last purchase 10 days ago (<= 90)",
        "Cluster: 0 high spend; next nearest 1 at distance 3.0",
        "  value_tier           high_value (高价值)  <- overall_grade in ('A', 'B')  [override; computed general]",
        "Tags: cart_abandoner",
        "  line 2: value_tier = 高价值 [applied] value_tier: general -> high_value — key account "
        "(li.na, expires 2026-12-31)",
        "  lifecycle_stage          active / new / 2026-11-20",
    ):
        assert line in text.splitlines(), line


def test_explain_names_what_is_missing(tmp_path: Path) -> None:
    pub, _ = _published(tmp_path)
    with pytest.raises(ExplainError, match="no customer 'C9'"):
        portrait(pub, "C9", SETTINGS)
    with pytest.raises(ExplainError, match="snapshot_date=2026-01-01"):
        portrait(pub, "C2", SETTINGS, as_of=date(2026, 1, 1))


def test_pareto_share_weighs_negative_spend_as_zero_like_the_grader(tmp_path: Path) -> None:
    """Net spend 100, 50, 30, -40: the grader's total is 180, so 50 sits at 150/180 (B), not 150/140."""
    import duckdb
    import polars as pl

    from models.explain import _grade_shares
    from models.grades import grade_table
    from models.settings import load_segmentation_settings

    settings = load_segmentation_settings({})
    spend = pl.Series([100.0, 50.0, 30.0, -40.0])
    grades = dict(grade_table(spend, "pareto", settings.grades.cutoffs).iter_rows())
    frame = pl.DataFrame({"customer_id": list("abcd"), "monetary": spend, "monetary_grade": [grades[v] for v in spend]})
    frame.write_parquet(tmp_path / "s.parquet")
    row = frame.row(1, named=True)
    with duckdb.connect() as con:
        out = _grade_shares(con, str(tmp_path / "s.parquet"), row, settings)
    assert out["monetary"]["grade"] == "B"
    assert out["monetary"]["cumulative_share"] == pytest.approx(150 / 180)
