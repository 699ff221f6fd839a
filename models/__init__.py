"""Segmentation models: pure functions over a polars frame of one snapshot's customer features.

Public API (imported lazily so ``import models.settings`` stays light):

- ``load_segmentation_settings(overrides) -> SegmentationSettings`` (defaults.yaml + overrides)
- ``segment_customers(features, settings, as_of, previous_centroids=None) -> SegmentationResult``
- building blocks: ``score_rfm``, ``load_segment_map``/``apply_segment_map``, ``grade_customers``,
  ``assign_lifecycle``, ``apply_classifications`` (value tier and user classifications, tags),
  ``cluster_customers``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "SegmentationSettings": "models.settings",
    "SegmentationSettingsError": "models.settings",
    "load_segmentation_settings": "models.settings",
    "SegmentationResult": "models.pipeline",
    "segment_customers": "models.pipeline",
    "assign_rfm_segments": "models.pipeline",
    "OUTPUT_COLUMNS": "models.pipeline",
    "score_rfm": "models.rfm",
    "SegmentMap": "models.segment_maps",
    "SegmentMapError": "models.segment_maps",
    "load_segment_map": "models.segment_maps",
    "apply_segment_map": "models.segment_maps",
    "grade_customers": "models.grades",
    "assign_lifecycle": "models.lifecycle",
    "apply_classifications": "models.classifications",
    "cluster_customers": "models.clusters",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
