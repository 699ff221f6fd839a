"""segment_customers end to end on a tiny snapshot: columns, order, determinism, input errors."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.pipeline import OUTPUT_COLUMNS, SegmentationResult, segment_customers
from models.settings import load_segmentation_settings

SNAPSHOT = date(2026, 11, 21)

# customer, frequency, monetary, recency, days since first purchase, gap, sessions_90d, carts_90d
CUSTOMERS: list[tuple[str, int, str, int | None, int | None, int | None, int, int]] = [
    ("c01", 9, "5000.00", 10, 400, None, 30, 6),  # R5 F5 M5 -> champions, important_value
    ("c02", 1, "80.00", 5, 5, None, 4, 1),  # R5 F1 M1 -> new (segment and stage)
    ("c03", 3, "600.00", 75, 300, None, 2, 0),  # R3 F3 M3 -> need_attention
    ("c04", 6, "3500.00", 200, 700, None, 0, 0),  # R1 F4 M5 -> FM5 cant_lose, churned
    ("c05", 2, "150.00", 120, 400, None, 1, 0),  # R2 F2 M1 -> FM2 hibernating, at_risk
    ("c06", 1, "20.00", 400, 400, None, 0, 0),  # R1 F1 M1 -> lost
    ("c07", 4, "1200.00", 20, 600, 250, 12, 3),  # R5 F3 M4 -> FM4 champions, reactivated
    ("c08", 2, "250.00", 45, 200, None, 3, 1),  # R4 F2 M2 -> FM2 potential_loyalist
    ("c09", 5, "900.00", 150, 500, None, 1, 0),  # R2 F4 M3 -> FM4 at_risk
    ("c10", 1, "-15.00", 60, 60, None, 0, 0),  # fully refunded: R4 F1 M1 -> promising
    ("p01", 0, "0.00", None, None, None, 25, 8),  # prospect, highly engaged
    ("p02", 0, "0.00", None, None, None, 0, 0),  # prospect
]


def _features(rows: list[tuple] = CUSTOMERS, snapshot: date = SNAPSHOT) -> pl.DataFrame:
    def first(days: int | None) -> date | None:
        return None if days is None else snapshot - timedelta(days=days)

    return pl.DataFrame(
        {
            "snapshot_date": [snapshot] * len(rows),
            "customer_id": [r[0] for r in rows],
            "frequency": [r[1] for r in rows],
            "monetary": [Decimal(r[2]) for r in rows],
            "recency_days": [r[3] for r in rows],
            "first_purchase_date": [first(r[4]) for r in rows],
            "last_purchase_date": [first(r[3]) for r in rows],
            "is_buyer": [r[1] > 0 for r in rows],
            "orders_30d": [1 if r[3] is not None and r[3] <= 30 else 0 for r in rows],
            "reactivation_gap_days": [r[5] for r in rows],
            "tenure_days": [r[4] for r in rows],
            "sessions_90d": [r[6] for r in rows],
            "add_to_carts_90d": [r[7] for r in rows],
            "avg_rating": [None] * len(rows),
        },
        schema_overrides={
            "monetary": pl.Decimal(18, 2),
            "recency_days": pl.Int64,
            "first_purchase_date": pl.Date,
            "last_purchase_date": pl.Date,
            "reactivation_gap_days": pl.Int64,
            "tenure_days": pl.Int64,
            "avg_rating": pl.Float64,
        },
    )


@pytest.fixture(scope="module")
def fixed_result() -> SegmentationResult:
    settings = load_segmentation_settings({"rfm": {"method": "fixed"}, "clusters": {"k": 3}})
    return segment_customers(_features(), settings, SNAPSHOT)


def test_output_is_features_plus_new_columns_one_row_per_customer(fixed_result: SegmentationResult) -> None:
    out = fixed_result.customers
    prediction = ["p_alive", "expected_purchases_90d", "clv_365d", "predicted_churn"]  # null until predicted
    base = [*_features().columns, *OUTPUT_COLUMNS]
    assert out.columns[: len(base)] == base
    # then the classifications of the config other than value tier, one flag per tag, the tag list and the
    # prediction placeholders
    rest = out.columns[len(base) :]
    assert rest[:2] == ["customer_source", "customer_source_name"] and rest[-5] == "tags"
    assert "tag_high_value_active" in rest
    assert rest[-4:] == prediction
    assert out.select(prediction).null_count().row(0) == (out.height,) * 4
    assert out["customer_id"].to_list() == sorted(r[0] for r in CUSTOMERS)
    assert_frame_equal(out.select(_features().columns), _features().sort("customer_id"))


def test_hand_checked_segments_and_stages(fixed_result: SegmentationResult) -> None:
    # Fixed thresholds: R <=30:5 <=60:4 <=90:3 <=180:2 else 1; F >=2:2 >=3:3 >=5:4 >=8:5;
    # M >=200:2 >=500:3 >=1000:4 >=3000:5; FM = (F + M + 1) // 2.
    columns = ["customer_id", "r_score", "f_score", "m_score", "fm_score", "rfm_segment", "lifecycle_stage"]
    rows = [
        ("c01", 5, 5, 5, 5, "champions", "active"),
        ("c02", 5, 1, 1, 1, "new", "new"),
        ("c03", 3, 3, 3, 3, "need_attention", "active"),
        ("c04", 1, 4, 5, 5, "cant_lose", "churned"),
        ("c05", 2, 2, 1, 2, "hibernating", "at_risk"),
        ("c06", 1, 1, 1, 1, "lost", "churned"),
        ("c07", 5, 3, 4, 4, "champions", "reactivated"),
        ("c08", 4, 2, 2, 2, "potential_loyalist", "active"),
        ("c09", 2, 4, 3, 4, "at_risk", "at_risk"),
        ("c10", 4, 1, 1, 1, "promising", "active"),
        ("p01", None, None, None, None, None, "prospect"),
        ("p02", None, None, None, None, None, "prospect"),
    ]
    expected = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            **{c: pl.Int64 for c in ("r_score", "f_score", "m_score", "fm_score")},
            "rfm_segment": pl.String,
            "lifecycle_stage": pl.String,
        },
        orient="row",
    )
    got = fixed_result.customers.select(columns)
    assert_frame_equal(got, expected)
    champion = fixed_result.customers.row(0, named=True)
    assert (champion["rfm_segment_name"], champion["value_class"], champion["value_class_name"]) == (
        "冠军客户",
        "important_value",
        "重要价值客户",
    )


def test_prospects_get_engagement_and_tier_but_no_buyer_fields(fixed_result: SegmentationResult) -> None:
    prospects = fixed_result.customers.filter(pl.col("customer_id").str.starts_with("p"))
    for column in ("value_class", "monetary_grade", "frequency_grade", "overall_grade", "cluster_id"):
        assert prospects[column].null_count() == 2, column
    # engagement (sessions + carts) totals 97; c01 36 then p01 33 end at 69/97 = 0.71 -> A; p02 = 0 -> C.
    assert prospects["engagement_grade"].to_list() == ["A", "C"]
    assert prospects["value_tier"].to_list() == ["potential", "low_value"]
    assert prospects["value_tier_name"].to_list() == ["潜力", "低价值"]


def test_every_buyer_has_scores_segment_grades_and_cluster(fixed_result: SegmentationResult) -> None:
    buyers = fixed_result.customers.filter(pl.col("is_buyer"))
    assert buyers.select(OUTPUT_COLUMNS).null_count().sum_horizontal().item() == 0
    assert fixed_result.customers["lifecycle_stage"].null_count() == 0
    assert fixed_result.cluster_profiles["customers"].sum() == buyers.height
    assert fixed_result.cluster_profiles["cluster_name"].n_unique() == fixed_result.cluster_profiles.height


def test_params_record_what_metadata_needs(fixed_result: SegmentationResult) -> None:
    params = fixed_result.params
    assert params["random_state"] == 42 and params["k"] == 3
    assert (params["rfm_method"], params["segment_map"], params["grade_method"]) == ("fixed", "rfm_11", "pareto")
    assert (params["customers"], params["buyers"], params["snapshot_date"]) == (12, 10, "2026-11-21")
    assert params["settings"]["lifecycle"]["churn_days"] == 180


def test_shuffled_rows_give_the_same_result() -> None:
    settings = load_segmentation_settings({"clusters": {"k": 3}})
    a = segment_customers(_features(), settings, SNAPSHOT)
    b = segment_customers(_features().sample(fraction=1.0, shuffle=True, seed=11), settings, SNAPSHOT)
    for name in ("customers", "cut_points", "cluster_profiles", "centroids"):
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.warnings == b.warnings


@pytest.mark.parametrize("refit_every_days", [0, 7])
def test_previous_centroids_flow_through(refit_every_days: int) -> None:
    """Re-fitted (ids matched to the previous centroids) or reused (the stored fit): the same clusters."""
    settings = load_segmentation_settings({"clusters": {"k": 3, "refit_every_days": refit_every_days}})
    first = segment_customers(_features(), settings, SNAPSHOT)
    nxt = _features(snapshot=SNAPSHOT + timedelta(days=1))
    second = segment_customers(nxt, settings, SNAPSHOT + timedelta(days=1), previous_centroids=first.centroids)
    assert second.params["clusters"]["refit"] is (refit_every_days == 0)
    if refit_every_days == 0:
        assert second.params["clusters"]["matched_previous"] is True
    else:
        assert second.params["clusters"]["fitted_date"] == SNAPSHOT.isoformat()
    assert_frame_equal(
        first.customers.select("customer_id", "cluster_id"), second.customers.select("customer_id", "cluster_id")
    )


def test_duplicate_customer_ids_are_refused() -> None:
    frame = pl.concat([_features(), _features().head(1)])
    with pytest.raises(ValueError, match=r"duplicate customer_id values, e.g. \['c01'\]"):
        segment_customers(frame, load_segmentation_settings(), SNAPSHOT)


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['is_buyer'\]"):
        segment_customers(_features().drop("is_buyer"), load_segmentation_settings(), SNAPSHOT)


def test_one_snapshot_at_a_time() -> None:
    frame = pl.concat([_features(CUSTOMERS[:2]), _features(CUSTOMERS[2:4], snapshot=SNAPSHOT + timedelta(days=1))])
    with pytest.raises(ValueError, match="one snapshot at a time"):
        segment_customers(frame, load_segmentation_settings(), SNAPSHOT)


def test_empty_snapshot_gives_empty_outputs() -> None:
    result = segment_customers(_features().head(0), load_segmentation_settings(), SNAPSHOT)
    assert result.customers.height == 0
    assert result.customers.columns[: len(_features().columns) + len(OUTPUT_COLUMNS)] == [
        *_features().columns,
        *OUTPUT_COLUMNS,
    ]
    assert result.cut_points.height == 0 and result.cluster_profiles.height == 0


def test_orders_only_data_reaches_high_value_and_says_so_once() -> None:
    """Defect: without browsing, overall topped out at B and high_value was unreachable, silently."""
    orders_only = _features().with_columns(sessions_90d=pl.lit(0, pl.Int64), add_to_carts_90d=pl.lit(0, pl.Int64))
    settings = load_segmentation_settings({"rfm": {"method": "fixed"}, "clusters": {"k": 3}})
    result = segment_customers(orders_only, settings, SNAPSHOT)
    out = result.customers
    assert out["engagement_grade"].null_count() == out.height
    c01 = out.filter(pl.col("customer_id") == "c01").row(0, named=True)
    assert (c01["overall_grade"], c01["value_tier"]) == ("A", "high_value")
    grade_warnings = [w for w in result.warnings if w.startswith("grades:")]
    assert len(grade_warnings) == 1 and "engagement" in grade_warnings[0]
