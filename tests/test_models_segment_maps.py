"""Segment maps: the 25 cells of the default map, the 8-class value map, and validation."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from models.pipeline import assign_rfm_segments
from models.segment_maps import MAPS_DIR, SegmentMapError, apply_segment_map, load_segment_map, parse_segment_map
from models.settings import SegmentationSettingsError, load_segmentation_settings

# PRODUCT.md §3, written out cell by cell: row = R, columns = FM 1..5.
DEFAULT_MAP: dict[int, list[str]] = {
    5: ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    3: ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    1: ["lost", "hibernating", "at_risk", "at_risk", "cant_lose"],
}


def _rfm_11_spec() -> dict[str, Any]:
    with (MAPS_DIR / "rfm_11.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _segment(spec: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in spec["segments"] if s["key"] == key)


@pytest.mark.parametrize("r,fm", list(itertools.product(range(1, 6), range(1, 6))))
def test_default_map_cell(r: int, fm: int) -> None:
    frame = pl.DataFrame({"r_score": [r], "fm_score": [fm]})
    out = apply_segment_map(frame, load_segment_map("rfm_11"), {"r": "r_score", "fm": "fm_score"}, "seg", "name")
    assert out["seg"].item() == DEFAULT_MAP[r][fm - 1]


def test_default_map_has_eleven_segments_with_chinese_names() -> None:
    seg_map = load_segment_map("rfm_11")
    names = {s.key: s.name for s in seg_map.segments}
    assert len(names) == 11
    assert names["champions"] == "冠军客户"
    assert names["cant_lose"] == "不能失去"
    assert names["lost"] == "流失客户"
    assert {s.name_en for s in seg_map.segments} >= {"Champions", "Can't Lose", "Potential Loyalist"}


def test_null_scores_give_null_segment() -> None:
    frame = pl.DataFrame(
        {"r_score": [None, 5], "fm_score": [None, 5]}, schema={"r_score": pl.Int64, "fm_score": pl.Int64}
    )
    out = apply_segment_map(frame, load_segment_map("rfm_11"), {"r": "r_score", "fm": "fm_score"}, "seg", "name")
    assert out["seg"].to_list() == [None, "champions"]
    assert out["name"].to_list() == [None, "冠军客户"]


def test_value_map_eight_classes_from_high_low_scores() -> None:
    # value_high_method score: high = score >= 3. Each row hits one of the 8 cells; the last is a non-buyer.
    frame = pl.DataFrame(
        {
            "r_score": [3, 5, 2, 1, 4, 3, 2, 1, None],
            "f_score": [3, 2, 5, 1, 4, 1, 3, 2, None],
            "m_score": [3, 4, 3, 5, 2, 1, 2, 1, None],
            "fm_score": [3, 3, 4, 3, 3, 1, 3, 2, None],
        },
        schema={c: pl.Int64 for c in ("r_score", "f_score", "m_score", "fm_score")},
    )
    out = assign_rfm_segments(frame, load_segmentation_settings({"rfm": {"value_high_method": "score"}}).rfm)
    expected = pl.DataFrame(
        {
            "value_class": [
                "important_value",  # R high F high M high
                "important_develop",  # R high F low M high
                "important_keep",  # R low F high M high
                "important_retain",  # R low F low M high
                "general_value",  # R high F high M low
                "general_develop",  # R high F low M low
                "general_keep",  # R low F high M low
                "general_retain",  # R low F low M low
                None,
            ],
            "value_class_name": [
                "重要价值客户",
                "重要发展客户",
                "重要保持客户",
                "重要挽留客户",
                "一般价值客户",
                "一般发展客户",
                "一般保持客户",
                "一般挽留客户",
                None,
            ],
        }
    )
    assert_frame_equal(out.select("value_class", "value_class_name"), expected)
    assert out["rfm_segment"].to_list()[:3] == ["need_attention", "potential_loyalist", "at_risk"]


def test_value_map_high_threshold_is_configurable() -> None:
    frame = pl.DataFrame({"r_score": [3], "f_score": [3], "m_score": [3], "fm_score": [3]})
    settings = load_segmentation_settings({"rfm": {"value_high_method": "score", "value_high_min_score": {"m": 4}}}).rfm
    assert assign_rfm_segments(frame, settings)["value_class"].item() == "general_value"


def test_map_with_a_gap_is_refused_naming_the_cell() -> None:
    spec = _rfm_11_spec()
    spec["segments"] = [s for s in spec["segments"] if s["key"] != "lost"]
    with pytest.raises(SegmentMapError, match=r"gap: cells \['R1·FM1'\] belong to no segment"):
        parse_segment_map(spec)


def test_map_with_an_overlap_is_refused_naming_cell_and_segments() -> None:
    spec = _rfm_11_spec()
    _segment(spec, "need_attention")["rules"] = [{"r": [3], "fm": [3, 4]}]
    with pytest.raises(SegmentMapError) as err:
        parse_segment_map(spec)
    assert "overlap: cell R3·FM4 is claimed by segments ['loyal', 'need_attention']" in str(err.value)


def test_map_with_a_rule_covering_no_cell_is_refused() -> None:
    spec = _rfm_11_spec()
    _segment(spec, "lost")["rules"].append({"r": [6], "fm": [1]})
    with pytest.raises(SegmentMapError) as err:
        parse_segment_map(spec)
    message = str(err.value)
    assert "segments[10] (lost).rules[1]: unreachable values {'r': [6]}" in message
    assert "unreachable rule segments[10] (lost).rules[1]: it covers no cell" in message


def test_map_with_a_rule_shadowed_by_other_rules_is_refused() -> None:
    spec = _rfm_11_spec()
    _segment(spec, "hibernating")["rules"].append({"r": [2], "fm": [1]})  # already covered by rules[0]
    with pytest.raises(SegmentMapError) as err:
        parse_segment_map(spec)
    assert "unreachable rule segments[9] (hibernating).rules[2]: every cell it covers ['R2·FM1']" in str(err.value)


def test_map_rule_must_name_every_axis() -> None:
    spec = _rfm_11_spec()
    _segment(spec, "lost")["rules"] = [{"r": [1]}]
    with pytest.raises(SegmentMapError, match=r"must give values for exactly the axes \['r', 'fm'\]"):
        parse_segment_map(spec)


def test_value_map_with_a_gap_names_level_cells() -> None:
    with (MAPS_DIR / "value_8.yaml").open(encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    spec["segments"] = spec["segments"][:-1]
    with pytest.raises(SegmentMapError, match=r"R low·F low·M low"):
        parse_segment_map(spec)


def test_inline_map_in_settings_is_validated_with_key_path() -> None:
    spec = _rfm_11_spec()
    broken = copy.deepcopy(spec)
    broken["segments"] = broken["segments"][1:]  # drop champions
    with pytest.raises(SegmentationSettingsError) as err:
        load_segmentation_settings({"rfm": {"segment_map": broken}})
    assert str(err.value).startswith("segmentation.rfm.segment_map:")
    assert "R5·FM4" in str(err.value) and "R5·FM5" in str(err.value)
    assert load_segmentation_settings({"rfm": {"segment_map": spec}}).rfm.segment_map_obj().name == "rfm_11"


def test_unknown_bundled_map_is_refused() -> None:
    with pytest.raises(SegmentMapError, match="bundled maps"):
        load_segment_map("no_such_map")


def _value_frame() -> pl.DataFrame:
    # 5 buyers and a non-buyer. Means among buyers: recency (10+20+30+40+400)/5 = 100, frequency
    # (1+1+1+2+10)/5 = 3, monetary (50+60+70+100+3220)/5 = 700. Medians: 30, 1, 70.
    # Scores are all 5 (irrelevant to mean/median; they only mark who is scored).
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "p"],
            "recency_days": [10, 20, 30, 40, 400, None],
            "frequency": [1, 1, 1, 2, 10, 0],
            "monetary": [Decimal(v) for v in ("50.00", "60.00", "70.00", "100.00", "3220.00", "0.00")],
            **{c: [5, 5, 5, 5, 5, None] for c in ("r_score", "f_score", "m_score", "fm_score")},
        },
        schema_overrides={"monetary": pl.Decimal(18, 2)},
    )


def test_value_map_high_means_above_the_buyers_mean_by_default() -> None:
    """Defect: high = score >= 3 put the top 60 % in 重要价值; the practice uses the population mean."""
    out = assign_rfm_segments(_value_frame(), load_segmentation_settings().rfm)
    # a-d: recent (< 100 days), F low (<= 3), M low (<= 700) -> general_develop; e: R low, F high, M high.
    assert out["value_class"].to_list() == [
        "general_develop",
        "general_develop",
        "general_develop",
        "general_develop",
        "important_keep",
        None,
    ]


def test_value_map_equal_to_the_mean_is_low() -> None:
    frame = _value_frame().with_columns(frequency=pl.Series([3, 3, 3, 3, 3, 0]))  # mean 3: nobody above
    out = assign_rfm_segments(frame, load_segmentation_settings().rfm)
    assert out["value_class"].to_list()[:4] == ["general_develop"] * 4


def test_value_map_median_method() -> None:
    settings = load_segmentation_settings({"rfm": {"value_high_method": "median"}}).rfm
    out = assign_rfm_segments(_value_frame(), settings)
    # medians 30 / 1 / 70: a, b recent; d, e frequent; d, e big spenders.
    assert out["value_class"].to_list() == [
        "general_develop",
        "general_develop",
        "general_retain",
        "important_keep",
        "important_keep",
        None,
    ]
