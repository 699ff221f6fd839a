"""Small helpers shared by the asset modules: metadata formatting only, no business rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from data_contracts.contracts import Contract

OWNERS = ["team:data-engineering"]


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], limit: int = 50) -> dg.MetadataValue:
    """A Markdown table of at most ``limit`` rows (the rest summarised in a last line)."""
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    body = "".join("| " + " | ".join(_cell(r.get(c)) for c in columns) + " |\n" for r in list(rows)[:limit])
    more = f"\n… and {len(rows) - limit} more rows" if len(rows) > limit else ""
    return dg.MetadataValue.md(head + body + more)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


_DAGSTER_TYPES = {
    "string": "string",
    "integer": "int",
    "decimal": "decimal(18,2)",
    "double": "float",
    "timestamp": "timestamp",
    "date": "date",
    "boolean": "bool",
    "string_list": "list<string>",
}


def column_schema(contract: Contract) -> dg.TableSchema:
    """Dagster column schema (with descriptions) from a contract, derived local-date columns included."""
    cols = []
    for c in contract.columns:
        cols.append(dg.TableColumn(c.name, _DAGSTER_TYPES[c.type], description=c.description))
        if c.local_date:
            cols.append(dg.TableColumn(c.local_date, "date", description=f"Local business date of {c.name}."))
    return dg.TableSchema(columns=cols)
