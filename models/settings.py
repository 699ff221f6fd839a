"""Segmentation settings: the defaults in ``defaults.yaml`` deep-merged with user overrides, validated.

Overrides come from the ``segmentation:`` key of segments.yaml or from run config. Mappings merge
key by key; lists and scalars replace the default whole. Any error names the key path, e.g.
``segmentation.lifecycle.churn_days``.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from data_contracts.contracts import Windows, render_windows, window_key
from models.segment_maps import SegmentMap, SegmentMapError, load_segment_map

DEFAULTS_PATH = Path(__file__).resolve().parent / "defaults.yaml"
GRADES: tuple[str, ...] = ("A", "B", "C")
GRADE_BASES: tuple[str, ...] = ("monetary", "frequency", "engagement")
LIFECYCLE_STAGES: tuple[str, ...] = ("prospect", "new", "reactivated", "active", "at_risk", "churned")
ROOT = "segmentation"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class SegmentationSettingsError(ValueError):
    """Invalid segmentation settings; the message names the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _ascending(values: list[Any]) -> list[Any]:
    if len(values) != 4 or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"give 4 strictly increasing thresholds, got {[str(v) for v in values]}")
    return values


class FixedThresholds(_Strict):
    """Business thresholds for the 'fixed' RFM method (see defaults.yaml for their meaning)."""

    recency_days: list[int]
    frequency: list[int]
    monetary: list[Decimal]

    @field_validator("recency_days", "frequency", "monetary")
    @classmethod
    def _four_ascending(cls, values: list[Any]) -> list[Any]:
        return _ascending(values)


class HighMinScore(_Strict):
    """Minimum score counted as 'high' on each axis of the value map."""

    r: int = Field(3, ge=1, le=5)
    f: int = Field(3, ge=1, le=5)
    m: int = Field(3, ge=1, le=5)


class RfmSettings(_Strict):
    """RFM scoring method, thresholds and segment maps."""

    method: Literal["quantile", "fixed"]
    fixed: FixedThresholds
    segment_map: str | dict[str, Any]
    value_map: str | dict[str, Any]
    value_high_method: Literal["mean", "median", "score"]
    value_high_min_score: HighMinScore

    @field_validator("segment_map", "value_map")
    @classmethod
    def _map_loads(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        try:
            load_segment_map(value)
        except SegmentMapError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _map_axes(self) -> RfmSettings:
        seg = load_segment_map(self.segment_map)
        if seg.levels is not None:
            raise ValueError("segment_map: must be over scores 1–5 (no 'levels')")
        val = load_segment_map(self.value_map)
        if val.levels is None:
            raise ValueError("value_map: must be over levels [low, high]")
        if "fm" in val.axes:
            raise ValueError("value_map: axes must be among r, f, m")
        return self

    def segment_map_obj(self) -> SegmentMap:
        """The validated R × FM segment map."""
        return load_segment_map(self.segment_map)

    def value_map_obj(self) -> SegmentMap:
        """The validated high/low value map."""
        return load_segment_map(self.value_map)


class Cutoffs(_Strict):
    """Cumulative share cut-offs: A up to ``a``, B up to ``b``, C beyond."""

    a: float = Field(gt=0, lt=1)
    b: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> Cutoffs:
        if not self.a < self.b:
            raise ValueError(f"a ({self.a}) must be below b ({self.b})")
        return self


class GradeSettings(_Strict):
    """A/B/C grade method, cut-offs, engagement metric and overall-grade bases."""

    method: Literal["pareto", "quantile"]
    pareto: Cutoffs
    quantile: Cutoffs
    engagement_columns: list[str] = Field(min_length=1)
    overall_bases: list[Literal["monetary", "frequency", "engagement"]] = Field(min_length=1)

    @property
    def cutoffs(self) -> Cutoffs:
        """Cut-offs of the chosen method."""
        return self.pareto if self.method == "pareto" else self.quantile


class LifecycleSettings(_Strict):
    """Lifecycle windows in days (``within N days`` means days <= N)."""

    new_days: int = Field(ge=0)
    active_days: int = Field(ge=0)
    churn_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> LifecycleSettings:
        if self.new_days > self.active_days:
            raise ValueError(f"new_days: must be <= active_days ({self.active_days}), got {self.new_days}")
        if self.churn_days <= self.active_days:
            raise ValueError(f"churn_days: must be > active_days ({self.active_days}), got {self.churn_days}")
        return self


class DisplayNames(_Strict):
    """English and Chinese display names."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class ClassificationRule(_Strict):
    """One rule of a classification: ``label`` when the rule ``when`` is true."""

    label: str
    when: str


class ClassificationSettings(_Strict):
    """A named, ordered, single-choice rule set: the first matching rule's label, else ``default``."""

    enabled: bool = True
    title: DisplayNames
    labels: dict[str, DisplayNames] = Field(min_length=1)
    rules: list[ClassificationRule]
    default: str

    @model_validator(mode="after")
    def _labels_known(self) -> ClassificationSettings:
        known = list(self.labels)
        for key in known:
            if not _IDENT.match(key):
                raise ValueError(f"labels.{key}: label keys must be lower_snake_case ASCII")
        for i, rule in enumerate(self.rules):
            if rule.label not in self.labels:
                raise ValueError(f"rules.{i}.label: unknown label {rule.label!r}; labels define {known}")
        if self.default not in self.labels:
            raise ValueError(f"default: unknown label {self.default!r}; labels define {known}")
        return self


class TagSettings(_Strict):
    """A named boolean rule; a customer carries every tag whose rule is true."""

    enabled: bool = True
    title: DisplayNames
    when: str


class RuleLintSettings(_Strict):
    """Per-snapshot rule warnings: a default label holding more than this share of customers."""

    max_default_share: float = Field(0.9, gt=0, le=1)


class ClusterFeature(_Strict):
    """A clustering feature: column, null fill value and level labels (low, mid, high)."""

    column: str
    fill_null: float = Field(0, ge=0)
    labels: tuple[str, str, str]
    name: str | None = None  # noun telling clusters apart, e.g. "spend" in "(more spend)"; default: the column


class ClusterSettings(_Strict):
    """KMeans clustering over log1p-transformed, standardized features."""

    enabled: bool
    population: Literal["all", "buyers"]
    features: list[ClusterFeature] = Field(min_length=1)
    k: int | None = Field(ge=1, le=50)
    k_range: tuple[int, int]
    sample_size: int = Field(ge=10)
    silhouette_sample_size: int = Field(ge=10)
    n_init: int = Field(ge=1, le=100)
    random_state: int = Field(ge=0)
    name_threshold: float = Field(gt=0)
    name_keep_distance: float = Field(0.5, ge=0)
    refit_every_days: int = Field(7, ge=0, le=3650)
    refit_distance_growth: float = Field(0.2, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ClusterSettings:
        lo, hi = self.k_range
        if not 2 <= lo <= hi <= 50:
            raise ValueError(f"k_range: need 2 <= low <= high <= 50, got {list(self.k_range)}")
        cols = [f.column for f in self.features]
        if len(set(cols)) != len(cols):
            raise ValueError(f"features: columns repeat: {cols}")
        return self


class CalibrationSettings(_Strict):
    """Holdout check of the purchase model: fit up to D - holdout_days, compare the last holdout_days."""

    enabled: bool
    holdout_days: int = Field(ge=1, le=3650)
    max_error: float = Field(gt=0)
    top_bucket: int = Field(ge=1, le=50)


class PredictionSettings(_Strict):
    """Churn probability and CLV from BG/NBD + Gamma-Gamma (pymc-marketing, MAP); see models/clv.py."""

    enabled: bool
    purchase_model: Literal["bg_nbd", "modified_bg_nbd"]
    purchase_horizon_days: int = Field(ge=1, le=3650)
    clv_horizon_days: int = Field(ge=1, le=3650)
    annual_discount_rate: float = Field(ge=0, le=1)
    churn_threshold: float = Field(gt=0, lt=1)
    min_repeat_buyers: int = Field(ge=2)
    fit_sample_size: int = Field(ge=100)
    random_state: int = Field(ge=0)
    refit_every_days: int = Field(7, ge=0, le=3650)
    calibration: CalibrationSettings


class SegmentationSettings(_Strict):
    """Every segmentation rule, validated; build with ``load_segmentation_settings``.

    Column names and rules that named a window by placeholder (``sessions_{long}d``,
    ``complaints_{complaint}d >= 1``) are already rendered with the windows of the snapshot
    (``load_segmentation_settings(..., windows=...)``); ``windows`` says which, and rules are type-checked
    against the ``customer_segments`` columns those windows name.
    """

    rfm: RfmSettings
    grades: GradeSettings
    lifecycle: LifecycleSettings
    classifications: dict[str, ClassificationSettings]
    tags: dict[str, TagSettings]
    rule_lint: RuleLintSettings
    summary_group_by: list[str]
    clusters: ClusterSettings
    prediction: PredictionSettings
    _windows: Windows = PrivateAttr(default_factory=lambda: window_key(None))

    @model_validator(mode="after")
    def _rules_compile(self, info: ValidationInfo) -> SegmentationSettings:
        from models.rule_lint import lint_rules

        self._windows = window_key(dict((info.context or {}).get("windows") or ()))
        errors = [f for f in lint_rules(self) if f.severity == "error"]  # parses and type-checks every rule
        if errors:
            raise ValueError("; ".join(f"{f.where}: {f.message}" for f in errors))
        return self

    @field_validator("summary_group_by")
    @classmethod
    def _group_columns(cls, values: list[str]) -> list[str]:
        from data_contracts.contracts import load_output_contract

        strings = [c.name for c in load_output_contract("customer_segments").columns if c.type == "string"]
        bad = [v for v in values if v not in strings]
        if bad:
            raise ValueError(f"unknown grouping column(s) {bad}; string columns of customer_segments: {strings}")
        return values

    @property
    def windows(self) -> dict[str, int]:
        """The window lengths the placeholders were rendered with: ``{"short": 30, "long": 90, "complaint": 90}``."""
        return dict(self._windows)

    @property
    def window_key(self) -> Windows:
        """``windows`` as a hashable key (``data_contracts.contracts.window_key``)."""
        return self._windows

    def active_classifications(self) -> dict[str, ClassificationSettings]:
        """Enabled classifications in config order (value_tier first by default)."""
        return {k: v for k, v in self.classifications.items() if v.enabled}

    def active_tags(self) -> dict[str, TagSettings]:
        """Enabled tags in config order."""
        return {k: v for k, v in self.tags.items() if v.enabled}


@cache
def _defaults_text() -> str:
    return DEFAULTS_PATH.read_text(encoding="utf-8")


def default_settings_dict() -> dict[str, Any]:
    """A fresh copy of defaults.yaml as a dict."""
    return yaml.safe_load(_defaults_text())


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` over ``base``: mappings merge recursively, anything else replaces."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_SUBPATH = re.compile(r"^([A-Za-z0-9_.]+): ")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join([ROOT, *(str(p) for p in err["loc"])])
        msg = err["msg"].removeprefix("Value error, ")
        sub = _SUBPATH.match(msg)
        if sub:  # a model validator named the key below its own level
            path, msg = f"{path}.{sub.group(1)}", msg[sub.end() :]
        given = err.get("input")
        shown = "" if isinstance(given, Mapping | list) else f" (got {given!r})"
        lines.append(f"{path}: {msg}{shown}")
    return "; ".join(lines)


def load_segmentation_settings(
    overrides: Mapping[str, Any] | None = None, windows: Mapping[str, int] | None = None
) -> SegmentationSettings:
    """Defaults deep-merged with ``overrides`` and validated; errors name the key path.

    Column names and classification/tag rules that name a window by placeholder (``sessions_{long}d``,
    ``complaints_{complaint}d >= 1``) are rendered with ``windows`` (the windows the snapshot's features
    were built with, i.e. ``features.short_window_days`` / ``long_window_days`` / ``complaint_window_days``;
    default 30/90/90), so a shipped rule follows a changed window.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise SegmentationSettingsError(f"{ROOT}: expected a mapping, got {type(overrides).__name__}")
    if overrides and "value_tier" in overrides:
        raise SegmentationSettingsError(
            f"{ROOT}.value_tier: the value tier is now a classification; move its rules under "
            f"{ROOT}.classifications.value_tier (see docs/definitions.md, 'Classifications and tags')"
        )
    merged = deep_merge(default_settings_dict(), overrides or {})
    key = window_key(dict(windows or {}))
    grades = merged.get("grades")
    if isinstance(grades, dict) and isinstance(grades.get("engagement_columns"), list):
        grades["engagement_columns"] = [
            _render(c, key, "grades.engagement_columns") for c in grades["engagement_columns"]
        ]
    clusters = merged.get("clusters")
    if isinstance(clusters, dict) and isinstance(clusters.get("features"), list):
        for i, feat in enumerate(clusters["features"]):
            if isinstance(feat, dict) and isinstance(feat.get("column"), str):
                feat["column"] = _render(feat["column"], key, f"clusters.features.{i}.column")
    _render_rules(merged, key)
    try:
        return SegmentationSettings.model_validate(merged, context={"windows": key})
    except ValidationError as exc:
        raise SegmentationSettingsError(_format_errors(exc)) from None


_PLACEHOLDER = re.compile(r"\{[^{}']*\}")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_WINDOW_KEYS = {"short": "short_window_days", "long": "long_window_days", "complaint": "complaint_window_days"}


def _unknown_placeholder(text: str, found: str, path: str) -> SegmentationSettingsError:
    known = ", ".join(f"{{{k}}} (features.{v})" for k, v in _WINDOW_KEYS.items())
    return SegmentationSettingsError(f"{ROOT}.{path}: unknown window placeholder {found} in {text!r}; known: {known}")


def render_rule(text: Any, windows: Windows, path: str) -> Any:
    """Rule ``text`` with ``{short}``, ``{long}`` and ``{complaint}`` replaced by day counts outside string
    literals (``region = '{x}'`` is left alone); any other ``{...}`` is an error naming it and ``path``."""
    if not isinstance(text, str):
        return text
    parts: list[str] = []
    pos = 0
    for lit in [*_STRING_LITERAL.finditer(text), None]:
        end = lit.start() if lit else len(text)
        code = render_windows(text[pos:end], windows)
        bad = _PLACEHOLDER.search(code)
        if bad:
            raise _unknown_placeholder(text, bad.group(0), path)
        parts.append(code + (lit.group(0) if lit else ""))
        pos = lit.end() if lit else end
    return "".join(parts)


def _render_rules(merged: dict[str, Any], windows: Windows) -> None:
    """Render window placeholders in every classification rule and tag rule of ``merged``, in place."""
    classifications = merged.get("classifications")
    if isinstance(classifications, dict):
        for name, cls in classifications.items():
            rules = cls.get("rules") if isinstance(cls, dict) else None
            for i, rule in enumerate(rules if isinstance(rules, list) else []):
                if isinstance(rule, dict) and "when" in rule:
                    rule["when"] = render_rule(rule["when"], windows, f"classifications.{name}.rules.{i}.when")
    tags = merged.get("tags")
    if isinstance(tags, dict):
        for name, tag in tags.items():
            if isinstance(tag, dict) and "when" in tag:
                tag["when"] = render_rule(tag["when"], windows, f"tags.{name}.when")


def _render(column: Any, windows: Windows, path: str) -> Any:
    """``column`` with window placeholders filled in; an unknown placeholder names the key."""
    rendered = render_rule(column, windows, path)  # a column name is a rule without string literals
    if isinstance(rendered, str) and ("{" in rendered or "}" in rendered):
        raise _unknown_placeholder(column, "'{' or '}'", path)
    return rendered
