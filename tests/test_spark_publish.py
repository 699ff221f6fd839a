"""customer_segments written by Spark (engines/spark_publish.py) through the atomic publish: the same files.

The DuckDB path and the Spark path publish the same warehouse snapshot into two folders; the history
partition and the current set's file must have the same Arrow schema (contract metadata included) and the
same rows, and a Spark write that fails leaves the published folder exactly as it was.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from data_contracts.contracts import Contract
from engines import spark_publish
from engines.spark_publish import spark_parquet_table, stage_snapshot_table
from publishing.atomic import current_set, history_path, publish
from publishing.outputs import snapshot_tables

try:
    from tests.spark_helpers import make_engine
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from spark_helpers import make_engine

D = date(2026, 11, 21)
NAME = "customer_segments"
CONTRACT = Contract.model_validate(
    {
        "name": NAME,
        "description": "test table with every published column type",
        "grain": "one row per snapshot date and customer",
        "primary_key": ["snapshot_date", "customer_id"],
        "columns": [
            {"name": "snapshot_date", "type": "date", "description": "D", "required": True},
            {"name": "customer_id", "type": "string", "description": "id", "required": True},
            {"name": "frequency", "type": "integer", "description": "orders"},
            {"name": "monetary", "type": "decimal", "description": "net spend"},
            {"name": "share", "type": "double", "description": "a double"},
            {"name": "is_buyer", "type": "boolean", "description": "bought"},
            {"name": "last_purchase_date", "type": "date", "description": "a date"},
            {"name": "tags", "type": "string_list", "description": "tags"},
        ],
    }
)
ROWS = """
    ('2026-11-21', 'c', 2, 20.50, 0.25, true, '2026-11-01', ['vip', 'new']),
    ('2026-11-21', 'a', null, null, null, null, null, []),
    ('2026-11-20', 'a', 9, 9.00, 1.0, true, '2026-01-01', ['old']),
    ('2026-11-21', 'b', 1, -3.10, 0.1, false, '2025-12-31', null),
    ('2026-11-21', 'd', 7, 123456789012.34, 1e-9, true, '2026-11-21', ['x'])
"""


def _warehouse(path: Path, monetary_type: str = "DECIMAL(18,2)") -> Path:
    """A warehouse with two snapshots, rows out of key order and a column the contract does not publish."""
    con = duckdb.connect(str(path))
    con.execute(
        f"create table {NAME} (snapshot_date date, customer_id varchar, frequency bigint, "
        f"monetary {monetary_type}, share double, is_buyer boolean, last_purchase_date date, tags varchar[])"
    )
    con.execute(f"insert into {NAME} values {ROWS}")
    con.execute(f"alter table {NAME} add column internal varchar default 'not published'")
    con.close()
    return path


def _publish_with_duckdb(warehouse: Path, published: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    tables = snapshot_tables(con, D, names=[NAME], contracts={NAME: CONTRACT})
    con.close()
    publish(published, tables, snapshot_date=D, contracts={NAME: CONTRACT})


def _publish_with_spark(warehouse: Path, published: Path, staging: Path, as_of: date = D) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    staged = stage_snapshot_table(con, CONTRACT, as_of, staging / f"{NAME}.parquet")
    con.close()
    table = spark_parquet_table(make_engine("spark"), staged, CONTRACT.primary_key)
    publish(published, {NAME: table}, snapshot_date=as_of, contracts={NAME: CONTRACT})


def _files(published: Path) -> dict[str, Path]:
    snap = current_set(published)
    assert snap is not None
    return {"history": history_path(published, NAME, D), "current": snap.folder / f"{NAME}.parquet"}


DEFAULT_ROW_GROUP = spark_publish.ROW_GROUP_ROWS


@pytest.mark.parametrize("row_group_rows", [DEFAULT_ROW_GROUP, 2])
def test_spark_writes_the_files_the_duckdb_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_group_rows: int
) -> None:
    monkeypatch.setattr(spark_publish, "ROW_GROUP_ROWS", row_group_rows)
    warehouse = _warehouse(tmp_path / "wh.duckdb")
    _publish_with_duckdb(warehouse, tmp_path / "duck")
    _publish_with_spark(warehouse, tmp_path / "spark", tmp_path / "staging")
    want, got = _files(tmp_path / "duck"), _files(tmp_path / "spark")
    for kind in ("history", "current"):
        a, b = pq.read_table(want[kind]), pq.read_table(got[kind])
        assert b.schema.equals(a.schema, check_metadata=True), kind  # contract descriptions, list<item>, decimals
        assert b.equals(a), kind  # same rows in the same (key) order
        assert b.column("customer_id").to_pylist() == ["a", "b", "c", "d"]
    assert "snapshot_date" not in pq.read_schema(got["history"]).names  # the folder carries it
    if row_group_rows == DEFAULT_ROW_GROUP:  # same writer, same row groups: the same bytes here
        assert all(want[k].read_bytes() == got[k].read_bytes() for k in want)
        assert current_set(tmp_path / "spark").snapshot_id == current_set(tmp_path / "duck").snapshot_id
    groups = pq.ParquetFile(got["current"]).metadata.num_row_groups
    assert groups == (1 if row_group_rows > 4 else 2)  # 4 rows: one group, or groups of 2 rows


def test_a_failing_spark_write_leaves_the_published_folder_as_it_was(tmp_path: Path) -> None:
    """Planted defect: a staged value that does not fit the contract's DECIMAL(18,2) fails in the Spark job,
    after the temp file was opened; the previous set stays current and no temp file or partition remains."""
    published = tmp_path / "pub"
    _publish_with_duckdb(_warehouse(tmp_path / "good.duckdb"), published)
    before = current_set(published)
    files_before = sorted(p.relative_to(published) for p in published.rglob("*") if p.name != ".publish.lock")
    bad = _warehouse(tmp_path / "bad.duckdb", monetary_type="DECIMAL(38,2)")
    con = duckdb.connect(str(bad))
    con.execute(f"update {NAME} set monetary = 1e30, snapshot_date = date '2026-11-22' where snapshot_date = ?", [D])
    con.close()
    with pytest.raises(Exception, match=r"column 'monetary' .* cannot be stored as decimal128\(18, 2\)"):
        _publish_with_spark(bad, published, tmp_path / "staging", as_of=date(2026, 11, 22))
    after = current_set(published)
    assert after is not None and before is not None and after.snapshot_id == before.snapshot_id
    files_after = sorted(p.relative_to(published) for p in published.rglob("*") if p.name != ".publish.lock")
    assert files_after == files_before
