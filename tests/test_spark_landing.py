"""``landing_url``: landing files that only Spark's file systems reach load exactly as the same files from
``landing_dir`` do, and the driver copies only the files DuckDB's readers must read.

The landing is mounted in the Spark session's Hadoop configuration as a ``viewfs://`` file system: Spark lists,
hashes and reads it; Python's ``open`` cannot (as with ``s3a://``, ``abfss://``, ``hdfs://``).
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from assets.ingestion import ingestion_assets
from assets.resources import SegmentsResource, SparkResource
from engines.spark_landing import SparkLanding
from engines.spark_stager import SparkStager
from ingestion.discovery import LandingURL, glob_pattern
from ingestion.loader import ensure_schema, ingest_source, reingest
from segments.config import ConfigError, Settings, settings_from_dict
from tests.spark_helpers import _session
from tests.test_spark_ingest import CSV_LINES, IRREGULAR_LINES, RUN_TS, _browsing_table, _order_text_table, _tables

HEAD = CSV_LINES[0]


def _landing(root: Path) -> Path:
    """Every format and route: staged on Spark (plain CSV, Parquet, a nested folder, a name with glob
    characters beside the name it would glob to) or read by DuckDB (blank line, irregular line, gzip, JSON Lines);
    hidden and in-flight files skipped."""
    landing = root / "landing"
    (landing / "orders" / "2026" / "11").mkdir(parents=True)
    (landing / "browsing").mkdir()
    orders = landing / "orders"
    (orders / "text.csv").write_text("\r\n".join(CSV_LINES) + "\r\n", encoding="utf-8")
    (orders / "irregular.csv").write_text("\n".join(IRREGULAR_LINES) + "\n", encoding="utf-8")
    (orders / "blank.csv").write_text(f"{HEAD}\nb1,1,c1,2026-11-01 10:00:00,5,1\n\nb2,1,c2,2026-11-01 10:00:00,6,1\n")
    (orders / "2026" / "11" / "more[1].csv").write_text(f"{HEAD}\nx1,1,c1,2026-11-01 10:00:00,7,1\n")
    (orders / "2026" / "11" / "more1.csv").write_text(f"{HEAD}\ny1,1,c1,2026-11-01 10:00:00,8,1\n")
    gz = f"{HEAD}\ng1,1,c1,2026-11-01 10:00:00,9,1\ng2,1,c2,2026-11-01 10:00:00,-9,1\n"
    (orders / "zipped.csv.gz").write_bytes(gzip.compress(gz.encode(), mtime=0))
    row = {"order_id": "j1", "customer_id": "c1", "order_ts": "2026-11-01 10:00:00", "amount": 3}
    (orders / "lines.jsonl").write_text(json.dumps(row) + "\nnot json\n")
    pq.write_table(_order_text_table(), orders / "text.parquet")
    (orders / "_hidden.csv").write_text(f"{HEAD}\nh1,1,c1,2026-11-01 10:00:00,5,1\n")
    (orders / "upload.csv.part").write_text(f"{HEAD}\nh2,1,c1,2026-11-01 10:00:00,5,1\n")
    pq.write_table(_browsing_table(), landing / "browsing" / "events.parquet")
    return landing


def _settings(root: Path, engine: str, landing_url: str | None = None) -> Settings:
    raw: dict[str, Any] = {
        "landing_dir": str(root / "landing"),
        "warehouse": str(root / "unused.duckdb"),
        "published_dir": str(root / "published"),
        "time_zone": "Asia/Shanghai",
        "engine": engine,
        "sources": {
            "orders": {"glob": "orders/**/*", "timestamp_format": "%Y-%m-%d %H:%M:%S", "time_zone": "America/New_York"},
            "browsing": {"glob": "browsing/*"},
        },
    }
    if landing_url:
        raw["landing_url"] = landing_url
    return settings_from_dict(raw, base_dir=root)


def _mount(folder: Path) -> str:
    """A viewfs:// URL of ``folder``, known only to the Spark session's Hadoop configuration."""
    table = f"landing{uuid.uuid4().hex[:8]}"
    _session()._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{table}.link./landing", folder.as_uri())
    return f"viewfs://{table}/landing"


def _load(settings: Settings, db: Path, *, spark: bool, staging: Path) -> tuple[dict[str, Any], Any, Any]:
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    ensure_schema(con)
    landing = SparkLanding(settings, _session, staging / "landing") if spark else None
    stagers = []
    for source in ("orders", "browsing"):
        stager = SparkStager(_session, staging / source) if spark else None
        stagers.append(stager)
        ingest_source(con, settings, source, run_id="r", run_ts=RUN_TS, stager=stager, landing=landing)
    tables = _tables(con)
    con.close()
    return tables, landing, stagers


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("landing_url")
    landing = _landing(root)
    duck, _, _ = _load(_settings(root, "duckdb"), root / "duck.duckdb", spark=False, staging=root / "s0")
    url = _mount(landing)
    settings = _settings(root / "elsewhere", "spark", url)  # landing_dir points nowhere: only the URL has files
    spark, land, stagers = _load(settings, root / "spark.duckdb", spark=True, staging=root / "s1")
    return {
        "root": root,
        "url": url,
        "settings": settings,
        "duck": duck,
        "spark": spark,
        "land": land,
        "stagers": stagers,
    }


def test_a_url_only_spark_reaches_loads_as_the_same_files_from_landing_dir(loads):
    with pytest.raises(OSError):
        open(f"{loads['url']}/orders/text.csv", "rb")  # noqa: SIM115 - the driver's Python cannot reach it
    for table in ("orders", "browsing", "quarantine", "ingest_manifest"):
        assert loads["spark"][table] == loads["duck"][table], table
    files = [r[1] for r in loads["duck"]["ingest_manifest"]]
    assert sorted(files) == [
        "browsing/events.parquet",
        "orders/2026/11/more1.csv",
        "orders/2026/11/more[1].csv",
        "orders/blank.csv",
        "orders/irregular.csv",
        "orders/lines.jsonl",
        "orders/text.csv",
        "orders/text.parquet",
        "orders/zipped.csv.gz",
    ]
    # By hand: the bracketed name is read as itself (x1), not as the file its brackets would glob to (y1).
    loaded = {r[0]: r[-2] for r in loads["spark"]["orders"]}  # order_id -> _file
    assert (loaded["x1"], loaded["y1"]) == ("orders/2026/11/more[1].csv", "orders/2026/11/more1.csv")
    assert {"b1", "b2", "g1", "j1", "k1", "m1"} <= loaded.keys()


def test_only_the_files_duckdb_reads_are_copied_to_the_driver(loads):
    orders, browsing = loads["stagers"]
    staged = sorted(p.name for p in orders.staged + browsing.staged)
    assert staged == ["events.parquet", "more1.csv", "more[1].csv", "text.csv", "text.parquet"]
    assert sorted(p.name for p, _ in orders.handed_back) == ["blank.csv", "irregular.csv"]
    copied = sorted(p.name for p in loads["land"].copied)
    assert copied == ["blank.csv", "irregular.csv", "lines.jsonl", "zipped.csv.gz"]
    assert all(isinstance(p, LandingURL) and p.startswith("viewfs://") for p in loads["land"].copied)
    assert not (loads["root"] / "s1" / "landing").exists()  # the run's copies are gone


def test_a_second_run_finds_every_file_unchanged_from_spark_hashes_alone(loads, monkeypatch):
    root = loads["root"]
    # the scheme and host as a user may write them: Hadoop lists them in lower case, and so does the config
    table = loads["url"].removeprefix("viewfs://").split("/")[0]
    settings = _settings(root / "elsewhere", "spark", f"VIEWFS://{table.upper()}/landing/")
    assert settings.landing_url == loads["url"]
    con = duckdb.connect(str(root / "spark.duckdb"))
    landing = SparkLanding(settings, _session, root / "s2")
    # every file over binaryFile's limit: each is hashed from a stream of the file system, not copied
    monkeypatch.setattr("engines.spark_landing._MAX_BINARY", 0)
    statuses = [
        f.status
        for source in ("orders", "browsing")
        for f in ingest_source(con, settings, source, run_id="r2", run_ts=RUN_TS, landing=landing).files
    ]
    assert statuses == ["unchanged"] * 9
    assert landing.copied == []  # hashed on Spark: no file came to the driver
    # reingest of one file by glob: the same route (staged on Spark), its rows replaced, nothing else touched
    stager = SparkStager(_session, root / "s3")
    reports = reingest(con, settings, "orders", "more*.csv", stager=lambda s: stager, landing=lambda s: landing)
    assert [(f.path, f.status, f.rows_loaded) for f in reports[0].files] == [
        ("orders/2026/11/more1.csv", "loaded", 1),
        ("orders/2026/11/more[1].csv", "loaded", 1),
    ]
    assert sorted(p.name for p in stager.staged) == ["more1.csv", "more[1].csv"]
    con.close()


def test_the_ingestion_asset_reads_a_landing_url_through_the_spark_resource(tmp_path: Path):
    """In Dagster: the resource's session (the process's, where the mount is known) lists, hashes and stages the
    CSV file; only the JSON Lines file is copied, beside the warehouse, and gone after the run."""
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    (tmp_path / "landing" / "orders" / "a.csv").write_text(f"{HEAD}\na1,1,c1,2026-11-01 10:00:00,7,1\n")
    row = {"order_id": "j1", "customer_id": "c2", "order_ts": "2026-11-01 10:00:00", "amount": 3}
    (tmp_path / "landing" / "orders" / "b.jsonl").write_text(json.dumps(row) + "\n")
    url = _mount(tmp_path / "landing")
    cfg = tmp_path / "segments.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "landing_dir": "nowhere",
                "landing_url": url,
                "engine": "spark",
                "warehouse": "w.duckdb",
                "published_dir": "pub",
                "time_zone": "Asia/Shanghai",
                "sources": {"orders": {"glob": "orders/*", "time_zone": "America/New_York"}},
            }
        ),
        encoding="utf-8",
    )
    result = dg.materialize(
        [a for a in ingestion_assets if a.key.to_user_string() == "orders"],
        resources={"segments": SegmentsResource(config_path=str(cfg), lock_timeout_s=5), "spark": SparkResource()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    (event,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["files_staged_on_spark"] == 1 and meta["files_copied_to_driver"] == 1
    assert meta["problems"] == [] and meta["status"] == "OK"
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select order_id, _file from orders order by 1").fetchall() == [
            ("a1", "orders/a.csv"),
            ("j1", "orders/b.jsonl"),
        ]
    assert not (tmp_path / "spark_staging" / "landing" / "orders").exists()


def test_a_missing_landing_url_is_a_named_problem_not_a_crash(tmp_path: Path):
    url = _mount(tmp_path / "nowhere")
    settings = _settings(tmp_path, "spark", url)
    con = duckdb.connect()
    ensure_schema(con)
    report = ingest_source(
        con, settings, "orders", run_id="r", run_ts=RUN_TS, landing=SparkLanding(settings, _session, tmp_path / "w")
    )
    assert report.files == []
    assert report.problems == [f"landing_url {url} is not a folder Spark can list: create it or fix landing_url"]


def test_a_file_spark_cannot_read_is_rejected_by_name_and_the_others_load(tmp_path: Path):
    """Hadoop's local file system cannot name the checksum file of ``t:1.csv`` (a colon in a relative path): the
    one hashing job fails, each file is then hashed alone, and only that file is rejected, named, to be read
    again next run (no hash recorded)."""
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    (tmp_path / "landing" / "orders" / "t:1.csv").write_text(f"{HEAD}\nx1,1,c1,2026-11-01 10:00:00,7,1\n")
    (tmp_path / "landing" / "orders" / "ok.csv").write_text(f"{HEAD}\ny1,1,c1,2026-11-01 10:00:00,8,1\n")
    settings = _settings(tmp_path / "elsewhere", "spark", _mount(tmp_path / "landing"))
    con = duckdb.connect()
    ensure_schema(con)
    landing = SparkLanding(settings, _session, tmp_path / "w")
    stager = SparkStager(_session, tmp_path / "s")
    report = ingest_source(con, settings, "orders", run_id="r", run_ts=RUN_TS, stager=stager, landing=landing)
    got = [(f.path, f.status, f.rows_loaded, f.content_hash) for f in report.files]
    assert got[1] == ("orders/t:1.csv", "rejected", 0, "")
    assert got[0][:3] == ("orders/ok.csv", "loaded", 1)
    assert "orders/t:1.csv: Spark's file system could not read it" in report.files[1].error
    assert con.execute("select order_id from orders").fetchall() == [("y1",)]


def test_landing_url_is_checked_when_the_config_loads(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"landing_url .* set engine: spark"):
        _settings(tmp_path, "duckdb", "s3a://bucket/landing")
    with pytest.raises(ConfigError, match="landing_url must be a URL"):
        _settings(tmp_path, "spark", "/data/landing")
    assert _settings(tmp_path, "spark", "s3a://bucket/landing/").landing_url == "s3a://bucket/landing"
    assert _settings(tmp_path, "spark", "S3A://Bucket/Landing").landing_url == "s3a://bucket/Landing"
    with pytest.raises(ConfigError, match="landing_url must be a URL"):
        _settings(tmp_path, "spark", "file:///")


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("orders/*", "orders/a.csv", True),
        ("orders/*", "orders/sub/a.csv", False),
        ("orders/**/*", "orders/a.csv", True),
        ("orders/**/*", "orders/2026/11/a.csv", True),
        ("orders/**/*.csv", "orders/2026/a.parquet", False),
        ("orders/a?.csv", "orders/ab.csv", True),
        ("orders/[!x]*.csv", "orders/xa.csv", False),
        ("orders/[ab].csv", "orders/b.csv", True),
        ("orders/more[1].csv", "orders/more1.csv", True),  # as pathlib: brackets are a class in a glob
        ("orders/**", "orders/a.csv", False),  # pathlib: a trailing ** yields folders, never files
        ("orders/[^a].csv", "orders/^.csv", True),  # pathlib reads a leading ^ as itself, not as "not"
        ("orders/[^a].csv", "orders/b.csv", False),
        ("orders/[!]a].csv", "orders/b.csv", True),  # ] first in a class is a member
        ("orders/[!]a].csv", "orders/].csv", False),
        ("orders/*[!x]", "orders/a/b", False),  # a class never matches the folder separator
    ],
)
def test_the_config_glob_matches_a_url_listing_as_pathlib_matches_files(glob: str, path: str, matches: bool):
    assert bool(glob_pattern(glob).fullmatch(path)) is matches
