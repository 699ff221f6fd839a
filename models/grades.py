"""A/B/C grades on monetary, frequency and engagement, and an overall grade.

Tie rule (both methods). Customers are graded per DISTINCT value, sorted largest first, by the
cumulative share at the END of that value's tie group: a group gets A only if the whole group fits
within the A cut-off, B if it fits within the B cut-off, else C. So equal values always share a
grade, and A never holds more than the A cut-off (Pareto: of the total; quantile: of customers)
unless the exception below applies.
Shares are compared exactly (integer/decimal cross-multiplication, no float rounding).

Exception: the first (largest) tie group always gets A, so the top customer is never graded below
anyone else (e.g. one customer holding 100 % of the total is A, not C).

- pareto (default): share = cumulative metric total / overall total (a=0.80, b=0.95).
  Values <= 0 add nothing to the total and get C (e.g. zero engagement, net-refunded spend).
- quantile: share = cumulative customers / all graded customers (top a=20 %, up to b=50 %);
  values <= 0 get C as well.

Who is graded: monetary and frequency grades only for buyers (null otherwise); engagement for every
customer, where engagement_score = the sum of ``engagement_columns`` (default sessions_90d +
add_to_carts_90d, null counted as 0). Overall grade (buyers only, null for non-buyers): points
A=3, B=2, C=1 averaged over the available grades of ``overall_bases`` and rounded half up.

Absent sources: a basis has data when at least one graded customer has a positive value. A basis
without data (no browsing source, or nobody browsed in the window; no buyers) is not graded at all:
its grade is null for everyone instead of C, and the overall grade is the mean over the bases that
have data, so orders-only data can still reach an overall A (and the tiers built on it). The run says
so once: ``grade_customers`` appends one warning to ``warnings`` naming the bases left out.
"""

from __future__ import annotations

from fractions import Fraction

import polars as pl

from models.settings import Cutoffs, GradeSettings

GRADE_POINTS: dict[str, int] = {"A": 3, "B": 2, "C": 1}
GRADE_COLUMNS: tuple[str, ...] = ("monetary_grade", "frequency_grade", "engagement_grade", "overall_grade")


def _within(cum: pl.Expr, total: pl.Expr | int, cutoff: float) -> pl.Expr:
    """cum / total <= cutoff, exactly: cum × den <= total × num."""
    frac = Fraction(str(cutoff))
    return cum * frac.denominator <= total * frac.numerator


def grade_table(values: pl.Series, method: str, cutoffs: Cutoffs) -> pl.DataFrame:
    """Distinct value -> grade for the graded customers' ``values``; columns ``value, grade``."""
    dist = (
        pl.DataFrame({"value": values})
        .drop_nulls()
        .group_by("value")
        .agg(n=pl.len().cast(pl.Int64))
        .sort("value", descending=True)
    )
    positive = pl.col("value") > 0
    if method == "pareto":
        weight = pl.when(positive).then(pl.col("value") * pl.col("n")).otherwise(0)
        cum = weight.cum_sum()
        total = weight.sum()
    else:
        cum = pl.col("n").cum_sum()
        total = pl.col("n").sum()
    first = pl.int_range(pl.len()) == 0
    grade = (
        pl.when(~positive)
        .then(pl.lit("C"))
        .when(first | _within(cum, total, cutoffs.a))
        .then(pl.lit("A"))
        .when(_within(cum, total, cutoffs.b))
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
    )
    return dist.with_columns(grade=grade).select("value", "grade")


def grade_column(frame: pl.DataFrame, value_column: str, eligible: pl.Expr, method: str, cutoffs: Cutoffs) -> pl.Series:
    """Grade of every row of ``frame`` on ``value_column``; null where not eligible or value null."""
    values = frame.select(pl.when(eligible).then(pl.col(value_column)).alias("value"))
    table = grade_table(values["value"], method, cutoffs)
    return values.join(table, on="value", how="left", maintain_order="left", nulls_equal=False)["grade"]


def _points(column: str) -> pl.Expr:
    expr = pl.when(pl.col(column) == "A").then(pl.lit(3, pl.Int64))
    return expr.when(pl.col(column) == "B").then(2).when(pl.col(column) == "C").then(1)


def overall_grade_expr(columns: list[str]) -> pl.Expr:
    """Round-half-up mean of the grade points among the non-null ``columns``; null if none."""
    points = [_points(c) for c in columns]
    total = pl.sum_horizontal(points)
    count = pl.sum_horizontal([p.is_not_null().cast(pl.Int64) for p in points])
    mean_half_up = (2 * total + count) // (2 * count)  # floor(total / count + 1/2)
    return (
        pl.when(count == 0)
        .then(pl.lit(None, pl.String))
        .when(mean_half_up >= 3)
        .then(pl.lit("A"))
        .when(mean_half_up == 2)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
    )


def bases_with_data(frame: pl.DataFrame, basis_inputs: dict[str, tuple[str, pl.Expr]]) -> list[str]:
    """Bases (in the given order) where at least one eligible row has a positive value."""
    checks = [
        (pl.when(eligible).then(pl.col(column)) > 0).fill_null(False).any().alias(basis)
        for basis, (column, eligible) in basis_inputs.items()
    ]
    row = frame.select(checks).row(0, named=True) if frame.height else dict.fromkeys(basis_inputs, False)
    return [basis for basis in basis_inputs if row[basis]]


def engagement_score_expr(settings: GradeSettings) -> pl.Expr:
    """The engagement basis: the sum of ``grades.engagement_columns`` (nulls as 0)."""
    return pl.sum_horizontal([pl.col(c).fill_null(0) for c in settings.engagement_columns])


def basis_inputs(
    buyer_column: str = "is_buyer", monetary_column: str = "monetary", frequency_column: str = "frequency"
) -> dict[str, tuple[str, pl.Expr]]:
    """Basis -> (value column, who is eligible); ``engagement_score`` must already be a column."""
    is_buyer = pl.col(buyer_column).fill_null(False)
    return {
        "monetary": (monetary_column, is_buyer),
        "frequency": (frequency_column, is_buyer),
        "engagement": ("engagement_score", pl.lit(True)),
    }


def missing_bases_warning(settings: GradeSettings, with_data: list[str]) -> str | None:
    """The run warning when overall bases have no data (their grades null, the overall grade without them)."""
    dropped = [b for b in settings.overall_bases if b not in with_data]
    if not dropped:
        return None
    why = {
        "engagement": f"no customer has a positive {' + '.join(settings.engagement_columns)} "
        "(browsing source absent or empty in the window)",
        "monetary": "no buyer has positive net spend",
        "frequency": "no buyers",
    }
    used = [b for b in settings.overall_bases if b in with_data]
    return (
        "grades: no data for "
        + "; ".join(f"{b} ({why[b]})" for b in dropped)
        + f": {', '.join(f'{b}_grade' for b in dropped)} left null and the overall grade uses "
        + (", ".join(used) if used else "no basis (null)")
        + "; tier rules on those grades cannot match"
    )


def grade_customers(
    frame: pl.DataFrame,
    settings: GradeSettings,
    *,
    buyer_column: str = "is_buyer",
    monetary_column: str = "monetary",
    frequency_column: str = "frequency",
    warnings: list[str] | None = None,
) -> pl.DataFrame:
    """Add ``engagement_score`` and the four grade columns (see module docstring).

    A basis without data gets null grades and leaves the overall grade; one line is appended to
    ``warnings`` saying which bases were left out and why.
    """
    missing = [c for c in settings.engagement_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"grades.engagement_columns: columns {missing} are not in the features frame")
    is_buyer = pl.col(buyer_column).fill_null(False)
    out = frame.with_columns(engagement_score=engagement_score_expr(settings))
    inputs = basis_inputs(buyer_column, monetary_column, frequency_column)
    with_data = bases_with_data(out, inputs)
    cutoffs = settings.cutoffs
    out = out.with_columns(
        (
            grade_column(out, column, eligible, settings.method, cutoffs)
            if basis in with_data
            else pl.Series(values=[None] * out.height, dtype=pl.String)
        ).alias(f"{basis}_grade")
        for basis, (column, eligible) in inputs.items()
    )
    note = missing_bases_warning(settings, with_data)
    if note and warnings is not None and out.height:
        warnings.append(note)
    bases = [f"{b}_grade" for b in settings.overall_bases if b in with_data]
    overall = overall_grade_expr(bases) if bases else pl.lit(None, pl.String)
    return out.with_columns(pl.when(is_buyer).then(overall).otherwise(None).alias("overall_grade"))
