"""Value tier: ordered first-match rules over grades and lifecycle, default tier, validation."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.settings import SegmentationSettingsError, load_segmentation_settings
from models.value_tier import assign_value_tier

ROWS = [
    # overall, lifecycle, engagement -> expected tier (default rules, defaults.yaml)
    ("A", "active", "C", "high_value"),  # rule 1
    ("A", "churned", "C", "general"),  # rule 1 excludes churned; rule 5 (overall A/B)
    (None, "prospect", "A", "potential"),  # rule 3: highly engaged prospect
    (None, "prospect", "B", "low_value"),  # no rule: default
    ("C", "new", "B", "potential"),  # rule 2
    ("B", "active", "A", "potential"),  # rule 4
    ("B", "at_risk", "A", "general"),  # rule 4 needs new/active/reactivated; rule 5
    ("C", "active", "C", "general"),  # rule 6
    ("C", "churned", "A", "low_value"),  # default
    ("C", "at_risk", "C", "low_value"),  # default
]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "overall_grade": [r[0] for r in ROWS],
            "lifecycle_stage": [r[1] for r in ROWS],
            "engagement_grade": [r[2] for r in ROWS],
        },
        schema={"overall_grade": pl.String, "lifecycle_stage": pl.String, "engagement_grade": pl.String},
    )


def test_default_rules_first_match_wins() -> None:
    out = assign_value_tier(_frame(), load_segmentation_settings().value_tier)
    labels = {"high_value": "高价值", "potential": "潜力", "general": "一般", "low_value": "低价值"}
    expected = pl.DataFrame({"value_tier": [r[3] for r in ROWS], "value_tier_name": [labels[r[3]] for r in ROWS]})
    assert_frame_equal(out.select("value_tier", "value_tier_name"), expected)


def test_user_rules_replace_the_defaults() -> None:
    settings = load_segmentation_settings(
        {
            "value_tier": {
                "rules": [
                    {"tier": "potential", "when": {"engagement_grade": ["A"]}},
                    {"tier": "high_value", "when": {"overall_grade": ["A", "B"]}},
                ],
                "default": "general",
            }
        }
    ).value_tier
    out = assign_value_tier(_frame(), settings)
    assert out["value_tier"].to_list() == [
        "high_value", "high_value", "potential", "general", "general",
        "potential", "potential", "general", "potential", "general",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "rule,path,fragment",
    [
        ({"tier": "general", "when": {"colour": ["red"]}}, "value_tier.rules.0.when.colour", "unknown column"),
        ({"tier": "general", "when": {"overall_grade": ["D"]}}, "value_tier.rules.0.when.overall_grade", "'D'"),
        (
            {"tier": "general", "when": {"lifecycle_stage": ["lapsed"]}},
            "value_tier.rules.0.when.lifecycle_stage",
            "lapsed",
        ),
        ({"tier": "vip", "when": {"overall_grade": ["A"]}}, "value_tier.rules.0.tier", "unknown tier 'vip'"),
        ({"tier": "general", "when": {}}, "value_tier.rules.0.when", "at least 1"),
    ],
)
def test_bad_rules_are_refused_naming_the_key(rule: dict, path: str, fragment: str) -> None:
    with pytest.raises(SegmentationSettingsError) as err:
        load_segmentation_settings({"value_tier": {"rules": [rule]}})
    assert f"segmentation.{path}:" in str(err.value)
    assert fragment in str(err.value)


def test_rules_may_use_segment_keys_of_the_configured_maps() -> None:
    settings = load_segmentation_settings(
        {"value_tier": {"rules": [{"tier": "high_value", "when": {"rfm_segment": ["champions"]}}]}}
    )
    frame = pl.DataFrame({"rfm_segment": ["champions", "lost", None]})
    assert assign_value_tier(frame, settings.value_tier)["value_tier"].to_list() == [
        "high_value",
        "low_value",
        "low_value",
    ]
    with pytest.raises(SegmentationSettingsError, match=r"value_tier\.rules\.0\.when\.rfm_segment"):
        load_segmentation_settings({"value_tier": {"rules": [{"tier": "general", "when": {"rfm_segment": ["vip"]}}]}})
