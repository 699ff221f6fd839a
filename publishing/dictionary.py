"""The data dictionary of the published tables, built from the output contracts.

Both views here are plain data: Markdown for the docs and (name, type, description) tuples that the
Dagster layer turns into a ``TableSchema``. Types are the contracts' logical types (``string``,
``integer``, ``decimal``, ...); the storage type of each is in ``data_contracts.contracts.SQL_TYPES``.
"""

from __future__ import annotations

from collections.abc import Iterable

from data_contracts.contracts import Contract


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


def render_data_dictionary(contracts: Iterable[Contract], *, title: str = "Data dictionary") -> str:
    """Markdown data dictionary: a table list, then one section per table (sorted by name)."""
    ordered = sorted(contracts, key=lambda c: c.name)
    lines = [
        f"# {title}",
        "",
        "Generated from `data_contracts/outputs/*.yaml`; edit the contracts, not this file.",
        "",
    ]
    lines += [f"- [`{c.name}`](#{c.name}): {_cell(c.description)}" for c in ordered]
    body = "\n".join(lines) + "\n"
    return body + "".join("\n" + render_table(c) for c in ordered)
