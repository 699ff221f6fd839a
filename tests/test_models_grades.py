"""A/B/C grades: Pareto with ties and exact boundaries, rank quantiles, non-buyers, overall grade."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from models.grades import grade_customers, grade_table, overall_grade_expr
from models.settings import Cutoffs, load_segmentation_settings

PARETO = Cutoffs(a=0.80, b=0.95)
QUANTILE = Cutoffs(a=0.20, b=0.50)


def _grades(values: list, method: str, cutoffs: Cutoffs, dtype: pl.DataType | None = None) -> list[str | None]:
    series = pl.Series("v", values, dtype=dtype or pl.Int64())
    table = grade_table(series, method, cutoffs)
    joined = pl.DataFrame({"value": series}).join(table, on="value", how="left", maintain_order="left")
    return joined["grade"].to_list()


def test_pareto_grades_hand_computed_with_ties_and_the_95_percent_boundary() -> None:
    # Positive total 1000. Cumulative share at the END of each distinct value's group:
    # 500 -> 0.50 A; 200 -> 0.70 A; 100,100 -> 0.90 B (both); 50 -> 0.95 B (exactly on the cut);
    # 30 -> 0.98 C; 10,10 -> 1.00 C; 0 and negative -> C.
    values = [500, 200, 100, 100, 50, 30, 10, 10, 0, -20]
    assert _grades(values, "pareto", PARETO) == ["A", "A", "B", "B", "B", "C", "C", "C", "C", "C"]


def test_pareto_is_exact_on_decimal_money_at_the_80_percent_boundary() -> None:
    # Total 0.35: 0.20 -> 0.571 A; 0.28 -> exactly 0.80 A (in floats 0.28 / 0.35 = 0.8000000000000002,
    # which would wrongly give B); 0.32 -> 0.914 B; 0.35 -> 1.0 C.
    values = [Decimal(v) for v in ("0.20", "0.08", "0.04", "0.03")]
    assert _grades(values, "pareto", PARETO, pl.Decimal(18, 2)) == ["A", "A", "B", "C"]


def test_pareto_tie_group_is_graded_by_the_share_at_its_end() -> None:
    # 40 -> 0.40 A; the two 30s end at 1.00 -> both C, although the first 30 alone would end at 0.70.
    assert _grades([40, 30, 30], "pareto", PARETO) == ["A", "C", "C"]


def test_pareto_top_group_is_always_a() -> None:
    # One customer holds 100 % of the total: A (not C); zero engagement is C.
    assert _grades([10, 0, 0], "pareto", PARETO) == ["A", "C", "C"]


def test_quantile_grades_top_20_next_30_with_ties() -> None:
    # 10 customers; cumulative customer share at the end of each group:
    # 9 -> 0.1 A; 7,7 -> 0.3 B; 5 -> 0.4 B; 4 -> 0.5 B (on the cut); 3 -> 0.6 C; 2,2 -> 0.8 C; 1 -> C;
    # 0 -> C (zero is always C).
    values = [9, 7, 7, 5, 4, 3, 2, 2, 1, 0]
    assert _grades(values, "quantile", QUANTILE) == ["A", "B", "B", "B", "B", "C", "C", "C", "C", "C"]


def test_equal_values_get_equal_grades() -> None:
    values = [5, 5, 5, 4, 4, 3, 3, 3, 3, 1, 1, 1]
    for method, cut in (("pareto", PARETO), ("quantile", QUANTILE)):
        graded = pl.DataFrame({"v": values, "g": _grades(values, method, cut)})
        assert graded.group_by("v").agg(pl.col("g").n_unique())["g"].max() == 1


def _customers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "is_buyer": [True, True, True, True, False, False],
            "monetary": [Decimal(v) for v in ("700.00", "200.00", "50.00", "50.00", "0.00", "0.00")],
            "frequency": [5, 3, 1, 1, 0, 0],
            "sessions_90d": [1, 10, None, 0, 30, 0],
            "add_to_carts_90d": [0, 5, 0, 0, 10, 0],
        },
        schema_overrides={"monetary": pl.Decimal(18, 2)},
    )


def test_grade_customers_hand_computed() -> None:
    # monetary total 1000: 700 -> 0.70 A; 200 -> 0.90 B; 50,50 -> 1.00 C.
    # frequency total 10: 5 -> 0.5 A; 3 -> 0.8 A; 1,1 -> 1.0 C.
    # engagement (sessions + carts, null = 0), everyone: e=40, b=15, a=1, c=0, d=0, f=0; total 56:
    #   40 -> 0.714 A; 15 -> 0.982 C (> 0.95); 1 -> 1.0 C; zeros C.
    # overall (buyers): a A,A,C -> 7/3 -> B; b B,A,C -> 2 -> B; c,d C,C,C -> C.
    out = grade_customers(_customers(), load_segmentation_settings().grades)
    expected = pl.DataFrame(
        {
            "engagement_score": [1, 15, 0, 0, 40, 0],
            "monetary_grade": ["A", "B", "C", "C", None, None],
            "frequency_grade": ["A", "A", "C", "C", None, None],
            "engagement_grade": ["C", "C", "C", "C", "A", "C"],
            "overall_grade": ["B", "B", "C", "C", None, None],
        }
    )
    assert_frame_equal(out.select(expected.columns), expected)


def test_non_buyers_get_no_monetary_frequency_or_overall_grade() -> None:
    out = grade_customers(_customers(), load_segmentation_settings().grades).filter(~pl.col("is_buyer"))
    assert out.select("monetary_grade", "frequency_grade", "overall_grade").null_count().row(0) == (2, 2, 2)
    assert out["engagement_grade"].null_count() == 0


def test_quantile_method_and_cutoffs_are_configurable() -> None:
    settings = load_segmentation_settings({"grades": {"method": "quantile", "quantile": {"a": 0.25}}}).grades
    out = grade_customers(_customers(), settings)
    # 4 buyers by monetary: 700 -> 0.25 A; 200 -> 0.5 B; 50,50 -> 1.0 C.
    assert out["monetary_grade"].to_list() == ["A", "B", "C", "C", None, None]


@pytest.mark.parametrize(
    "grades,overall",
    [
        (["A", "A", "C"], "B"),  # 2.33
        (["A", "A", "B"], "A"),  # 2.67
        (["A", "B", "C"], "B"),  # 2.00
        (["A", "C", "C"], "B"),  # 1.67
        (["B", "C", "C"], "C"),  # 1.33
        (["A", "B", None], "A"),  # 2.5 rounds half up
        (["B", "C", None], "B"),  # 1.5 rounds half up
        ([None, None, None], None),
    ],
)
def test_overall_grade_is_mean_of_points_rounded_half_up(grades: list[str | None], overall: str | None) -> None:
    frame = pl.DataFrame({"x": [grades[0]], "y": [grades[1]], "z": [grades[2]]}, schema={c: pl.String for c in "xyz"})
    out = frame.select(overall_grade_expr(["x", "y", "z"]).alias("overall"))
    assert_series_equal(out["overall"], pl.Series("overall", [overall], dtype=pl.String))


def test_engagement_columns_must_exist() -> None:
    settings = load_segmentation_settings({"grades": {"engagement_columns": ["nope"]}}).grades
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        grade_customers(_customers(), settings)


def test_without_browsing_engagement_is_ungraded_and_overall_uses_the_other_bases() -> None:
    """Defect: with no browsing every engagement grade was C, so overall topped out at B, silently."""
    frame = _customers().with_columns(sessions_90d=pl.lit(None, pl.Int64), add_to_carts_90d=pl.lit(0, pl.Int64))
    warnings: list[str] = []
    out = grade_customers(frame, load_segmentation_settings().grades, warnings=warnings)
    # monetary A,B,C,C and frequency A,A,C,C (as in the hand-computed test); overall over those two only:
    # a (3+3)/2 = 3 -> A; b (2+3)/2 = 2.5 -> A (half up); c, d C.
    assert out["engagement_grade"].to_list() == [None] * 6
    assert out["overall_grade"].to_list() == ["A", "A", "C", "C", None, None]
    assert len(warnings) == 1
    assert "engagement" in warnings[0] and "overall grade uses monetary, frequency" in warnings[0]


def test_no_warning_when_every_basis_has_data() -> None:
    warnings: list[str] = []
    grade_customers(_customers(), load_segmentation_settings().grades, warnings=warnings)
    assert warnings == []
