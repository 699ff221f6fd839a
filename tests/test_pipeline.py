"""End-to-end: real Dagster runs in-process over a real DuckDB file and real Parquet outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import write_project_config

from data_contracts.contracts import output_contracts
from models.published_columns import published_contracts
from models.registry import config_registry
from models.settings import load_segmentation_settings
from pipelines.cli import main as cli_main
from pipelines.definitions import build_definitions
from pipelines.runner import QUIET, run_pipeline
from pipelines.schedules import previous_business_day
from publishing.catalog import connect_catalog
from segments.sample_data import generate

AS_OF = date(2026, 11, 21)


# Tests whose subject is not the churn model leave it out: a first fit costs ~14 s of CPU per run (pymc import
# and two MAP compilations), and tests/test_clv*.py and the first_run fixture cover it.
NO_PREDICTION = {"prediction": {"enabled": False}}


def write_config(root: Path, **extra: object) -> Path:
    """A config file whose paths all live under ``root``."""
    # snapshot_start explicit: these definitions are built before any data is loaded (partition-start test).
    return write_project_config(root, **{"currency": "CNY", "snapshot_start": "2025-01-01", **extra})


@pytest.fixture(scope="module")
def landing_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small deterministic sample data, generated once for the module."""
    root = tmp_path_factory.mktemp("sample")
    generate(root / "landing", customers=400, days=400, end_date=AS_OF, seed=7, defects=True, daily_days=7)
    return root / "landing"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, landing_template: Path) -> tuple[Path, dict]:
    """One full pipeline run (ingest + snapshot + publish) shared by the read-only assertions."""
    root = tmp_path_factory.mktemp("run")
    shutil.copytree(landing_template, root / "landing")
    cfg = write_config(root)
    summary = run_pipeline(str(cfg), instance=dg.DagsterInstance.ephemeral())
    return root, summary


def _digest(folder: Path) -> dict[str, str]:
    """History and current files (what readers see; the set folders behind current/ are named by content)."""
    files = [p for p in folder.rglob("*.parquet") if "snapshots" not in p.parts]
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted([*files, *(folder / "current").glob("*.parquet")])
    }


def test_definitions_resolve_every_job_schedule_and_sensor_by_name() -> None:
    defs = build_definitions(str(Path(__file__).resolve().parents[1] / "segments.yaml"))
    for name in ("ingest_job", "snapshot_job", "nightly_job"):
        assert defs.resolve_job_def(name).name == name
    assert defs.resolve_schedule_def("nightly_segments").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("landing_files_sensor").default_status == dg.DefaultSensorStatus.STOPPED
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"orders", "customer_features", "customer_segments", "published_tables", "segment_report"} <= keys


def test_run_succeeds_and_row_accounting_adds_up(first_run: tuple[Path, dict]) -> None:
    root, summary = first_run
    assert summary["success"], summary["failures"]
    assert summary["as_of"] == AS_OF.isoformat()  # default: the last order date in the data
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        bad = con.execute(
            "select path from ingest_manifest where rows_read <> rows_loaded + rows_quarantined + duplicates_dropped"
        ).fetchall()
        assert bad == []
        rejected = con.execute("select path, error from ingest_manifest where status = 'rejected'").fetchall()
        quarantined = con.execute("select count(*) from quarantine").fetchall()[0][0]
    assert [p for p, _ in rejected] == ["orders/orders_bad_export.csv"]
    assert "missing required column(s) amount" in rejected[0][1]
    assert quarantined > 0
    for src, info in summary["ingestion"].items():
        assert info["rows_read"] == info["rows_loaded"] + info["rows_quarantined"] + info["duplicates_dropped"], src


def test_every_segment_stage_grade_tier_and_cluster_is_populated(first_run: tuple[Path, dict]) -> None:
    root, _ = first_run
    seg = pl.read_parquet(root / "published" / "current" / "customer_segments.parquet")
    assert seg["customer_id"].is_unique().all()
    assert set(seg["lifecycle_stage"].drop_nulls()) == {
        "prospect",
        "new",
        "active",
        "at_risk",
        "churned",
        "reactivated",
    }
    assert set(seg["overall_grade"].drop_nulls()) == {"A", "B", "C"}
    assert set(seg["value_tier"]) == {"high_value", "potential", "general", "low_value"}
    assert seg["rfm_segment"].drop_nulls().n_unique() >= 9
    assert seg.filter(pl.col("is_buyer"))["rfm_segment"].null_count() == 0
    assert seg["cluster_id"].drop_nulls().n_unique() >= 3


def test_published_tables_match_contracts_and_carry_no_pii(first_run: tuple[Path, dict]) -> None:
    root, _ = first_run
    pub = root / "published"
    # customer_segments as extended by the default classifications and tags of the config
    for name, contract in published_contracts(load_segmentation_settings()).items():
        schema = pq.read_schema(pub / "current" / f"{name}.parquet")
        assert schema.names == contract.column_names, name
        assert not {"email", "phone", "name"} & set(schema.names)
        first = contract.columns[0]
        assert schema.field(first.name).metadata[b"description"].decode() == first.description
    with connect_catalog(pub / "catalog.duckdb") as cat:
        for name in output_contracts():
            assert cat.execute(f"select count(*) from {name}").fetchall()[0][0] >= 0
        shares = cat.execute("select segmentation, sum(share) from segment_summary group by 1").fetchall()
    assert all(abs(s - 1.0) < 1e-9 for _, s in shares)
    assert (pub / "current" / "segment_report.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_rerun_with_same_input_gives_identical_published_files(first_run: tuple[Path, dict]) -> None:
    root, _ = first_run
    before = _digest(root / "published")
    summary = run_pipeline(str(root / "segments.yaml"), as_of=AS_OF, instance=dg.DagsterInstance.ephemeral())
    assert summary["success"], summary["failures"]
    assert all(info["files_loaded"] == 0 for info in summary["ingestion"].values())  # nothing new to load
    after = _digest(root / "published")
    before.pop("current/data_quality.parquet"), after.pop("current/data_quality.parquet")  # run ids differ
    assert after == before


def test_backfill_of_two_days_builds_history_and_migrations(tmp_path: Path, landing_template: Path) -> None:
    shutil.copytree(landing_template, tmp_path / "landing")
    cfg = write_config(tmp_path, segmentation=NO_PREDICTION)
    d = build_definitions(str(cfg))
    instance = dg.DagsterInstance.ephemeral()
    for key in ("2026-11-20", "2026-11-21"):
        res = d.resolve_job_def("nightly_job").execute_in_process(
            partition_key=key, instance=instance, run_config=QUIET
        )
        assert res.success
    pub = tmp_path / "published"
    assert sorted(p.name for p in (pub / "customer_segments").iterdir()) == [
        "snapshot_date=2026-11-20",
        "snapshot_date=2026-11-21",
    ]
    moves = pl.read_parquet(pub / "current" / "segment_migrations.parquet")
    assert set(moves["previous_snapshot_date"]) == {date(2026, 11, 20)}
    assert moves.filter(pl.col("segmentation") == "rfm_segment")["customers"].sum() > 0
    # An older date built afterwards goes to history only; current keeps the newest snapshot.
    res = d.resolve_job_def("snapshot_job").execute_in_process(
        partition_key="2026-11-19", instance=instance, run_config=QUIET
    )
    assert res.success
    cur = pl.read_parquet(pub / "current" / "customer_segments.parquet")
    assert set(cur["snapshot_date"]) == {AS_OF}
    assert (pub / "customer_segments" / "snapshot_date=2026-11-19" / "part-0.parquet").exists()


def test_nightly_schedule_requests_the_previous_business_day(tmp_path: Path) -> None:
    defs = build_definitions(str(write_config(tmp_path)))
    schedule = defs.resolve_schedule_def("nightly_segments")
    ctx = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 18, 0, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    req = schedule.evaluate_tick(ctx).run_requests[0]
    # 18:00 UTC on the 22nd is 02:00 on the 23rd in Asia/Shanghai: the night builds the 22nd.
    assert req.partition_key == "2026-11-22"
    assert previous_business_day(datetime(2026, 11, 22, 15, 59, tzinfo=UTC), "Asia/Shanghai") == "2026-11-21"
    assert previous_business_day(datetime(2026, 11, 22, 16, 0, tzinfo=UTC), "Asia/Shanghai") == "2026-11-22"


def test_landing_sensor_fires_on_new_files_and_keeps_a_cursor(tmp_path: Path) -> None:
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    cfg = write_config(tmp_path)
    d = build_definitions(str(cfg))
    sensor = d.resolve_sensor_def("landing_files_sensor")
    empty = sensor.evaluate_tick(dg.build_sensor_context(cursor=None, repository_def=d.get_repository_def()))
    assert not empty.run_requests and empty.skip_message == "no new or changed landing files"
    (tmp_path / "landing" / "orders" / "orders_2026-11-21.csv").write_text("order_id\n", encoding="utf-8")
    fired = sensor.evaluate_tick(dg.build_sensor_context(cursor=None, repository_def=d.get_repository_def()))
    assert len(fired.run_requests) == 1 and fired.cursor
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=fired.cursor, repository_def=d.get_repository_def()))
    assert not again.run_requests
    # a landing_url is listed by Spark, not watched here: the sensor skips and says why, whatever lands locally
    url = build_definitions(str(write_config(tmp_path, engine="spark", landing_url="s3a://bucket/landing")))
    skipped = url.resolve_sensor_def("landing_files_sensor").evaluate_tick(
        dg.build_sensor_context(cursor=None, repository_def=url.get_repository_def())
    )
    assert not skipped.run_requests and "landing_url s3a://bucket/landing is listed by Spark" in skipped.skip_message


def test_cli_rejects_an_invalid_config_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = write_config(tmp_path, sources={"orders": {"glob": "orders/*", "format": "xlsx"}})
    assert cli_main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "sources.orders.format" in err
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_failing_output_check_blocks_publishing_and_keeps_previous_files(
    tmp_path: Path, landing_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.stages as seg_assets

    shutil.copytree(landing_template, tmp_path / "landing")
    cfg = write_config(tmp_path, segmentation=NO_PREDICTION)
    d = build_definitions(str(cfg))
    instance = dg.DagsterInstance.ephemeral()
    ok = d.resolve_job_def("nightly_job").execute_in_process(
        partition_key="2026-11-20", instance=instance, run_config=QUIET
    )
    assert ok.success
    before = {p: p.read_bytes() for p in sorted((tmp_path / "published").rglob("*")) if p.is_file()}

    real = seg_assets.segment_customers

    def planted(*args: object, **kwargs: object):  # a scoring bug: one buyer gets R = 9
        result = real(*args, **kwargs)
        first = result.customers["is_buyer"].arg_max()
        broken = result.customers.with_columns(
            pl.when(pl.int_range(pl.len()) == first).then(9).otherwise(pl.col("r_score")).alias("r_score")
        )
        return dataclasses.replace(result, customers=broken)

    monkeypatch.setattr(seg_assets, "segment_customers", planted)
    bad = d.resolve_job_def("snapshot_job").execute_in_process(
        partition_key=AS_OF.isoformat(), instance=instance, run_config=QUIET, raise_on_error=False
    )
    assert not bad.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name): e for e in bad.get_asset_check_evaluations() if not e.passed
    }
    assert ("customer_segments", "scores_in_range") in failed
    assert failed[("customer_segments", "scores_in_range")].metadata["unexpected"].value == 1
    assert ("customer_segments", "contract_ranges") in failed
    published = {e.materialization.asset_key.to_user_string() for e in bad.get_asset_materialization_events()}
    assert "published_tables" not in published
    after = {p: p.read_bytes() for p in sorted((tmp_path / "published").rglob("*")) if p.is_file()}
    assert after == before  # byte-identical: nothing of the bad snapshot reached the published dir


def test_invalid_segmentation_rules_fail_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = write_config(tmp_path, segmentation={"lifecycle": {"active_days": 90, "churn_days": 10}})
    assert cli_main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "segmentation.lifecycle.churn_days" in err
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_committed_data_dictionary_matches_the_output_contracts() -> None:
    from publishing.dictionary import render_data_dictionary

    committed = (Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    expected = render_data_dictionary(output_contracts().values(), registry=config_registry({}))
    assert committed == expected, "run `segments docs` to regenerate"


def test_launchpad_run_config_changes_k_and_the_rfm_method(tmp_path: Path, landing_template: Path) -> None:
    shutil.copytree(landing_template, tmp_path / "landing")
    d = build_definitions(str(write_config(tmp_path, segmentation=NO_PREDICTION)))
    instance = dg.DagsterInstance.ephemeral()
    assert d.resolve_job_def("ingest_job").execute_in_process(instance=instance, run_config=QUIET).success
    run_config = {**QUIET, "ops": {"segmentation": {"config": {"k": 3, "rfm_method": "fixed", "churn_days": 200}}}}
    res = d.resolve_job_def("snapshot_job").execute_in_process(
        partition_key=AS_OF.isoformat(), instance=instance, run_config=run_config
    )
    assert res.success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from cluster_profiles").fetchall()[0][0] == 3
        assert con.execute("select distinct method from rfm_cut_points").fetchall() == [("fixed",)]
        # churn window 200: a customer last buying 190 days ago is at_risk, not churned
        stages = dict(
            con.execute(
                "select lifecycle_stage, max(recency_days) from customer_segments "
                "where lifecycle_stage in ('at_risk', 'churned') group by 1"
            ).fetchall()
        )
    assert 180 < stages["at_risk"] <= 200


def test_every_launchpad_field_set_to_another_valid_value_publishes(tmp_path: Path, landing_template: Path) -> None:
    shutil.copytree(landing_template, tmp_path / "landing")
    d = build_definitions(str(write_config(tmp_path)))
    instance = dg.DagsterInstance.ephemeral()
    assert d.resolve_job_def("ingest_job").execute_in_process(instance=instance, run_config=QUIET).success
    features = {"lookback_days": 365, "short_window_days": 14, "long_window_days": 120, "complaint_window_days": 60}
    segmentation = {
        "rfm_method": "fixed",
        "segment_map": "rfm_11",
        "grade_method": "quantile",
        "new_days": 20,
        "active_days": 100,
        "churn_days": 200,
        "k": 4,
        "overrides_yaml": "clusters: {n_init: 2}\nlifecycle: {new_days: 25}",
    }
    run_config = {
        **QUIET,
        "ops": {"customer_features": {"config": features}, "segmentation": {"config": segmentation}},
    }
    res = d.resolve_job_def("snapshot_job").execute_in_process(
        partition_key=AS_OF.isoformat(), instance=instance, run_config=run_config, raise_on_error=False
    )
    failed = [e.check_name for e in res.get_asset_check_evaluations() if not e.passed and e.severity.name == "ERROR"]
    assert res.success and not failed, failed
    cur = pl.read_parquet(tmp_path / "published" / "current" / "customer_segments.parquet")
    assert {"sessions_14d", "sessions_120d", "complaints_60d"} <= set(cur.columns)
    assert not {"sessions_30d", "sessions_90d", "complaints_90d"} & set(cur.columns)
    assert cur["cluster_id"].drop_nulls().n_unique() == 4
    # new_days from overrides_yaml (25) wins over the field (20): the YAML is applied first, fields on top
    # only where set -- both set lifecycle.new_days, and the explicit field is the last word.
    new = cur.filter(pl.col("lifecycle_stage") == "new")
    assert new.is_empty() or (AS_OF - new["first_purchase_date"].min()).days <= 20


def test_an_invalid_launchpad_value_is_refused_before_the_run(tmp_path: Path) -> None:
    d = build_definitions(str(write_config(tmp_path)))
    run_config = {**QUIET, "ops": {"segmentation": {"config": {"rfm_method": "kmeans"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="kmeans"):
        d.resolve_job_def("snapshot_job").execute_in_process(
            partition_key=AS_OF.isoformat(), instance=dg.DagsterInstance.ephemeral(), run_config=run_config
        )


def test_partitions_start_at_the_first_business_date_of_the_data(tmp_path: Path, landing_template: Path) -> None:
    from assets.partitions import partition_start
    from segments.config import load_settings

    shutil.copytree(landing_template, tmp_path / "landing")
    cfg = write_config(tmp_path, snapshot_start=None)
    settings = load_settings(cfg)
    assert partition_start(settings, today=date(2026, 11, 30)) == date(2026, 11, 29)  # no data yet: yesterday
    d = build_definitions(str(cfg))
    assert d.resolve_job_def("ingest_job").execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        first = con.execute("select min(order_date) from orders").fetchall()[0][0]
    keys = build_definitions(str(cfg)).resolve_job_def("snapshot_job").partitions_def.get_partition_keys()
    assert keys[0] == first.isoformat()


def test_cli_runs_go_to_the_project_instance_and_a_future_as_of_is_refused_at_once(
    first_run: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import time

    root, _ = first_run
    home = root / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    cfg = str(root / "segments.yaml")
    t0 = time.perf_counter()
    assert cli_main(["--config", cfg, "run", "--as-of", "2099-01-01"]) == 1
    assert time.perf_counter() - t0 < 10
    out = capsys.readouterr().out
    assert "--as-of 2099-01-01 is outside the snapshot dates this data allows (2025-01-01 .. " in out
    assert not home.exists()  # refused before any run was started

    assert cli_main(["--config", cfg, "run", "--as-of", AS_OF.isoformat()]) == 0
    instance = dg.DagsterInstance.from_config(str(home))
    jobs = sorted(r.job_name for r in instance.get_runs())
    assert jobs == ["ingest_job", "snapshot_job"]  # what `make ui` shows, with every check's details
    snapshot_run = next(r for r in instance.get_runs() if r.job_name == "snapshot_job")
    checks = instance.get_records_for_run(
        snapshot_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    assert len(checks) > 10
