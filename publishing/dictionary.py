"""The data dictionary of the published tables, built from the output contracts.

Both views here are plain data: Markdown for the docs and (name, type, description) tuples that the
Dagster layer turns into a ``TableSchema``. Types are the contracts' logical types (``string``,
``integer``, ``decimal``, ...); the storage type of each is in ``data_contracts.contracts.SQL_TYPES``.
"""

from __future__ import annotations

from collections.abc import Iterable

from data_contracts.contracts import Contract
from models.registry import Registry


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def dagster_column_schema(contract: Contract) -> list[tuple[str, str, str]]:
    """(name, logical type, description) of each contract column, in contract order."""
    return [(c.name, c.type, c.description) for c in contract.columns]


def render_table(contract: Contract) -> str:
    """Markdown section for one table: description, grain, key and a column table."""
    key = ", ".join(f"`{k}`" for k in contract.primary_key) or "none"
    lines = [f"## `{contract.name}`", ""]
    if contract.description:
        lines += [contract.description.strip(), ""]
    lines += [
        f"- **Grain:** {contract.grain}",
        f"- **Key:** {key}",
        "",
        "| Column | Type | Description |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{name}` | {typ} | {_cell(desc)} |" for name, typ, desc in dagster_column_schema(contract)]
    return "\n".join(lines) + "\n"


def render_segmentations(registry: Registry) -> str:
    """Markdown section listing every segmentation of the registry: column, labels and where it is used."""
    flags = ("summarized", "migrations", "drift", "exportable", "report")
    lines = [
        "## Segmentations",
        "",
        "Every column of `customer_segments` that puts a customer in a class (`models/registry.py`). "
        "Uses: S = `segment_summary`, M = `segment_migrations`, D = size-drift check, E = `segments export --by`, "
        "R = report.",
        "",
        "| Segmentation | Column | Labels (key: English / Chinese) | Uses |",
        "| --- | --- | --- | --- |",
    ]
    for seg in registry:
        labels = "; ".join(f"`{lab.key}`: {lab.en} / {lab.zh}" for lab in seg.labels) or "data-driven (per snapshot)"
        uses = " ".join(letter for flag, letter in zip(flags, "SMDER", strict=True) if getattr(seg, flag)) or "-"
        lines.append(f"| {_cell(seg.title_en)} ({_cell(seg.title_zh)}) | `{seg.column}` | {_cell(labels)} | {uses} |")
    return "\n".join(lines) + "\n"


def render_data_dictionary(
    contracts: Iterable[Contract], *, registry: Registry | None = None, title: str = "Data dictionary"
) -> str:
    """Markdown data dictionary: a table list, the segmentations, then one section per table (sorted by name)."""
    ordered = sorted(contracts, key=lambda c: c.name)
    lines = [
        f"# {title}",
        "",
        "Generated from `data_contracts/outputs/*.yaml` and the registry of segmentations by `segments docs`; "
        "edit those, not this file. Window-named columns are shown with the default windows "
        "(`features.short_window_days: 30`, `long_window_days: 90`, `complaint_window_days: 90` in segments.yaml); "
        "other windows rename them (`sessions_14d` ...).",
        "",
    ]
    lines += [f"- [`{c.name}`](#{c.name}): {_cell(c.description)}" for c in ordered]
    body = "\n".join(lines) + "\n"
    if registry is not None:
        body += "\n" + render_segmentations(registry)
    return body + "".join("\n" + render_table(c) for c in ordered)
