"""Classifications and tags on both engines: every shipped rule and every operator, against hand-worked labels.

DuckDB runs the compiled select as ``engine: duckdb`` does (``models.classifications`` default evaluator);
Spark runs the same parse trees compiled to Spark SQL through ``engines.rules`` as ``engine: spark`` does.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial

import polars as pl
import pytest

from engines.rules import evaluate_rules_on_engine
from models.classifications import apply_classifications, classification_sql, compile_settings_rules
from models.rules import SqlParams, compile_rule, matches, quote_identifier, to_sql
from models.settings import load_segmentation_settings

try:
    from tests.spark_helpers import make_engine
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from spark_helpers import make_engine

D = date(2026, 11, 21)
ENGINES = ["duckdb", "spark"]


def _classify(engine: str, frame: pl.DataFrame, overrides: dict | None = None) -> pl.DataFrame:
    settings = load_segmentation_settings(overrides or {})
    if engine == "duckdb":
        return apply_classifications(frame, settings)
    return apply_classifications(frame, settings, partial(evaluate_rules_on_engine, make_engine("spark")))


def _frame(n: int, **cols: pl.Series | list) -> pl.DataFrame:
    base = {"snapshot_date": [D] * n, "customer_id": [f"c{i:02d}" for i in range(n)]}
    return pl.DataFrame({**base, **cols})


def _money(*values: str | None) -> pl.Series:
    return pl.Series([None if v is None else Decimal(v) for v in values], dtype=pl.Decimal(18, 2))


def _ints(*values: int | None) -> pl.Series:
    return pl.Series(values, dtype=pl.Int64)


def _doubles(*values: float | None) -> pl.Series:
    return pl.Series(values, dtype=pl.Float64)


# Twelve customers; every rule of every shipped classification fires for at least one of them, every
# default is reached, and the boundaries (>= 0.3, >= 0.4, >= 4.5, >= 3, ages 17/18/120, > 5000) are on a row.
SHIPPED = _frame(
    12,
    overall_grade=["A", "C", None, "B", "A", "C", "C", None, "A", "B", "C", None],
    lifecycle_stage=[
        "active", "new", "prospect", "active", "churned", "active",
        "churned", "prospect", "at_risk", "at_risk", "reactivated", None,
    ],
    engagement_grade=["C", "B", "A", "A", "C", "C", "A", "B", "A", "A", "A", None],
    source_channel=["referral", "ads", "offline_store", None, "organic", None, None, None, None, None, "social", "ads"],
    online_share=_doubles(0.0, 0.5, 0.1, 0.9, None, 0.2, 0.3, 0.71, 0.7, None, 0.0, 0.35),
    offline_share=_doubles(1.0, 0.5, 0.9, 0.1, None, 0.8, 0.3, 0.29, 0.0, None, 1.0, 0.65),
    top_category=[
        None, "apparel", "beauty", "electronics", "grocery", "home",
        "sports", "toys", "books", "shoes", "jewelry", "toys",
    ],
    top_category_share=_doubles(None, 0.4, 0.5, 0.9, 1.0, 0.41, 0.6, 0.7, 0.45, 0.8, 0.55, 0.39),
    complaints_90d=_ints(1, 0, 0, 0, None, 0, None, None, 0, 2, None, 0),
    nps_class=[
        "promoter", "detractor", None, "promoter", None, "passive", None, None, None, "passive", "promoter", None,
    ],
    avg_rating=_doubles(5.0, None, 2.9, None, 4.5, 4.4, 3.0, None, 4.49, 4.0, 2.0, None),
    birth_year=_ints(2010, 2009, 2008, 2002, 2001, 1992, 1982, 1972, 1971, 1906, 1905, None),
    region=["华东", "华北", "华南", "华中", "西南", "西北", "东北", None, "Shanghai", "华东", "华东", "华东"],
    monetary=_money("5000.01", "5000.00", "9000.00", "9000.00", "100.00", None, "200.00", "300.00", "6000.00",
                    "0.00", "-5.00", None),
    frequency=_ints(10, 20, 9, 10, 1, 0, 2, 3, 12, 0, 1, None),
    recency_days=_ints(30, 1, 5, 31, 91, None, 180, 180, 180, 181, 90, None),
    add_to_carts_30d=_ints(0, 1, 2, None, 1, 0, 3, 1, 0, 0, 5, None),
    orders_30d=_ints(0, 0, 1, 0, None, 0, 0, 0, 1, 0, 0, None),
)  # fmt: skip

SHIPPED_EXPECTED = {
    # rule 0 (A, not churned: active and at_risk), rule 1 (new/reactivated, engaged A/B), rule 2 (engaged
    # prospect), rule 3 (B active engaged A), rule 4 (A/B otherwise), rule 5 (active C), default
    "value_tier": [
        "high_value", "potential", "potential", "potential", "general", "general",
        "low_value", "low_value", "high_value", "general", "potential", "low_value",
    ],
    # referral first; 0.3/0.3 is omnichannel (>=); offline 0.8 is a store; 0.71 online; 0.7 is not > 0.7;
    # 'social' with offline 1.0 is a store (the store rule comes first)
    "customer_source": [
        "referral", "omnichannel", "store", "online", "online", "store",
        "omnichannel", "online", "unknown", "unknown", "store", "omnichannel",
    ],
    # a share of exactly 0.4 prefers; 0.39 does not
    "preferred_category": [
        "no_purchase", "apparel", "beauty", "electronics", "grocery", "home",
        "sports", "toys", "books", "shoes", "jewelry", "mixed",
    ],
    # complaint / detractor / rating < 3 first; promoter or >= 4.5; passive or >= 3; no feedback
    "satisfaction": [
        "dissatisfied", "dissatisfied", "dissatisfied", "satisfied", "satisfied", "neutral",
        "neutral", "unknown", "neutral", "dissatisfied", "dissatisfied", "unknown",
    ],
    # 2026 - birth_year: 16 17 18 24 25 34 44 54 55 120 121 none
    "age_band": [
        "under_18", "under_18", "age_18_24", "age_18_24", "age_25_34", "age_25_34",
        "age_35_44", "age_45_54", "age_55_plus", "age_55_plus", "unknown", "unknown",
    ],
    "home_region": [
        "east", "north", "south", "central", "southwest", "northwest",
        "northeast", "unknown", "unknown", "east", "east", "east",
    ],
    # monetary > 5000 (5000.00 is not) and frequency >= 10 and recency <= 30
    "tag_high_value_active": [True] + [False] * 11,
    "tag_recent_complainer": [True, False, False, False, False, False, False, False, False, True, False, False],
    # carts > 0 and orders = 0; a null on either side is not a match
    "tag_cart_abandoner": [False, True, False, False, False, False, True, True, False, False, True, False],
    # grade A and recency 91..180 inclusive
    "tag_lapsing_top_customer": [False, False, False, False, True, False, False, False, True, False, False, False],
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_every_shipped_classification_and_tag_rule_on_both_engines(engine: str) -> None:
    out = _classify(engine, SHIPPED)
    for column, expected in SHIPPED_EXPECTED.items():
        assert out[column].to_list() == expected, column
    assert out["value_tier_name"].to_list()[:3] == ["高价值", "潜力", "潜力"]
    assert out["tags"].to_list()[:2] == [["high_value_active", "recent_complainer"], ["cart_abandoner"]]
    assert out["customer_id"].to_list() == SHIPPED["customer_id"].to_list()


# Every operator of the rule language: (tag name, rule, hand-worked result per row of OPERATOR_ROWS).
OPERATORS = [
    ("division", "monetary / frequency >= 25", [True, False, False, False]),  # 100/4; 0/0 is null
    ("arithmetic", "frequency * 2 - 1 = 7 or -monetary > 20", [True, False, False, True]),
    ("decimal_literal", "monetary + 0.50 > 100.25", [True, False, False, False]),
    ("not_in_with_null", "source_channel not in ('web', 'ads')", [True, False, False, False]),
    ("quoted_string", "source_channel in ('it''s', 'web')", [True, True, False, False]),
    ("not_between", "avg_rating not between 2 and 4", [True, False, False, True]),
    ("is_null", "is_buyer = false or avg_rating is null", [False, True, False, False]),
    ("is_not_null", "last_purchase_date is not null and not birth_year is null", [True, False, True, True]),
    ("date_literal", "last_purchase_date >= date '2026-01-01'", [True, False, False, True]),
    ("age", "age >= 36 and snapshot_year = 2026", [True, False, False, True]),
    ("between", "recency_days between 324 and 325", [False, False, True, True]),
]
OPERATOR_ROWS = _frame(
    4,
    monetary=_money("100.00", "0.00", None, "-20.50"),
    frequency=_ints(4, 0, 2, 1),
    avg_rating=_doubles(4.5, None, 3.0, 1.0),
    is_buyer=[True, False, True, True],
    last_purchase_date=[date(2026, 11, 1), None, date(2025, 12, 31), date(2026, 1, 1)],
    source_channel=["it's", "web", None, "ads"],
    birth_year=_ints(1990, None, 2000, 1980),
    recency_days=_ints(20, None, 325, 324),
)
OPERATOR_TAGS = {"tags": {name: {"title": {"en": name, "zh": name}, "when": rule} for name, rule, _ in OPERATORS}}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_operator_gives_the_hand_worked_result_on_both_engines(engine: str) -> None:
    out = _classify(engine, OPERATOR_ROWS, OPERATOR_TAGS)
    types = {"monetary": "decimal", "frequency": "integer", "avg_rating": "double", "is_buyer": "boolean"}
    types |= {"last_purchase_date": "date", "source_channel": "string", "birth_year": "integer"}
    types |= {"recency_days": "integer", "snapshot_date": "date"}
    for name, rule, expected in OPERATORS:
        assert out[f"tag_{name}"].to_list() == expected, rule
        compiled = compile_rule(rule, types)  # the Python evaluator (explain) agrees with both engines
        assert [matches(compiled, row) for row in OPERATOR_ROWS.iter_rows(named=True)] == expected, rule


def test_spark_sql_is_compiled_from_the_tree_with_every_value_bound() -> None:
    rules = compile_settings_rules(load_segmentation_settings())
    sql, values = classification_sql(rules, source="rule_inputs", dialect="spark")
    _, duck_values = classification_sql(rules, source="rule_inputs")
    assert values == duck_values  # the same literals, in the same order, bound on both engines
    assert "华东" not in sql and "referral" not in sql and "0.4" not in sql and "$p" not in sql and '"' not in sql
    assert ":p1" in sql and "`top_category_share`" in sql and "as string) as `value_tier`" in sql
    assert "华东" in values.values() and Decimal("0.4") in values.values()
    params = SqlParams(dialect="spark")
    age = to_sql(compile_rule("age >= 18", {}).tree, params)
    assert age == "((cast(extract(year from `snapshot_date`) as bigint) - `birth_year`) >= :p1)"
    with pytest.raises(ValueError, match="not a plain column name"):
        quote_identifier("x` or 1=1 --", "spark")
    with pytest.raises(ValueError, match="config key: engine"):
        SqlParams(dialect="postgres")  # type: ignore[arg-type]


def test_a_quote_laden_value_is_bound_on_spark_and_matches_exactly() -> None:
    nasty = "x'); drop view rule_inputs; --"
    when = "region = '" + nasty.replace("'", "''") + "'"
    overrides = {"tags": {"nasty": {"title": {"en": "n", "zh": "n"}, "when": when}}}
    frame = _frame(2, region=[nasty, "web"])
    out = _classify("spark", frame, overrides)
    assert out["tag_nasty"].to_list() == [True, False]
