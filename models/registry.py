"""The registry of segmentations: every column of ``customer_segments`` that puts a customer in a class.

One entry per segmentation (RFM segment, 8-class value map, each A/B/C grade, lifecycle stage, the
classifications of the config (value tier first), cluster, and one per tag): its column, its ordered
labels (English key, English and Chinese display names) and what consumes it (summary, migrations,
size-drift check, export, report).
``segment_summary``, ``segment_migrations``, the drift and unassigned checks, ``segments export --by``,
the report and the data dictionary all iterate this registry, so adding a segmentation is one entry.

Labels of built-in segmentations come from the validated settings (segment maps, tier labels); clusters
and home stores have data-driven labels (cluster ids named per snapshot, the store ids of the orders), so
their ``labels`` are empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.settings import GRADE_BASES, GRADES, LIFECYCLE_STAGES, SegmentationSettings

Language = Literal["en", "zh"]
UNASSIGNED = "unassigned"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

LIFECYCLE_NAMES: dict[str, tuple[str, str]] = {
    "prospect": ("Prospect", "潜在客户"),
    "new": ("New", "新客户"),
    "reactivated": ("Reactivated", "回流客户"),
    "active": ("Active", "活跃客户"),
    "at_risk": ("At risk", "流失风险客户"),
    "churned": ("Churned", "已流失客户"),
}
GRADE_NAMES: dict[str, tuple[str, str]] = {g: (f"Grade {g}", f"{g}类客户") for g in GRADES}
BASIS_TITLES: dict[str, tuple[str, str]] = {
    "monetary": ("Monetary grade", "消费金额等级"),
    "frequency": ("Frequency grade", "消费频次等级"),
    "engagement": ("Engagement grade", "活跃度等级"),
    "overall": ("Overall grade", "综合等级"),
}


class RegistryError(ValueError):
    """A segmentation entry is malformed or a name/label is unknown; the message lists what is known."""


@dataclass(frozen=True)
class Label:
    """One class of a segmentation: stable English key plus display names."""

    key: str
    en: str
    zh: str

    def display(self, language: Language) -> str:
        """The display name in ``language``."""
        return self.zh if language == "zh" else self.en


# A tag is a segmentation with two labels: the SQL summary casts the boolean to 'true' / 'false'.
TAG_LABELS = (Label("true", "Tagged", "有此标签"), Label("false", "Not tagged", "无此标签"))


@dataclass(frozen=True)
class Segmentation:
    """One segmentation: the column holding the label key and who consumes it."""

    name: str
    column: str
    title_en: str
    title_zh: str
    labels: tuple[Label, ...] = ()
    summarized: bool = True
    migrations: bool = True
    drift: bool = True
    exportable: bool = True
    report: bool = True
    kind: Literal["builtin", "classification", "tag", "prediction"] = "builtin"

    def __post_init__(self) -> None:
        for ident in (self.name, self.column):
            if not _IDENT.match(ident):
                raise RegistryError(f"segmentation {ident!r}: names and columns must be lower_snake_case")
        keys = [lab.key for lab in self.labels]
        if len(set(keys)) != len(keys):
            raise RegistryError(f"segmentation {self.name!r}: label keys repeat: {keys}")

    @property
    def keys(self) -> tuple[str, ...]:
        """Label keys in display order (empty for data-driven labels such as clusters)."""
        return tuple(lab.key for lab in self.labels)

    def title(self, language: Language) -> str:
        """The segmentation's display title in ``language``."""
        return self.title_zh if language == "zh" else self.title_en

    def label(self, key: str) -> Label | None:
        """The label with this key, or None (unknown or data-driven)."""
        return next((lab for lab in self.labels if lab.key == key), None)

    def display(self, key: str | None, language: Language) -> str:
        """Display name of ``key`` (the key itself when it has no label, e.g. a cluster id)."""
        if key is None:
            return "未分配" if language == "zh" else "Unassigned"
        lab = self.label(key)
        return lab.display(language) if lab else key

    def resolve(self, value: str) -> str:
        """The key for a key or an English/Chinese display name (case-insensitive); RegistryError if none."""
        if not self.labels or value in self.keys:
            return value
        wanted = value.strip().casefold()
        for lab in self.labels:
            if wanted in (lab.key.casefold(), lab.en.casefold(), lab.zh.casefold()):
                return lab.key
        known = ", ".join(f"{lab.key} ({lab.en} / {lab.zh})" for lab in self.labels)
        raise RegistryError(f"{self.name}: no label {value!r}; known: {known}")


@dataclass(frozen=True)
class Registry:
    """Every segmentation, in a stable order."""

    segmentations: tuple[Segmentation, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [s.name for s in self.segmentations]
        if len(set(names)) != len(names):
            raise RegistryError(f"segmentation names repeat: {names}")

    def __iter__(self) -> Iterator[Segmentation]:
        return iter(self.segmentations)

    @property
    def names(self) -> tuple[str, ...]:
        """Names in order."""
        return tuple(s.name for s in self.segmentations)

    def get(self, name: str) -> Segmentation:
        """The segmentation called ``name`` (or whose column is ``name``)."""
        for s in self.segmentations:
            if name in (s.name, s.column):
                return s
        raise RegistryError(f"unknown segmentation {name!r}; known: {', '.join(self.names)}")

    def where(self, flag: str) -> tuple[Segmentation, ...]:
        """Segmentations whose boolean ``flag`` (summarized, migrations, drift, exportable, report) is set."""
        return tuple(s for s in self.segmentations if getattr(s, flag))

    def extended(self, *more: Segmentation) -> Registry:
        """A registry with ``more`` appended (user classifications, predictions)."""
        return Registry((*self.segmentations, *more))


def _humanize(key: str) -> str:
    return key.replace("_", " ").capitalize()


def builtin_registry(settings: SegmentationSettings) -> Registry:
    """The built-in segmentations, labels taken from the validated settings."""
    seg_map = settings.rfm.segment_map_obj()
    value_map = settings.rfm.value_map_obj()
    entries: list[Segmentation] = [
        Segmentation(
            "rfm_segment",
            "rfm_segment",
            "RFM segment",
            "RFM客户分群",
            tuple(Label(s.key, s.name_en or _humanize(s.key), s.name) for s in seg_map.segments),
        ),
        Segmentation(
            "value_class",
            "value_class",
            "RFM value class",
            "RFM价值分类",
            tuple(Label(s.key, s.name_en or _humanize(s.key), s.name) for s in value_map.segments),
            migrations=False,
        ),
    ]
    grade_labels = tuple(Label(g, *GRADE_NAMES[g]) for g in GRADES)
    for basis in (*GRADE_BASES, "overall"):
        entries.append(
            Segmentation(
                f"{basis}_grade",
                f"{basis}_grade",
                *BASIS_TITLES[basis],
                grade_labels,
                migrations=basis == "overall",
                exportable=basis == "overall",
            )
        )
    entries.append(
        Segmentation(
            "lifecycle_stage",
            "lifecycle_stage",
            "Lifecycle stage",
            "生命周期阶段",
            tuple(Label(s, *LIFECYCLE_NAMES[s]) for s in LIFECYCLE_STAGES),
        )
    )
    for name, cls in settings.active_classifications().items():
        labels = tuple(Label(k, v.en, v.zh) for k, v in cls.labels.items())
        entries.append(Segmentation(name, name, cls.title.en, cls.title.zh, labels, kind="classification"))
    # Chain stores: the store a customer spends most in (a feature); labels are the store ids found.
    entries.append(Segmentation("home_store", "home_store", "Home store", "所属门店"))
    entries.append(Segmentation("cluster", "cluster_id", "Behaviour cluster", "行为聚类"))
    for name, tag in settings.active_tags().items():
        entries.append(Segmentation(f"tag_{name}", f"tag_{name}", tag.title.en, tag.title.zh, TAG_LABELS, kind="tag"))
    return Registry(tuple(entries))


def config_registry(
    segmentation: Mapping[str, Any] | None = None, windows: Mapping[str, int] | None = None
) -> Registry:
    """The registry under the ``segmentation:`` rules of a config: every consumer builds it here.

    Built-in segmentations, classifications and tags (``builtin_registry``), then the prediction
    (``predicted_churn``), which is filled after segmentation by the churn model and so has no history or
    override columns. ``windows`` (``Settings.windows()``) fill the window placeholders of the rules.
    """
    from models.clv import prediction_segmentations
    from models.settings import load_segmentation_settings

    settings = load_segmentation_settings(segmentation or {}, windows=windows)
    return builtin_registry(settings).extended(*prediction_segmentations(settings))
