"""Segment maps as data: load, validate and apply.

A map names its axes (scores ``r``, ``f``, ``m``, ``fm`` with values 1–5, or the same axes as
``low``/``high`` levels) and lists segments, each with rules; a rule is a cartesian block of axis
values. A map is refused unless every cell of the axes' product belongs to exactly one segment: no
gaps, no overlaps, and no unreachable rule (one covering no cell, or only cells other rules cover).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAPS_DIR = Path(__file__).resolve().parent / "maps"
SCORE_AXES: tuple[str, ...] = ("r", "f", "m", "fm")
SCORES: tuple[int, ...] = (1, 2, 3, 4, 5)
LEVELS: tuple[str, ...] = ("low", "high")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")

Cell = tuple[int | str, ...]


class SegmentMapError(ValueError):
    """A segment map is malformed or does not cover every cell exactly once."""


class _SegmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=_KEY.pattern)
    name: str = Field(min_length=1)
    name_en: str = ""
    rules: list[dict[str, list[int | str]]]


class _MapSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    axes: list[str] = Field(min_length=1)
    levels: list[str] | None = None
    segments: list[_SegmentSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Segment:
    """One label of a map: snake_case key, display name (Chinese) and English name."""

    key: str
    name: str
    name_en: str


@dataclass(frozen=True)
class SegmentMap:
    """A validated map: every cell of ``axes``' product maps to exactly one segment key."""

    name: str
    axes: tuple[str, ...]
    levels: tuple[str, ...] | None
    segments: tuple[Segment, ...]
    cells: Mapping[Cell, str] = field(repr=False)

    @property
    def keys(self) -> tuple[str, ...]:
        """Segment keys in map order."""
        return tuple(s.key for s in self.segments)

    @property
    def domain(self) -> tuple[int | str, ...]:
        """Values each axis takes: scores 1–5 or the levels."""
        return self.levels if self.levels is not None else SCORES

    def lookup(self) -> pl.DataFrame:
        """One row per cell: the axis values, segment key and display name."""
        names = {s.key: s.name for s in self.segments}
        cells = sorted(self.cells, key=lambda c: tuple(self.domain.index(v) for v in c))
        dtype: pl.DataType = pl.String() if self.levels is not None else pl.Int64()
        data: dict[str, Any] = {
            axis: pl.Series(axis, [c[i] for c in cells], dtype=dtype) for i, axis in enumerate(self.axes)
        }
        data["segment_key"] = [self.cells[c] for c in cells]
        data["segment_name"] = [names[self.cells[c]] for c in cells]
        return pl.DataFrame(data)


def format_cell(axes: tuple[str, ...], cell: Cell) -> str:
    """A cell as people write it, e.g. ``R1·FM2`` or ``R high·F low·M high``."""
    sep = "" if all(isinstance(v, int) for v in cell) else " "
    return "·".join(f"{axis.upper()}{sep}{value}" for axis, value in zip(axes, cell, strict=True))


def parse_segment_map(spec: Mapping[str, Any], source: str = "<inline>") -> SegmentMap:
    """Validate a map given as data; raise SegmentMapError listing every problem found."""
    try:
        parsed = _MapSpec.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise SegmentMapError(f"segment map {source}: {problems}") from None

    problems: list[str] = []
    axes = tuple(parsed.axes)
    unknown_axes = [a for a in axes if a not in SCORE_AXES]
    if unknown_axes:
        problems.append(f"unknown axes {unknown_axes}; known: {list(SCORE_AXES)}")
    if len(set(axes)) != len(axes):
        problems.append(f"axes repeat: {list(axes)}")
    levels: tuple[str, ...] | None = None
    if parsed.levels is not None:
        if sorted(parsed.levels) != sorted(LEVELS):
            problems.append(f"levels must be {list(LEVELS)}, got {parsed.levels}")
        levels = LEVELS
    if problems:
        raise SegmentMapError(f"segment map {source}: " + "; ".join(problems))

    domain: tuple[int | str, ...] = levels if levels is not None else SCORES
    seen_keys: set[str] = set()
    claims: dict[Cell, list[tuple[str, str]]] = {}
    rule_cells: dict[str, list[Cell]] = {}
    for s_idx, seg in enumerate(parsed.segments):
        where = f"segments[{s_idx}] ({seg.key})"
        if seg.key in seen_keys:
            problems.append(f"{where}: duplicate key {seg.key!r}")
        seen_keys.add(seg.key)
        if not seg.rules:
            problems.append(f"{where}: unreachable segment: it has no rules")
        for r_idx, rule in enumerate(seg.rules):
            label = f"{where}.rules[{r_idx}]"
            bad_axes = sorted(set(rule) ^ set(axes))
            if bad_axes:
                problems.append(f"{label}: must give values for exactly the axes {list(axes)}; check {bad_axes}")
                continue
            off = {a: [v for v in rule[a] if v not in domain] for a in axes}
            off = {a: v for a, v in off.items() if v}
            if off:
                problems.append(f"{label}: unreachable values {off} (each axis takes {list(domain)})")
            values = [[v for v in domain if v in rule[a]] for a in axes]
            cells = [tuple(c) for c in itertools.product(*values)]
            rule_cells[label] = cells
            for cell in cells:
                claims.setdefault(cell, []).append((seg.key, label))

    all_cells = [tuple(c) for c in itertools.product(*[domain] * len(axes))]
    gaps = [c for c in all_cells if c not in claims]
    if gaps:
        problems.append(f"gap: cells {[format_cell(axes, c) for c in gaps]} belong to no segment")
    for cell in all_cells:
        owners = sorted({key for key, _ in claims.get(cell, [])})
        if len(owners) > 1:
            problems.append(f"overlap: cell {format_cell(axes, cell)} is claimed by segments {owners}")
    for label, cells in rule_cells.items():
        if not cells:
            problems.append(f"unreachable rule {label}: it covers no cell")
        elif all(len(claims[c]) > 1 for c in cells):
            problems.append(
                f"unreachable rule {label}: every cell it covers "
                f"{[format_cell(axes, c) for c in cells]} is also covered by another rule"
            )
    if problems:
        raise SegmentMapError(f"segment map {source}: " + "; ".join(problems))

    return SegmentMap(
        name=parsed.name,
        axes=axes,
        levels=levels,
        segments=tuple(Segment(s.key, s.name, s.name_en) for s in parsed.segments),
        cells={cell: owners[0][0] for cell, owners in claims.items()},
    )


@cache
def _load_bundled(name: str) -> SegmentMap:
    path = MAPS_DIR / f"{name}.yaml"
    if not _KEY.match(name) or not path.is_file():
        bundled = sorted(p.stem for p in MAPS_DIR.glob("*.yaml"))
        raise SegmentMapError(f"unknown segment map {name!r}; bundled maps: {bundled} (or give the map inline)")
    with path.open(encoding="utf-8") as fh:
        return parse_segment_map(yaml.safe_load(fh), source=str(path))


def load_segment_map(ref: str | Mapping[str, Any]) -> SegmentMap:
    """A bundled map by name (``models/maps/<name>.yaml``) or an inline map given as a mapping."""
    if isinstance(ref, str):
        return _load_bundled(ref)
    return parse_segment_map(ref)


def apply_segment_map(
    frame: pl.DataFrame,
    seg_map: SegmentMap,
    axis_columns: Mapping[str, str],
    key_column: str,
    name_column: str,
) -> pl.DataFrame:
    """Add ``key_column``/``name_column`` from the map; rows with a null axis value get nulls.

    ``axis_columns`` names the frame column holding each axis (e.g. ``{"r": "r_score"}``).
    """
    missing = [a for a in seg_map.axes if a not in axis_columns]
    if missing:
        raise SegmentMapError(f"segment map {seg_map.name}: no column given for axes {missing}")
    lookup = seg_map.lookup().rename(
        {**{a: axis_columns[a] for a in seg_map.axes}, "segment_key": key_column, "segment_name": name_column}
    )
    on = [axis_columns[a] for a in seg_map.axes]
    return frame.join(lookup, on=on, how="left", maintain_order="left")
