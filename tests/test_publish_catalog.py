"""The BI side of publishing: catalog.duckdb (views, comments, moved folders, DuckDB 1.x) and history readers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from data_contracts.contracts import Contract
from publishing import catalog as pub_catalog
from publishing import parquet as pub
from tests.test_publish import QUALITY_YAML, SEGMENTS_YAML, _contract, quality, segs, temp_files

DUCKDB1 = "1.1.3"
DUCKDB1_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "segments-test" / "duckdb1"


@pytest.fixture
def contracts(tmp_path: Path) -> dict[str, Contract]:
    return {c.name: c for c in (_contract(tmp_path, SEGMENTS_YAML), _contract(tmp_path, QUALITY_YAML))}


def _views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.sql("select view_name from duckdb_views() where not internal order by 1").fetchall()]


def _publish_two_days(root: Path, contracts: dict[str, Contract]) -> None:
    for i, day in enumerate((date(2024, 1, 1), date(2024, 2, 1))):
        pub.publish(root, {"segs": segs(day, 3 + i), "quality": quality()}, snapshot_date=day, contracts=contracts)


def test_catalog_has_current_and_history_views_with_contract_comments(tmp_path, contracts, monkeypatch):
    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    path = pub.build_catalog(root, contracts, paths="absolute")
    assert path == root.resolve() / "catalog.duckdb"
    assert temp_files(root) == []

    monkeypatch.chdir(tmp_path)  # absolute paths: the reader's working directory does not matter
    con = duckdb.connect(str(path), read_only=True)
    assert _views(con) == ["quality", "quality_history", "segs", "segs_history"]
    assert con.sql("select count(*), max(snapshot_date) from segs").fetchall() == [(4, date(2024, 2, 1))]
    assert con.sql("select snapshot_date, count(*) from segs_history group by 1 order by 1").fetchall() == [
        (date(2024, 1, 1), 3),
        (date(2024, 2, 1), 4),
    ]
    # history views keep the contract's column order, snapshot_date (from the folder) where it belongs
    cols = [r[0] for r in con.sql("describe segs_history").fetchall()]
    assert cols == ["snapshot_date", "customer_id", "orders", "revenue", "score", "last_order_ts", "is_vip"]
    assert [r[0] for r in con.sql("describe quality_history").fetchall()] == ["file", "rows", "snapshot_date"]
    assert con.sql("select count(*) from quality").fetchall() == [(2,)]
    comments = dict(
        con.sql("select column_name, comment from duckdb_columns() where table_name = 'segs_history'").fetchall()
    )
    assert comments["orders"] == "Orders placed | all time."
    view_comment = con.sql("select comment from duckdb_views() where view_name = 'segs'").fetchall()
    assert view_comment == [("One row per customer per snapshot. Grain: one row per customer per snapshot.",)]
    con.close()


def test_catalog_is_written_in_the_storage_format_duckdb_1x_reads(tmp_path, contracts):
    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    path = pub.build_catalog(root, contracts)
    assert pub.storage_version(path) == 64  # v1.0.0: DuckDB 1.0 ... 2.x read it; v2.0.0 files are not 64


def test_catalog_with_relative_paths_works_after_the_folder_moves(tmp_path, contracts, monkeypatch):
    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    pub.build_catalog(root, contracts)  # relative is the default
    moved = tmp_path / "mounted" / "elsewhere"
    moved.parent.mkdir()
    root.rename(moved)
    monkeypatch.chdir(tmp_path)
    con = pub.connect_catalog(moved / "catalog.duckdb")  # sets file_search_path to the catalog's folder
    assert con.sql("select count(*) from segs").fetchall() == [(4,)]
    assert con.sql("select count(*) from segs_history").fetchall() == [(7,)]
    con.close()
    monkeypatch.chdir(moved)  # or run the reader from the folder, with no setup statement
    plain = duckdb.connect("catalog.duckdb", read_only=True)
    assert plain.sql("select count(*) from quality").fetchall() == [(2,)]
    plain.close()


def test_catalog_paths_must_be_relative_or_absolute(tmp_path, contracts):
    with pytest.raises(pub.PublishError, match=r"catalog_paths"):
        pub.build_catalog(tmp_path, contracts, paths="portable")  # type: ignore[arg-type]


def _duckdb1_python() -> Path | None:
    """A Python with duckdb 1.x, in a venv cached outside the repo (built once; None if pip cannot get it)."""
    python = DUCKDB1_VENV / "bin" / "python"
    probe = [str(python), "-c", f"import duckdb; assert duckdb.__version__ == '{DUCKDB1}'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    shutil.rmtree(DUCKDB1_VENV, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(DUCKDB1_VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"duckdb=={DUCKDB1}"],
            check=True,
            capture_output=True,
            timeout=180,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return python


def test_catalog_opens_with_a_real_duckdb_1x_reader_after_the_folder_moves(tmp_path, contracts):
    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    path = pub.build_catalog(root, contracts)
    python = _duckdb1_python()
    if python is None:  # no package index: the header says which readers open the file
        assert pub.storage_version(path) == 64
        return
    moved = tmp_path / "moved"
    root.rename(moved)
    script = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        'c.execute("set file_search_path = \'" + sys.argv[2] + "\'"); '
        "print(duckdb.__version__, c.sql('select count(*) from segs').fetchall()[0][0], "
        "c.sql('select count(distinct snapshot_date) from segs_history').fetchall()[0][0])"
    )
    out = subprocess.run(
        [str(python), "-c", script, str(moved / "catalog.duckdb"), str(moved)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [DUCKDB1, "4", "2"]


def test_catalog_rebuild_does_not_break_or_wait_for_an_open_reader(tmp_path, contracts):
    root = tmp_path / "published"
    pub.publish(root, {"quality": quality()}, snapshot_date=date(2024, 1, 1), contracts=contracts, history=[])
    catalog = pub.build_catalog(root, contracts)
    old = pub.connect_catalog(catalog)
    assert _views(old) == ["quality"]

    day = date(2024, 2, 1)
    pub.publish(root, {"segs": segs(day), "quality": quality(4)}, snapshot_date=day, contracts=contracts)
    pub.build_catalog(root, contracts)

    assert _views(old) == ["quality"]  # the old catalog, still readable; the data behind it is new
    assert old.sql("select count(*) from quality").fetchall() == [(4,)]
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.sql('select view_name from duckdb_views() where not internal order by 1').fetchall())",
            str(catalog),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert reader.stdout.strip() == "[('quality',), ('quality_history',), ('segs',), ('segs_history',)]"
    old.close()


# --------------------------------------------------------------------------------------------------
# history and current with the four readers BI notebooks use


def test_history_and_current_are_read_by_pandas_polars_duckdb_and_pyarrow(tmp_path, contracts):
    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    folder = root / "segs"
    want = [(date(2024, 1, 1), 3), (date(2024, 2, 1), 4)]

    def counts(dates: list) -> list[tuple[date, int]]:
        as_dates = [d if isinstance(d, date) else date.fromisoformat(str(d)) for d in dates]
        return sorted((d, as_dates.count(d)) for d in set(as_dates))

    frame = pd.read_parquet(folder)
    assert counts(frame["snapshot_date"].tolist()) == want
    assert frame["revenue"].notna().all()
    assert counts(pl.read_parquet(folder)["snapshot_date"].to_list()) == want
    assert counts(pq.read_table(folder)["snapshot_date"].to_pylist()) == want
    rows = duckdb.sql(
        "select snapshot_date from read_parquet($g, hive_partitioning = true)", params={"g": f"{folder}/*/*.parquet"}
    ).fetchall()
    assert counts([r[0] for r in rows]) == want

    cur = root / "current" / "segs.parquet"
    assert set(pd.read_parquet(cur)["snapshot_date"]) == {date(2024, 2, 1)}
    assert pl.read_parquet(cur)["snapshot_date"].unique().to_list() == [date(2024, 2, 1)]
    assert pq.read_table(cur).num_rows == 4
    assert duckdb.sql("select count(*) from read_parquet($p)", params={"p": str(cur)}).fetchall() == [(4,)]


def test_sql_shell_reads_statements_from_any_working_directory(tmp_path, contracts, monkeypatch):
    import io

    root = tmp_path / "published"
    _publish_two_days(root, contracts)
    catalog = pub.build_catalog(root, contracts)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    code = pub_catalog.sql_shell(
        catalog, stdin=io.StringIO("select count(*) as n\nfrom segs_history;\nselect nope;\n"), stdout=out
    )
    assert code == 1  # the second statement failed, the first printed its result
    assert "│ 7 │" in out.getvalue().replace(" ", "").replace("│7│", "│ 7 │")
    assert "error: Binder Error" in out.getvalue()
    one = io.StringIO()
    assert pub_catalog.sql_shell(catalog, command=".tables", stdout=one) == 0
    assert "segs_history" in one.getvalue()
