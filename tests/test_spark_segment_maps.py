"""Segment-map lookups as SQL (engines/segment_maps.py) on DuckDB and on Spark, against labels worked out by hand.

The same frames through the polars path (``models.pipeline.assign_rfm_segments``) give the same labels: the
map's cell table is the one rule, joined by SQL on the engines and by polars on the DuckDB path.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engines.segment_maps import assign_rfm_segments_on_engine, segment_map_on_engine
from models.pipeline import assign_rfm_segments
from models.segment_maps import apply_segment_map, load_segment_map
from models.settings import load_segmentation_settings

try:
    from tests.spark_helpers import make_engine
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from spark_helpers import make_engine

ENGINES = ["duckdb", "spark"]
SCORES = ("r_score", "f_score", "m_score", "fm_score")

# customer: r, fm, and the rfm_11 label worked out from the map (R x FM)
RFM_CASES = [
    ("a", 5, 4, "champions"),  # R5 FM4-5
    ("b", 3, 5, "loyal"),  # R3-4 FM4-5
    ("c", 1, 1, "lost"),  # R1 FM1
    ("d", 1, 2, "hibernating"),  # second rule of hibernating: R1 FM2
    ("e", 2, 5, "cant_lose"),  # R1-2 FM5
    ("f", 4, 1, "promising"),  # R4 FM1
    ("g", None, None, None),  # non-buyer: no scores, no segment
    ("h", 6, 1, None),  # a value outside the map's cells matches nothing, as in the polars join
    ("i", 3, None, None),  # one axis null
]


def _rfm_frame() -> pl.DataFrame:
    ids, r, fm, _ = zip(*RFM_CASES, strict=True)
    return pl.DataFrame(
        {"customer_id": ids, "r_score": r, "f_score": fm, "m_score": fm, "fm_score": fm},
        schema={"customer_id": pl.String, **{c: pl.Int64 for c in SCORES}},
    )


def _value_frame() -> pl.DataFrame:
    """Five buyers and a prospect; buyer means: recency 100 days, frequency 3, monetary 700.00."""
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "p"],
            "recency_days": [10, 20, 30, 40, 400, None],
            "frequency": [1, 1, 1, 2, 10, 0],
            "monetary": [Decimal(v) for v in ("50.00", "60.00", "70.00", "100.00", "3220.00", "0.00")],
            "r_score": [5, 4, 3, 2, 1, None],
            "f_score": [1, 2, 3, 4, 5, None],
            "m_score": [1, 2, 3, 4, 5, None],
            "fm_score": [1, 2, 3, 4, 5, None],
        },
        schema_overrides={"monetary": pl.Decimal(18, 2), **{c: pl.Int64 for c in SCORES}},
    )


def _engine(name: str, frame: pl.DataFrame):
    engine = make_engine(name)
    engine.register("customer_scores", frame.select("customer_id", *SCORES).to_arrow())
    metrics = [c for c in ("recency_days", "frequency", "monetary") if c in frame.columns]
    engine.register("features", frame.select("customer_id", *metrics).to_arrow())
    return engine


@pytest.mark.parametrize("engine_name", ENGINES)
def test_rfm_map_lookup_joins_on_the_cells_and_leaves_unmatched_rows_null(engine_name: str) -> None:
    seg_map = load_segment_map("rfm_11")
    engine = _engine(engine_name, _rfm_frame())
    got = segment_map_on_engine(engine, seg_map, "customer_scores", {"r": "r_score", "fm": "fm_score"})
    names = {s.key: s.name for s in seg_map.segments}
    want = pl.DataFrame(
        {
            "customer_id": [c[0] for c in RFM_CASES],
            "segment_key": [c[3] for c in RFM_CASES],
            "segment_name": [names.get(c[3]) for c in RFM_CASES],
        },
        schema={"customer_id": pl.String, "segment_key": pl.String, "segment_name": pl.String},
    )
    assert_frame_equal(got.cast(pl.String), want)
    # the polars join of the DuckDB path over the same cell table
    polars = apply_segment_map(_rfm_frame(), seg_map, {"r": "r_score", "fm": "fm_score"}, "segment_key", "segment_name")
    assert_frame_equal(polars.select(want.columns), want)


# value_high_method -> the value class of a..e (p, the prospect, is null) worked out by hand
VALUE_CASES = {
    # mean: R high = fewer than 100 days (a-d); F high = more than 3 orders (e); M high = more than
    # 70000 cents (e). a-d: R high F low M low; e: R low F high M high.
    "mean": ["general_develop"] * 4 + ["important_keep"],
    # median: 30 days / 1 order / 7000 cents. a, b: R high only; c: all low; d, e: F and M high, R low.
    "median": ["general_develop", "general_develop", "general_retain", "important_keep", "important_keep"],
    # score >= 3: a (R5 F1 M1) R only; b (R4 F2 M2) R only; c (3,3,3) all high; d (2,4,4), e (1,5,5) F and M.
    "score": ["general_develop", "general_develop", "important_value", "important_keep", "important_keep"],
}


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("method", sorted(VALUE_CASES))
def test_value_map_levels_and_lookup_on_the_engine(engine_name: str, method: str) -> None:
    settings = load_segmentation_settings({"rfm": {"value_high_method": method}}).rfm
    frame = _value_frame()
    got = assign_rfm_segments_on_engine(_engine(engine_name, frame), frame, settings)
    assert got["value_class"].to_list() == [*VALUE_CASES[method], None]
    assert got["rfm_segment"].to_list() == ["new", "potential_loyalist", "need_attention", "at_risk", "cant_lose", None]
    # identical, names included, to the polars path
    want = assign_rfm_segments(frame, settings)
    assert_frame_equal(got, want)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_value_map_without_scored_buyers_gives_nulls(engine_name: str) -> None:
    """No scored buyer: the bounds are null (nothing to average); every label is null, no error."""
    frame = _value_frame().with_columns(pl.lit(None, pl.Int64).alias(c) for c in SCORES)
    got = assign_rfm_segments_on_engine(_engine(engine_name, frame), frame, load_segmentation_settings().rfm)
    assert got["value_class"].null_count() == got.height == got["rfm_segment"].null_count()
