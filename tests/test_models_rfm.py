"""RFM scores: quantiles with heavy ties, fixed thresholds at exact boundaries, FM, cut points."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.rfm import CUT_POINTS_SCHEMA, fm_score, score_rfm
from models.settings import load_segmentation_settings

SNAPSHOT = date(2026, 11, 21)


def _frame(recency: list[int | None], frequency: list[int], monetary: list[str], buyer: list[bool]) -> pl.DataFrame:
    n = len(recency)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i:02d}" for i in range(n)],
            "recency_days": recency,
            "frequency": frequency,
            "monetary": [Decimal(m) for m in monetary],
            "is_buyer": buyer,
        },
        schema={
            "customer_id": pl.String,
            "recency_days": pl.Int64,
            "frequency": pl.Int64,
            "monetary": pl.Decimal(18, 2),
            "is_buyer": pl.Boolean,
        },
    )


# 10 buyers (half of them bought once) + 2 non-buyers.
TIED = _frame(
    recency=[0, 5, 5, 10, 30, 30, 30, 90, 200, 400, None, None],
    frequency=[1, 1, 1, 1, 1, 2, 2, 3, 5, 8, 0, 0],
    monetary=["10", "20", "30", "40", "50", "60", "70", "80", "90", "100", "0", "0"],
    buyer=[True] * 10 + [False] * 2,
)


def test_quantile_scores_hand_computed_with_heavy_ties() -> None:
    # score = 1 + floor(5 * buyers-with-a-worse-value / 10), per distinct value.
    # F: 1 (5 buyers, 0 worse) -> 1; 2 (5 worse) -> 3; 3 (7 worse) -> 4; 5 (8) -> 5; 8 (9) -> 5.
    # R (fewer days better): 400 (0 worse) -> 1; 200 (1) -> 1; 90 (2) -> 2; 30 (3) -> 2;
    #   10 (6) -> 4; 5 (7) -> 4; 0 (9) -> 5.
    # M (no ties): plain quintiles 1,1,2,2,3,3,4,4,5,5.
    result = score_rfm(TIED, load_segmentation_settings().rfm, SNAPSHOT)
    expected = pl.DataFrame(
        {
            "r_score": [5, 4, 4, 4, 2, 2, 2, 2, 1, 1, None, None],
            "f_score": [1, 1, 1, 1, 1, 3, 3, 4, 5, 5, None, None],
            "m_score": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, None, None],
            # FM = (F + M + 1) // 2
            "fm_score": [1, 1, 2, 2, 2, 3, 4, 4, 5, 5, None, None],
        },
        schema={c: pl.Int64 for c in ("r_score", "f_score", "m_score", "fm_score")},
    )
    assert_frame_equal(result.frame.select(expected.columns), expected)


@pytest.mark.parametrize("column,score", [("recency_days", "r_score"), ("frequency", "f_score")])
def test_equal_values_always_get_equal_scores(column: str, score: str) -> None:
    scored = score_rfm(TIED, load_segmentation_settings().rfm, SNAPSHOT).frame.filter(pl.col("is_buyer"))
    per_value = scored.group_by(column).agg(pl.col(score).n_unique().alias("scores"))
    assert per_value["scores"].to_list() == [1] * per_value.height


def test_quantile_warns_when_fewer_than_five_scores_are_reachable() -> None:
    result = score_rfm(TIED, load_segmentation_settings().rfm, SNAPSHOT)
    assert len(result.warnings) == 2
    assert "recency_days" in result.warnings[0] and "[1, 2, 4, 5]" in result.warnings[0]
    assert "frequency" in result.warnings[1] and "[1, 3, 4, 5]" in result.warnings[1]


def test_all_buyers_tied_score_one_and_warn() -> None:
    frame = _frame([10] * 4, [1] * 4, ["5"] * 4, [True] * 4)
    result = score_rfm(frame, load_segmentation_settings().rfm, SNAPSHOT)
    assert result.frame["f_score"].to_list() == [1, 1, 1, 1]
    assert len(result.warnings) == 3


def test_quantile_cut_points_are_observed_ranges_per_score() -> None:
    cut = score_rfm(TIED, load_segmentation_settings().rfm, SNAPSHOT).cut_points
    freq = cut.filter(pl.col("metric") == "frequency").drop("snapshot_date", "metric", "method")
    expected = pl.DataFrame(
        {
            "score": [1, 3, 4, 5],
            "min_value": [Decimal("1"), Decimal("2"), Decimal("3"), Decimal("5")],
            "max_value": [Decimal("1"), Decimal("2"), Decimal("3"), Decimal("8")],
            "customers": [5, 2, 1, 2],
        },
        schema={
            "score": pl.Int64,
            "min_value": pl.Decimal(18, 2),
            "max_value": pl.Decimal(18, 2),
            "customers": pl.Int64,
        },
    )
    assert_frame_equal(freq, expected)
    assert cut.schema == pl.Schema(CUT_POINTS_SCHEMA)
    assert cut["snapshot_date"].unique().to_list() == [SNAPSHOT]
    assert cut["method"].unique().to_list() == ["quantile"]
    assert cut["metric"].unique(maintain_order=True).to_list() == ["recency_days", "frequency", "monetary"]


BOUNDARY = _frame(
    recency=[0, 30, 31, 60, 61, 90, 91, 180, 181],
    frequency=[1, 1, 2, 3, 4, 5, 7, 8, 20],
    monetary=["-5.00", "199.99", "200.00", "499.99", "500.00", "999.99", "1000.00", "2999.99", "3000.00"],
    buyer=[True] * 9,
)


def test_fixed_thresholds_at_exact_boundaries() -> None:
    # R: 0–30 = 5, 31–60 = 4, 61–90 = 3, 91–180 = 2, > 180 = 1.
    # F lower bounds [2, 3, 5, 8]; M lower bounds [200, 500, 1000, 3000].
    settings = load_segmentation_settings({"rfm": {"method": "fixed"}}).rfm
    scored = score_rfm(BOUNDARY, settings, SNAPSHOT).frame
    assert scored["r_score"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1]
    assert scored["f_score"].to_list() == [1, 1, 2, 3, 3, 4, 4, 5, 5]
    assert scored["m_score"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5]


def test_fixed_cut_points_publish_the_configured_ranges() -> None:
    settings = load_segmentation_settings({"rfm": {"method": "fixed"}}).rfm
    cut = score_rfm(BOUNDARY, settings, SNAPSHOT).cut_points

    def rows(metric: str) -> list[tuple[int, Decimal | None, Decimal | None, int]]:
        part = cut.filter(pl.col("metric") == metric)
        return list(part.select("score", "min_value", "max_value", "customers").iter_rows())

    d = Decimal
    assert rows("recency_days") == [
        (1, d("181"), None, 1),
        (2, d("91"), d("180"), 2),
        (3, d("61"), d("90"), 2),
        (4, d("31"), d("60"), 2),
        (5, None, d("30"), 2),
    ]
    assert rows("monetary") == [
        (1, None, d("199.99"), 2),
        (2, d("200"), d("499.99"), 2),
        (3, d("500"), d("999.99"), 2),
        (4, d("1000"), d("2999.99"), 2),
        (5, d("3000"), None, 1),
    ]
    assert cut["method"].unique().to_list() == ["fixed"]


def test_fixed_thresholds_are_configurable() -> None:
    settings = load_segmentation_settings({"rfm": {"method": "fixed", "fixed": {"recency_days": [7, 14, 30, 60]}}}).rfm
    scored = score_rfm(BOUNDARY, settings, SNAPSHOT).frame
    assert scored["r_score"].to_list() == [5, 3, 2, 2, 1, 1, 1, 1, 1]
    assert settings.fixed.frequency == [2, 3, 5, 8]  # untouched keys keep their defaults


@pytest.mark.parametrize(
    "f,m,fm",
    [(3, 4, 4), (1, 2, 2), (2, 3, 3), (1, 4, 3), (2, 5, 4), (4, 5, 5), (1, 1, 1), (5, 5, 5), (4, 1, 3), (3, 3, 3)],
)
def test_fm_is_rounded_half_up(f: int, m: int, fm: int) -> None:
    out = pl.DataFrame({"f": [f], "m": [m]}).select(fm_score(pl.col("f"), pl.col("m")))
    assert out.item() == fm


def test_non_buyers_get_no_scores_even_with_values() -> None:
    frame = _frame([5, 5], [3, 3], ["100", "100"], [True, False])
    scored = score_rfm(frame, load_segmentation_settings().rfm, SNAPSHOT).frame
    assert scored.row(1, named=True) | {"customer_id": "x"} == {
        "customer_id": "x",
        "recency_days": 5,
        "frequency": 3,
        "monetary": Decimal("100.00"),
        "is_buyer": False,
        "r_score": None,
        "f_score": None,
        "m_score": None,
        "fm_score": None,
    }


def test_no_buyers_gives_empty_cut_points_and_a_warning() -> None:
    frame = _frame([None], [0], ["0"], [False])
    result = score_rfm(frame, load_segmentation_settings().rfm, SNAPSHOT)
    assert result.cut_points.height == 0
    assert result.cut_points.schema == pl.Schema(CUT_POINTS_SCHEMA)
    assert result.warnings and "no buyers" in result.warnings[0]
