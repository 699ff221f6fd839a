"""Classifications and tags on hand-made frames; rule linting at config load and per snapshot."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.classifications import apply_classifications, compile_settings_rules, explain_rules
from models.registry import builtin_registry
from models.rule_lint import lint_rules, lint_snapshot
from models.settings import SegmentationSettingsError, load_segmentation_settings

D = date(2026, 11, 21)
# overall, lifecycle, engagement -> value tier (the former grade/stage rules, unchanged by the move)
TIER_ROWS = [
    ("A", "active", "C", "high_value"),  # rule 0
    ("A", "churned", "C", "general"),  # rule 0 excludes churned; rule 4 (overall A/B)
    (None, "prospect", "A", "potential"),  # rule 2: highly engaged prospect
    (None, "prospect", "B", "low_value"),  # no rule: default
    ("C", "new", "B", "potential"),  # rule 1
    ("B", "active", "A", "potential"),  # rule 3
    ("B", "at_risk", "A", "general"),  # rule 3 needs new/active/reactivated; rule 4
    ("C", "active", "C", "general"),  # rule 5
    ("C", "churned", "A", "low_value"),  # default
    ("C", "at_risk", "C", "low_value"),  # default
]


def _frame(**cols: list) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"snapshot_date": [D] * n, "customer_id": [f"c{i:02d}" for i in range(n)]}
    return pl.DataFrame({**base, **cols})


def test_value_tier_defaults_keep_the_former_assignment() -> None:
    frame = _frame(
        overall_grade=[r[0] for r in TIER_ROWS],
        lifecycle_stage=[r[1] for r in TIER_ROWS],
        engagement_grade=[r[2] for r in TIER_ROWS],
    )
    out = apply_classifications(frame, load_segmentation_settings())
    zh = {"high_value": "高价值", "potential": "潜力", "general": "一般", "low_value": "低价值"}
    expected = pl.DataFrame({"value_tier": [r[3] for r in TIER_ROWS], "value_tier_name": [zh[r[3]] for r in TIER_ROWS]})
    assert_frame_equal(out.select("value_tier", "value_tier_name"), expected)


def test_shipped_classifications_on_hand_worked_customers() -> None:
    frame = _frame(
        source_channel=["referral", "ads", "offline_store", None, "organic"],
        online_share=[0.0, 0.5, 0.1, 0.9, None],
        offline_share=[1.0, 0.5, 0.9, 0.1, None],
        birth_year=[2010, 2002, 1990, None, 1960],
        region=["华东", "西北", "华南", None, "东北"],
        nps_class=["promoter", "detractor", None, "passive", None],
        avg_rating=[5.0, 4.9, None, 2.0, 3.5],
        complaints_90d=[0, 0, 1, 0, None],
        top_category=["beauty", "toys", "home", None, "books"],
        top_category_share=[0.5, 0.2, 0.4, None, 1.0],
    )
    out = apply_classifications(frame, load_segmentation_settings())
    # referral first; 50/50 is omnichannel; the store source; online share 0.9 > 0.7; organic source
    assert out["customer_source"].to_list() == ["referral", "omnichannel", "store", "online", "online"]
    # 2026-2010 = 16, 24, 36, no birth year, 66
    assert out["age_band"].to_list() == ["under_18", "age_18_24", "age_35_44", "unknown", "age_55_plus"]
    assert out["age_band_name"].to_list() == ["18岁以下", "18-24岁", "35-44岁", "未知", "55岁及以上"]
    assert out["home_region"].to_list() == ["east", "northwest", "south", "unknown", "northeast"]
    # complaint or detractor or rating < 3 first; promoter or >= 4.5; passive or >= 3; no feedback
    assert out["satisfaction"].to_list() == ["satisfied", "dissatisfied", "dissatisfied", "dissatisfied", "neutral"]
    # share 0.2 is below the 40 % needed to prefer a category
    assert out["preferred_category"].to_list() == ["beauty", "mixed", "home", "no_purchase", "books"]


def test_user_classification_and_tags_with_numbers_and_lists() -> None:
    settings = load_segmentation_settings(
        {
            "classifications": {
                "spend": {
                    "title": {"en": "Spend", "zh": "消费"},
                    "labels": {"vip": {"en": "VIP", "zh": "贵宾"}, "std": {"en": "Standard", "zh": "普通"}},
                    "rules": [{"label": "vip", "when": "monetary >= 5000 and frequency >= 10"}],
                    "default": "std",
                }
            },
            "tags": {
                "web_vip": {
                    "title": {"en": "Web VIP", "zh": "线上贵宾"},
                    "when": "spend = 'vip' and online_share > 0.5",
                },
            },
        }
    )
    frame = _frame(
        monetary=[Decimal("5000.00"), Decimal("4999.99"), Decimal("9000.00"), None],
        frequency=[10, 50, 9, 3],
        online_share=[0.6, 0.9, 0.9, None],
        add_to_carts_30d=[1, 0, 2, None],
        orders_30d=[0, 1, 0, None],
    )
    out = apply_classifications(frame, settings)
    assert out["spend"].to_list() == ["vip", "std", "std", "std"]
    assert out["tag_web_vip"].to_list() == [True, False, False, False]
    assert out["tag_cart_abandoner"].to_list() == [True, False, True, False]
    assert out["tags"].to_list() == [["cart_abandoner", "web_vip"], [], ["cart_abandoner"], []]
    registry = builtin_registry(settings)
    assert registry.get("spend").kind == "classification" and registry.get("tag_web_vip").kind == "tag"
    why = explain_rules(compile_settings_rules(settings), out.row(0, named=True))
    assert why["spend"] == {"label": "vip", "rule_index": 0, "rule": "monetary >= 5000 and frequency >= 10"}


def test_classification_sql_binds_every_value() -> None:
    from models.classifications import classification_sql

    sql, params = classification_sql(compile_settings_rules(load_segmentation_settings()))
    assert "华东" not in sql and "'referral'" not in sql and "'high_value'" not in sql and "0.4" not in sql
    assert "华东" in params.values() and "high_value" in params.values()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tags": {"t": {"title": {"en": "T", "zh": "T"}, "when": "monetary > 'x'"}}}, "segmentation.tags.t.when"),
        (
            {"classifications": {"value_tier": {"rules": [{"label": "vip", "when": "frequency > 1"}]}}},
            "rules.0.label: unknown label 'vip'",
        ),
        ({"classifications": {"value_tier": {"enabled": False}}}, "part of the published contract"),
        ({"value_tier": {"default": "general"}}, "now a classification"),
        (
            {
                "classifications": {
                    "monetary": {
                        "title": {"en": "M", "zh": "M"},
                        "labels": {"a": {"en": "A", "zh": "A"}},
                        "rules": [],
                        "default": "a",
                    }
                }
            },
            "collides with column",
        ),
    ],
)
def test_invalid_rules_name_the_config_key(overrides: dict, message: str) -> None:
    with pytest.raises(SegmentationSettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_segmentation_settings(overrides)


def test_lint_finds_a_planted_shadowed_rule_and_an_empty_range() -> None:
    rules = [
        {"label": "general", "when": "monetary > 100"},
        {"label": "high_value", "when": "frequency >= 3 and monetary > 1000"},  # shadowed by rule 0
        {"label": "potential", "when": "frequency between 10 and 5"},  # empty range
        {"label": "potential", "when": "frequency > 5 and frequency < 3"},  # conditions exclude each other
        {"label": "potential", "when": "lifecycle_stage in ('new', 'active')"},
        {"label": "potential", "when": "lifecycle_stage = 'new' and frequency > 0"},  # shadowed by rule 4
        {"label": "potential", "when": "monetary > 50"},  # not shadowed: 50 < monetary <= 100 is new
    ]
    with pytest.raises(SegmentationSettingsError) as info:
        load_segmentation_settings({"classifications": {"value_tier": {"rules": rules}}})
    text = str(info.value)
    assert "value_tier.rules.1: rule 'frequency >= 3 and monetary > 1000' (high_value) never fires" in text
    assert "rules.2: rule 'frequency between 10 and 5' can never match: the range of frequency is empty" in text
    assert "rules.3: rule 'frequency > 5 and frequency < 3' can never match" in text
    assert "rules.5:" in text and "rules.6:" not in text and "rules.4:" not in text


def test_lint_warns_about_a_label_only_overrides_can_give() -> None:
    labels = {"a": {"en": "A", "zh": "甲"}, "b": {"en": "B", "zh": "乙"}, "manual": {"en": "M", "zh": "手工"}}
    settings = load_segmentation_settings(
        {
            "classifications": {
                "x": {
                    "title": {"en": "X", "zh": "X"},
                    "labels": labels,
                    "rules": [{"label": "a", "when": "frequency > 1"}],
                    "default": "b",
                }
            }
        }
    )
    findings = lint_rules(settings)
    assert [(f.severity, f.code, f.where) for f in findings] == [
        ("warn", "unreachable_label", "classifications.x.labels.manual")
    ]


def test_lint_snapshot_warns_on_silent_tags_and_swallowing_defaults() -> None:
    settings = load_segmentation_settings({"rule_lint": {"max_default_share": 0.5}})
    frame = _frame(
        lifecycle_stage=["active", "churned", "churned", "churned"],
        complaints_90d=[1, 1, 1, 1],  # recent_complainer: everybody
        online_share=[0.1, 0.1, 0.1, 0.1],
    )
    out = apply_classifications(frame, settings)
    findings = lint_snapshot(out, D, settings)
    codes = {(f.code, f.where) for f in findings}
    assert ("tag_matches_everybody", "tags.recent_complainer") in codes
    assert ("tag_matches_nobody", "tags.high_value_active") in codes
    assert ("default_swallows", "classifications.value_tier") in codes  # 3 of 4 low_value > 50 %
    assert all(f.severity == "warn" for f in findings)
    # the same findings read from a warehouse table (the checks module passes its connection)
    con = duckdb.connect()
    con.register("snap", out.with_columns(pl.col(c).alias(f"{c}_computed") for c in out.columns if c != "customer_id"))
    con.execute("create table customer_segments as select * from snap")
    assert {(f.code, f.where) for f in lint_snapshot(con, D, settings)} == codes


def test_rule_lint_check_reports_the_snapshot_findings_as_one_warn_outcome() -> None:
    from data_contracts.table_checks import rule_findings

    rules = {"rule_lint": {"max_default_share": 0.5}}
    settings = load_segmentation_settings(rules)
    frame = _frame(
        lifecycle_stage=["active", "churned", "churned", "churned"],
        complaints_90d=[1, 1, 1, 1],
        online_share=[0.1, 0.1, 0.1, 0.1],
    )
    out = apply_classifications(frame, settings)
    con = duckdb.connect()
    con.register("snap", out.with_columns(pl.col(c).alias(f"{c}_computed") for c in out.columns if c != "customer_id"))
    con.execute("create table customer_segments as select * from snap")
    found = rule_findings(con, D, rules)
    assert (found.success, found.severity, found.check) == (False, "warn", "rule_lint")
    assert "tags.recent_complainer: " in " ".join(found.examples)
    assert found.unexpected_count == len(lint_snapshot(con, D, settings))
    assert rule_findings(con, D, {"rule_lint": {"max_default_share": 1.0}, "tags": {}}).unexpected_count < (
        found.unexpected_count
    )


# ------------------------------------------------------------------------------ window placeholders
def test_shipped_rules_follow_the_configured_windows() -> None:
    settings = load_segmentation_settings(windows={"short": 14, "complaint": 60})
    assert settings.windows == {"short": 14, "long": 90, "complaint": 60}
    assert settings.tags["recent_complainer"].when == "complaints_60d >= 1"
    assert settings.tags["cart_abandoner"].when == "add_to_carts_14d > 0 and orders_30d = 0"
    assert settings.classifications["satisfaction"].rules[0].when.startswith("complaints_60d >= 1 or ")
    # hand-worked: complaints in the 60-day window drive the tag and the first satisfaction rule
    frame = _frame(
        complaints_60d=[2, 0, None],
        nps_class=["promoter", "promoter", None],
        add_to_carts_14d=[1, 0, 3],
        orders_30d=[0, 0, 1],
    )
    out = apply_classifications(frame, settings)
    assert out["tag_recent_complainer"].to_list() == [True, False, False]
    assert out["satisfaction"].to_list() == ["dissatisfied", "satisfied", "unknown"]
    assert out["tag_cart_abandoner"].to_list() == [True, False, False]
    # the default windows render the former column names
    assert load_segmentation_settings().tags["recent_complainer"].when == "complaints_90d >= 1"


def test_a_hard_coded_window_column_that_the_windows_do_not_make_is_refused() -> None:
    tag = {"title": {"en": "Old", "zh": "旧"}, "when": "complaints_90d >= 1"}
    with pytest.raises(SegmentationSettingsError, match=r"segmentation\.tags\.old\.when: .*unknown column "
                       r"'complaints_90d' \(did you mean 'complaints_60d'\?\)"):  # fmt: skip
        load_segmentation_settings({"tags": {"old": tag}}, windows={"complaint": 60})


def test_an_unknown_placeholder_names_itself_and_the_config_key() -> None:
    tag = {"title": {"en": "Mid", "zh": "中"}, "when": "sessions_{medium}d > 0"}
    with pytest.raises(SegmentationSettingsError) as err:
        load_segmentation_settings({"tags": {"mid": tag}})
    message = str(err.value)
    assert message.startswith("segmentation.tags.mid.when: unknown window placeholder {medium} in ")
    assert (
        "{complaint} (features.complaint_window_days)" in message and "{short} (features.short_window_days)" in message
    )


def test_placeholders_inside_string_literals_are_left_alone() -> None:
    cls = {
        "title": {"en": "Braces", "zh": "括号"},
        "labels": {"odd": {"en": "Odd", "zh": "奇"}, "other": {"en": "Other", "zh": "其他"}},
        "rules": [{"label": "odd", "when": "city = '{short}' and sessions_{short}d > 0"}],
        "default": "other",
    }
    settings = load_segmentation_settings({"classifications": {"braces": cls}}, windows={"short": 7})
    assert settings.classifications["braces"].rules[0].when == "city = '{short}' and sessions_7d > 0"
