"""The ``customer_segments`` contract as published under a given config: static file + rule-made columns.

The static contract (``data_contracts/outputs/customer_segments.yaml``) lists the columns every config
has. The config adds, in registry order: each classification other than value tier (``<name>``,
``<name>_name``, ``<name>_name_en``), each tag flag (``tag_<name>``) and, for every segmentation, ``<column>_computed``
(value before overrides), ``<column>_previous`` and ``<column>_since`` (history). Publishing, the data
dictionary and the checks take this contract, so a classification added in config is published whole.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from data_contracts.contracts import Column, Contract, load_output_contract, output_contracts
from models.history import add_history
from models.overrides import Override, apply_overrides
from models.registry import Registry, builtin_registry
from models.settings import SegmentationSettings


def _col(name: str, type_: str, description: str, **kw: object) -> Column:
    return Column(name=name, type=type_, description=description, **kw)  # type: ignore[arg-type]


def customer_segments_contract(
    settings: SegmentationSettings, registry: Registry | None = None, windows: dict[str, int] | None = None
) -> Contract:
    """The static contract (window columns named from ``windows``) plus the columns the config adds."""
    registry = registry or builtin_registry(settings)
    base = load_output_contract("customer_segments", windows)
    static = {c.name: c for c in base.columns}
    types = {c.name: c.type for c in base.columns}
    added: list[Column] = []
    for name, cls in settings.active_classifications().items():
        keys = tuple(cls.labels)
        col = _col(
            name,
            "string",
            f"{cls.title.en} ({cls.title.zh}): label key, after manual overrides; one of {', '.join(keys)}.",
            required=True,
            accepted_values=keys,
        )
        display = _col(f"{name}_name", "string", f"Display name of {name} (Chinese).")
        display_en = _col(f"{name}_name_en", "string", f"Display name of {name} (English).")
        if name in static:
            static[name], static[f"{name}_name"], static[f"{name}_name_en"] = col, display, display_en
        else:
            added += [col, display, display_en]
        types[name] = "string"
    for name, tag in settings.active_tags().items():
        added.append(
            _col(
                f"tag_{name}",
                "boolean",
                f"Tag {name}: {tag.title.en} ({tag.title.zh}); rule: {' '.join(tag.when.split())}",
                required=True,
            )
        )
        types[f"tag_{name}"] = "boolean"
    for seg in registry:
        kind = types.get(seg.column)
        if kind is None:
            continue
        added += [
            _col(f"{seg.column}_computed", kind, f"{seg.title_en}: value computed by the rules, before overrides."),
            _col(
                f"{seg.column}_previous",
                kind,
                f"{seg.title_en} before the current value started (null while it has had one value).",
            ),
            _col(
                f"{seg.column}_since",
                "date",
                f"Snapshot date the current {seg.title_en.lower()} started.",
                required=True,
            ),
        ]
    columns = (*static.values(), *added)
    return base.model_copy(update={"columns": columns})


def published_contracts(settings: SegmentationSettings, windows: dict[str, int] | None = None) -> dict[str, Contract]:
    """Every output contract by table name, ``customer_segments`` extended for ``settings``."""
    contracts = output_contracts(windows)
    contracts["customer_segments"] = customer_segments_contract(settings, windows=windows)
    return contracts


def finalize_customers(
    customers: pl.DataFrame,
    overrides: list[Override],
    previous: pl.DataFrame | None,
    previous_date: date | None,
    settings: SegmentationSettings,
    as_of: date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Overrides, then history, on one snapshot's segmented customers: (customer_segments rows, override_audit)."""
    registry = builtin_registry(settings)
    names = {s.column: {lab.key: lab.zh for lab in s.labels} for s in registry if s.labels and s.kind != "tag"}
    frame, audit = apply_overrides(customers, overrides, registry, as_of, names)
    return add_history(with_english_names(frame, registry), previous, registry, as_of, previous_date), audit


def with_english_names(frame: pl.DataFrame, registry: Registry) -> pl.DataFrame:
    """``<column>_name_en`` beside every ``<column>_name`` (Chinese), from the registry's English labels.

    Both are published; ``language: en | zh`` only picks which one the report and exports show.
    """
    names = [
        pl.col(s.column)
        .replace_strict({lab.key: lab.en for lab in s.labels}, default=None, return_dtype=pl.String)
        .alias(f"{s.column}_name_en")
        for s in registry
        if s.labels and s.kind != "tag" and f"{s.column}_name" in frame.columns
    ]
    return frame.with_columns(names) if names else frame
