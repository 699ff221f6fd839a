"""Rendering and the portability lint (no Spark needed): what is refused, what is rewritten, what is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.spark import SparkSettings
from engines.sql import FORBIDDEN, SqlPortabilityError, check_portable, lint, load_statement, parameters, render
from features.customer_features import SQL_DIR as FEATURE_SQL_DIR
from segments.config import ConfigError, settings_from_dict

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SQL_DIR = ROOT / "engines" / "sql"

# One planted statement per forbidden construct; each must be refused under exactly that rule.
PLANTED: dict[str, str] = {
    "epoch": "select epoch(order_ts) from orders",
    "log": "select log(amount) from orders",
    "day_of_week": "select dayofweek(order_date) from orders",
    "ordered_array_agg": "select array_agg(order_id order by order_date) from orders",
    "quantile": "select quantile_cont(amount, 1) from orders",
    "columns_star": "select columns('amount') from orders",
    "qualify": "select order_id from orders qualify row_number() over (order by order_id) = 1",
    "clock": "select current_date from orders",
    "engine_function": "select hash(order_id) from orders",
    "round": "select round(amount, 2) from orders",
    "interval": "select order_date - interval 3 day from orders",
    "day_diff_unit": "select date_diff('month', order_date, $as_of) from orders",
    "day_diff_args": "select date_diff('day', order_ts, $as_of) from orders",
    "decimal_division": "select amount / 86400 from orders",
    "fractional_literal": "select least(amount, 1.5) from orders",
    "double_to_integer": "select cast(cast(amount as double) * 2 as bigint) from orders",
    "double_sum": "select sum(cast(amount as double)) from orders",
}


def test_every_forbidden_rule_has_a_planted_example() -> None:
    assert sorted(PLANTED) == sorted(FORBIDDEN)


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_lint_refuses_each_non_portable_construct(rule: str) -> None:
    findings = lint(PLANTED[rule], "planted.sql")
    assert [f.rule for f in findings] == [rule]
    with pytest.raises(SqlPortabilityError, match=rf"planted\.sql:1: .*\({rule}\)"):
        render(PLANTED[rule], "spark", "planted.sql")


@pytest.mark.parametrize(
    "sql",
    [
        "select date_diff('day', first_purchase_date, cast($as_of as date)) from t",
        "select date_diff('day', lag(purchase_date) over (order by purchase_date), purchase_date) from t",
        "select date_diff('microsecond', a_ts, b_ts) from t",
        "select cast(a as double) / cast(b as double), cast(0.01 as decimal(3, 2)) from t",
        "select cast(floor(cast(a as double) / cast(b as double)) as bigint), (a + 1) // 2 from t",
        "select ln(1 + x), avg(cast(rating as double)), sum(amount) from t",
    ],
)
def test_lint_accepts_the_portable_forms(sql: str) -> None:
    assert lint(sql) == []


SHIPPED = [
    FEATURE_SQL_DIR / "customer_features.sql",
    FEATURE_SQL_DIR / "anonymous_browsing_counts.sql",
    # templated statements are checked when rendered with their identifiers (tests/test_spark_statements.py)
    *sorted(p for p in ENGINE_SQL_DIR.glob("*.sql") if "{" not in p.read_text(encoding="utf-8")),
]


@pytest.mark.parametrize(
    "path",
    SHIPPED,
    ids=lambda p: p.name,
)
def test_shipped_statements_are_portable(path: Path) -> None:
    check_portable(path.read_text(encoding="utf-8"), str(path))


def test_duckdb_rendering_is_the_file_itself() -> None:
    text = (FEATURE_SQL_DIR / "customer_features.sql").read_text(encoding="utf-8")
    assert render(text, "duckdb") == text


def test_spark_rendering_binds_named_markers_and_keeps_no_comments() -> None:
    statement = load_statement(FEATURE_SQL_DIR, "customer_features", "spark")
    assert ":as_of" in statement.text and "$as_of" not in statement.text
    assert "--" not in statement.text and "/*" not in statement.text
    assert {"as_of", "lookback_start", "start_90", "w1_start"} <= statement.parameters


def test_spark_rendering_casts_day_differences_to_dates_and_skips_null_arg_max() -> None:
    out = " ".join(
        render("select date_diff('day', a_date, b_date), arg_max(amount, order_date) from t", "spark").split()
    )
    assert "DATEDIFF(DAY, CAST(a_date AS DATE), CAST(b_date AS DATE))" in out
    assert "MAX_BY(amount, order_date) FILTER(WHERE NOT amount IS NULL AND NOT order_date IS NULL)" in out


def test_parameters_and_binding_name_what_is_missing() -> None:
    assert parameters("select $a + $b from t where x = $a") == {"a", "b"}
    statement = load_statement(ENGINE_SQL_DIR, "rfm_score_table", "duckdb")
    with pytest.raises(ValueError, match=r"rfm_score_table\.sql: parameters without a value: .*'fixed'"):
        statement.bind({})


def test_unknown_engine_names_the_config_key() -> None:
    with pytest.raises(ValueError, match="config key: engine"):
        render("select 1", "snowflake")  # type: ignore[arg-type]


def test_scale_out_doc_explains_every_forbidden_construct() -> None:
    doc = (ROOT / "docs" / "scale-out.md").read_text(encoding="utf-8")
    missing = [rule for rule in FORBIDDEN if f"`{rule}`" not in doc]
    assert missing == []


def test_engine_setting_defaults_to_duckdb_and_names_the_key_when_wrong(tmp_path: Path) -> None:
    base = {"sources": {"orders": {"glob": "orders/*"}}}
    assert settings_from_dict(base, base_dir=tmp_path).engine == "duckdb"
    assert settings_from_dict({**base, "engine": "spark"}, base_dir=tmp_path).engine == "spark"
    with pytest.raises(ConfigError, match="engine"):
        settings_from_dict({**base, "engine": "snowflake"}, base_dir=tmp_path)


def test_spark_settings_refuse_overriding_what_results_depend_on() -> None:
    with pytest.raises(ValueError, match=r"spark\.sql\.session\.timeZone"):
        SparkSettings(conf={"spark.sql.session.timeZone": "America/Los_Angeles"})
