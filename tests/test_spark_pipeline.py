"""End to end in Dagster: the whole pipeline with ``engine: spark`` publishes what ``engine: duckdb`` publishes.

With ``engine: spark`` the customer_segments files are written by a Spark job (engines/spark_publish.py); every
published file must have the same Arrow schema (contract metadata included) and rows as the DuckDB run's."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import write_project_config
from polars.testing import assert_frame_equal

from pipelines.runner import run_pipeline
from segments.sample_data import generate

AS_OF = date(2026, 11, 21)


def _run(root: Path, landing: Path, engine: str) -> dict:
    # The churn model runs on the driver's DuckDB over the warehouse with either engine (models/stages.py): the
    # same code on both sides, left out here to save ~14 s of CPU per run; the M benchmark compares it.
    path = write_project_config(
        root,
        landing_dir=str(landing),
        snapshot_start="2025-01-01",
        engine=engine,
        segmentation={"prediction": {"enabled": False}},
    )
    return run_pipeline(str(path), as_of=AS_OF, instance=dg.DagsterInstance.ephemeral())


def _schemas(root: Path) -> dict[str, pa.Schema]:
    """The Arrow schema of every published customer_segments file, by path without the set hash."""
    return {
        re.sub(r"-[0-9a-f]{12}/", "/", path.relative_to(root / "published").as_posix()): pq.read_schema(path)
        for path in sorted((root / "published").rglob("*customer_segments*.parquet"))
        + sorted((root / "published").rglob("customer_segments/*/*.parquet"))
    }


def _published(root: Path) -> dict[str, pl.DataFrame]:
    """Every published Parquet file downstream of the engine, by path under published/ (sorted rows).

    quarantine and data_quality name the run's own time in their reasons (tests/test_spark_ingest.py compares
    the quarantine of both engines row for row)."""
    out = {}
    for path in sorted((root / "published").rglob("*.parquet")):
        if any(part.split(".")[0] in ("quarantine", "data_quality") for part in path.parts[-2:]):
            continue
        frame = pl.read_parquet(path)
        # A snapshot set's folder is named by a hash of all its tables, quarantine included: drop the hash.
        name = re.sub(
            r"^snapshots/(\d{4}-\d{2}-\d{2})-[0-9a-f]+/",
            r"snapshots/\1/",
            path.relative_to(root / "published").as_posix(),
        )
        out[name] = frame.sort(frame.columns)
    return out


def test_pipeline_on_spark_publishes_the_same_tables(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(landing, customers=120, days=400, end_date=AS_OF, seed=5, defects=True, daily_days=7)
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "spark").mkdir()
    duck = _run(tmp_path / "duckdb", landing, "duckdb")
    spark = _run(tmp_path / "spark", landing, "spark")
    assert duck["success"] and spark["success"], (duck.get("failures"), spark.get("failures"))
    want, got = _published(tmp_path / "duckdb"), _published(tmp_path / "spark")
    assert sorted(got) == sorted(want)
    assert any("customer_segments" in name for name in want)
    for name, frame in want.items():
        volatile = [c for c in frame.columns if c in ("run_id", "_run_id", "published_at", "ingested_at")]
        (
            assert_frame_equal(
                got[name].drop(volatile), frame.drop(volatile), check_exact=False, abs_tol=1e-9, rel_tol=0
            ),
            name,
        )
    assert (tmp_path / "spark" / "spark_staging").is_dir()  # the Spark path really ran
    assert (tmp_path / "spark" / "spark_staging" / "ingest" / "browsing").is_dir()  # browsing's rules on Spark
    schemas, spark_schemas = _schemas(tmp_path / "duckdb"), _schemas(tmp_path / "spark")
    assert sorted(spark_schemas) == sorted(schemas) and len(schemas) >= 2  # history partition and current set
    for name, schema in schemas.items():
        assert spark_schemas[name].equals(schema, check_metadata=True), name
    staged = tmp_path / "spark" / "spark_staging" / AS_OF.isoformat() / "publish" / "customer_segments.parquet"
    assert staged.is_file()  # customer_segments went through the Spark writer
