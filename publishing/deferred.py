"""A table that publishing does not hold in memory: written straight to the file ``publish`` names.

``publish`` takes, for any table, either an Arrow table or a :class:`DeferredTable`: the schema of its rows,
their count and a function that writes them to a new file. A deferred table goes through the same atomic
publish as any other (validated against its contract first, written under a hidden temp name, fsynced,
renamed under the publish lock, removed as stale if the run dies), so a reader cannot tell who wrote it.
``engine: spark`` publishes ``customer_segments`` this way: Spark's executors write the file
(``engines/spark_publish.py``), the driver never holds the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from data_contracts.contracts import Contract
from publishing.prepare import prepare_table

# write(path, schema): write every row, columns and types exactly as ``schema`` (a subset of the source's
# columns in contract order, canonical types and contract metadata), to the new file ``path``.
Writer = Callable[[Path, pa.Schema], None]


@dataclass(frozen=True)
class DeferredTable:
    """Rows written by ``writer`` when published. ``schema`` is how the rows come (checked against the
    contract like a table's); ``target`` is what the file gets, set by :func:`prepare_any`."""

    schema: pa.Schema
    num_rows: int
    writer: Writer
    target: pa.Schema | None = None

    @property
    def column_names(self) -> list[str]:
        return (self.target or self.schema).names

    def drop_columns(self, columns: list[str]) -> DeferredTable:
        """The same rows without ``columns`` (a history partition leaves out ``snapshot_date``)."""
        target = self.target or self.schema
        keep = [i for i, name in enumerate(target.names) if name not in columns]
        return dataclasses.replace(self, target=pa.schema([target.field(i) for i in keep], metadata=target.metadata))

    def write(self, path: Path) -> None:
        """Write the rows to the new file ``path`` (which must not exist)."""
        self.writer(path, self.target or self.schema)


def prepare_any(
    name: str, table: pa.Table | DeferredTable, contract: Contract, snapshot_date: date | None
) -> pa.Table | DeferredTable:
    """``prepare_table`` for an Arrow table; for a deferred one, the same checks on its schema and the
    prepared schema (canonical types, contract metadata) as the file's target. Values a cast would lose
    fail in the writer, before the temp file is renamed."""
    if isinstance(table, DeferredTable):
        prepared = prepare_table(name, table.schema.empty_table(), contract, snapshot_date)
        return dataclasses.replace(table, target=prepared.schema)
    return prepare_table(name, table, contract, snapshot_date)
