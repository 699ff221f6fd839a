"""Published Parquet written by Spark: ``customer_segments`` of ``engine: spark`` never passes through the driver.

The snapshot's rows are staged as Parquet (by DuckDB from the warehouse, streamed: ``stage_snapshot_table``)
where Spark can read them; :func:`spark_parquet_table` turns them into a ``publishing.deferred.DeferredTable``
whose writer is a Spark job. ``publishing.atomic.publish`` then validates it against the contract and has it
written to its hidden temp path, fsyncs and renames it under the publish lock like any table, so the layout,
file names, column order and Arrow schema are those of the DuckDB path and a killed run leaves nothing half
written.

Why pyarrow inside the job rather than ``DataFrame.write.parquet``: the published files carry the Arrow schema
with the contract's descriptions, canonical types (``list<item: string>``) and one ``part-0.parquet`` per
partition; Spark's own writer names files itself, writes lists as ``list<element>`` and no Arrow schema, so
readers could tell. The job runs on one task (one file per table is the layout): the rows stream through an
executor's Python worker in Arrow batches, grouped into row groups of pyarrow's default size, and the file
is written where the executor runs, so ``published_dir`` must be a path the executors share with the driver
on a cluster (the driver renames it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from data_contracts.contracts import Contract
from engines.spark import SparkEngine
from publishing.deferred import DeferredTable
from publishing.outputs import contract_select

SPARK_WRITTEN: tuple[str, ...] = ("customer_segments",)  # published tables Spark writes under engine: spark
ROW_GROUP_ROWS = 1024 * 1024  # pyarrow's default maximum row group: the same row groups as the DuckDB path
COMPRESSION = "zstd"  # as publishing.atomic writes


@dataclass(frozen=True)
class StagedTable:
    """A snapshot table staged as Parquet for Spark: where, and how many rows (from the file's footer)."""

    path: Path
    rows: int


def stage_snapshot_table(con: duckdb.DuckDBPyConnection, contract: Contract, as_of: date, path: Path) -> StagedTable:
    """Stream snapshot ``as_of`` of the warehouse table named by ``contract`` to the Parquet file ``path``, in
    the contract's columns and key order (the select ``publishing.outputs`` publishes), for Spark to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sql = contract_select(contract, f'select * from "{contract.name}" where snapshot_date = $d')
    con.sql(sql, params={"d": as_of}).write_parquet(str(path))
    (rows,) = con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone()  # footer only
    return StagedTable(path, int(rows))


def _writer(path: str, schema: pa.Schema, compression: str, row_group_rows: int) -> Any:
    """The function each Spark task runs (one task here): Arrow batches in, the Parquet file ``path`` out.

    Defined inside a function so cloudpickle ships it by value: executors need pyarrow, not this project.
    """

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def typed(batch: pa.RecordBatch) -> pa.Table:
            """The batch in the target's columns and types; a lossy cast names the column (as prepare_table)."""
            arrays = []
            for field in schema:
                column = batch.column(field.name)
                try:
                    arrays.append(column.cast(field.type, safe=True))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ValueError(
                        f"{path}: column {field.name!r} ({column.type}) cannot be stored as {field.type} "
                        f"without losing values: {exc}"
                    ) from None
            return pa.Table.from_arrays(arrays, schema=schema)

        rows, pending, buffered = 0, [], 0
        with open(path, "xb") as fh, pq.ParquetWriter(fh, schema, compression=compression) as out:
            for batch in batches:
                table = typed(batch)
                pending.append(table)
                buffered += table.num_rows
                while buffered >= row_group_rows:
                    whole = pa.concat_tables(pending)
                    out.write_table(whole.slice(0, row_group_rows), row_group_size=row_group_rows)
                    pending, buffered = [whole.slice(row_group_rows)], buffered - row_group_rows
                rows += table.num_rows
            if buffered or rows == 0:
                out.write_table(pa.concat_tables(pending) if pending else schema.empty_table())
        yield pa.RecordBatch.from_pydict({"rows": [rows]})

    return write


def spark_parquet_table(engine: SparkEngine, staged: StagedTable, order_by: Sequence[str]) -> DeferredTable:
    """The rows of the staged Parquet file as a table a Spark job writes when it is published, ordered by
    ``order_by`` (the contract key) within the job's single task."""
    from pyspark.sql.pandas.types import to_arrow_schema

    source, num_rows = staged.path, staged.rows
    frame = engine.session.read.parquet(str(source))
    schema = to_arrow_schema(frame.schema)

    def write(path: Path, target: pa.Schema) -> None:
        ordered = frame.coalesce(1).sortWithinPartitions(*order_by)
        job = ordered.mapInArrow(_writer(str(path), target, COMPRESSION, ROW_GROUP_ROWS), "rows long")
        written = sum(row["rows"] for row in job.collect())
        if written != num_rows:  # the staged file changed under us
            raise RuntimeError(f"{source}: Spark wrote {written} rows to {path}, expected {num_rows}")

    return DeferredTable(schema=schema, num_rows=num_rows, writer=write)
