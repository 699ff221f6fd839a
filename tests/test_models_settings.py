"""Segmentation settings: defaults, deep-merged overrides, and errors that name the key path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.settings import (
    SegmentationSettings,
    SegmentationSettingsError,
    deep_merge,
    default_settings_dict,
    load_segmentation_settings,
)


def test_defaults_load_and_match_the_documented_values() -> None:
    s = load_segmentation_settings()
    assert isinstance(s, SegmentationSettings)
    assert s.rfm.method == "quantile"
    assert s.rfm.fixed.recency_days == [30, 60, 90, 180]
    assert s.rfm.fixed.monetary == [Decimal(200), Decimal(500), Decimal(1000), Decimal(3000)]
    assert (s.rfm.segment_map, s.rfm.value_map) == ("rfm_11", "value_8")
    assert (s.grades.method, s.grades.pareto.a, s.grades.pareto.b) == ("pareto", 0.80, 0.95)
    assert (s.grades.quantile.a, s.grades.quantile.b) == (0.20, 0.50)
    assert (s.lifecycle.new_days, s.lifecycle.active_days, s.lifecycle.churn_days) == (30, 90, 180)
    assert s.classifications["value_tier"].default == "low_value"
    assert (s.clusters.k, s.clusters.random_state, s.clusters.sample_size) == (5, 42, 50_000)


def test_overrides_merge_key_by_key() -> None:
    s = load_segmentation_settings({"lifecycle": {"churn_days": 365}, "clusters": {"k": None}})
    assert (s.lifecycle.new_days, s.lifecycle.active_days, s.lifecycle.churn_days) == (30, 90, 365)
    assert s.clusters.k is None and s.clusters.k_range == (3, 8)


def test_lists_replace_whole() -> None:
    merged = deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}})
    assert merged == {"a": {"b": [3], "c": 1}}
    s = load_segmentation_settings({"grades": {"engagement_columns": ["page_views_90d"]}})
    assert s.grades.engagement_columns == ["page_views_90d"]


def test_overrides_do_not_leak_into_the_defaults() -> None:
    load_segmentation_settings({"rfm": {"fixed": {"frequency": [3, 4, 5, 6]}}})
    assert default_settings_dict()["rfm"]["fixed"]["frequency"] == [2, 3, 5, 8]
    assert load_segmentation_settings().rfm.fixed.frequency == [2, 3, 5, 8]


@pytest.mark.parametrize(
    "overrides,path",
    [
        ({"rfm": {"method": "kmeans"}}, "segmentation.rfm.method:"),
        ({"rfm": {"fixed": {"recency_days": [30, 20, 90, 180]}}}, "segmentation.rfm.fixed.recency_days:"),
        ({"rfm": {"fixed": {"frequency": [1, 2, 3]}}}, "segmentation.rfm.fixed.frequency:"),
        ({"rfm": {"value_high_min_score": {"r": 6}}}, "segmentation.rfm.value_high_min_score.r:"),
        ({"grades": {"pareto": {"a": 0.97}}}, "segmentation.grades.pareto:"),
        ({"grades": {"overall_bases": ["spend"]}}, "segmentation.grades.overall_bases.0:"),
        ({"lifecycle": {"churn_days": 90}}, "segmentation.lifecycle.churn_days:"),
        ({"lifecycle": {"new_days": 120}}, "segmentation.lifecycle.new_days:"),
        ({"clusters": {"k_range": [1, 4]}}, "segmentation.clusters.k_range:"),
        ({"clusters": {"features": []}}, "segmentation.clusters.features:"),
        ({"clusters": {"colour": "red"}}, "segmentation.clusters.colour:"),
        ({"rfmm": {}}, "segmentation.rfmm:"),
    ],
)
def test_invalid_settings_name_the_key_path(overrides: dict, path: str) -> None:
    with pytest.raises(SegmentationSettingsError) as err:
        load_segmentation_settings(overrides)
    assert path in str(err.value)
    assert isinstance(err.value, ValueError)


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(SegmentationSettingsError, match="expected a mapping"):
        load_segmentation_settings(["k", 5])  # type: ignore[arg-type]
