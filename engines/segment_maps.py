"""Segment-map lookups as SQL on an engine: a join against the map's cell table, one statement for both engines.

``models.segment_maps`` validates a map and gives its cell table (``SegmentMap.lookup()``: one row per cell);
that table is the rule. ``sql/segment_map.sql`` joins a view of per-customer axis values against it, rendered
for DuckDB or Spark from the same file; the value map's high/low levels come from ``sql/value_levels.sql``
with the bounds of ``models.pipeline.value_level_rules``. The DuckDB path applies the same cell table with a
polars join (``models.segment_maps.apply_segment_map``); tests/test_spark_segment_maps.py holds both to the
same hand-worked labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from engines.engine import SqlEngine
from engines.sql import load_statement
from models.pipeline import (
    RFM_AXIS_COLUMNS,
    VALUE_METRICS,
    LevelRule,
    check_value_inputs,
    value_level_rules,
)
from models.rules import quote_identifier as ident
from models.segment_maps import SCORE_AXES, SegmentMap, SegmentMapError
from models.settings import RfmSettings

SQL_DIR = Path(__file__).resolve().parent / "sql"
CELLS_VIEW = "map_cells"
LEVELS_VIEW = "value_levels"
SCORES_VIEW = "customer_scores"


def segment_map_on_engine(
    engine: SqlEngine, seg_map: SegmentMap, source: str, axis_columns: Mapping[str, str]
) -> pl.DataFrame:
    """``customer_id``, ``segment_key``, ``segment_name`` of every customer of the view ``source`` under
    ``seg_map``, computed on ``engine``; ``axis_columns`` names the column holding each axis."""
    missing = [a for a in seg_map.axes if a not in axis_columns]
    if missing:
        raise SegmentMapError(f"segment map {seg_map.name}: no column given for axes {missing}")
    unknown = [a for a in seg_map.axes if a not in SCORE_AXES]
    if unknown:  # parse_segment_map refuses these already; the axes become identifiers below
        raise SegmentMapError(f"segment map {seg_map.name}: unknown axes {unknown}")
    engine.register(CELLS_VIEW, seg_map.lookup().to_arrow())
    statement = load_statement(
        SQL_DIR,
        "segment_map",
        engine.name,
        source=ident(source),
        axis_columns=",\n        ".join(f"{ident(axis_columns[a])} as {ident(a)}" for a in seg_map.axes),
        cell_match=" and ".join(f"map_input.{ident(a)} = {CELLS_VIEW}.{ident(a)}" for a in seg_map.axes),
    )
    return pl.from_arrow(engine.fetch(statement, {}))


def level_values(rules: Sequence[LevelRule]) -> dict[str, object]:
    """Parameters of value_levels.sql; an axis the value map does not use gets a rule that is never read."""
    by_axis = {rule.axis: rule for rule in rules}
    values: dict[str, object] = {}
    for axis in VALUE_METRICS:
        rule = by_axis.get(axis, LevelRule(axis, True, ">=", None))
        values |= {f"{axis}_on_score": rule.on_score, f"{axis}_op": rule.op, f"{axis}_bound": rule.bound}
    return values


def _labels(found: pl.DataFrame, key_column: str, name_column: str) -> pl.DataFrame:
    return found.select(
        "customer_id",
        pl.col("segment_key").cast(pl.String).alias(key_column),
        pl.col("segment_name").cast(pl.String).alias(name_column),
    )


def assign_rfm_segments_on_engine(engine: SqlEngine, frame: pl.DataFrame, settings: RfmSettings) -> pl.DataFrame:
    """``models.pipeline.assign_rfm_segments`` with both lookups run on ``engine``: the R × FM map over the
    ``customer_scores`` view and the value map over the ``value_levels`` view (built here from
    ``customer_scores`` and ``features``). ``frame`` is the same customers collected with their scores and
    metrics, from which the level bounds are decided; the labels are joined onto it by customer_id."""
    check_value_inputs(frame, settings)
    rfm = segment_map_on_engine(engine, settings.segment_map_obj(), SCORES_VIEW, RFM_AXIS_COLUMNS)
    values = level_values(value_level_rules(frame, settings))
    engine.create(LEVELS_VIEW, load_statement(SQL_DIR, "value_levels", engine.name), values)
    value_map = settings.value_map_obj()
    value = segment_map_on_engine(engine, value_map, LEVELS_VIEW, {a: a for a in value_map.axes})
    return frame.join(
        _labels(rfm, "rfm_segment", "rfm_segment_name"), on="customer_id", how="left", maintain_order="left"
    ).join(_labels(value, "value_class", "value_class_name"), on="customer_id", how="left", maintain_order="left")
